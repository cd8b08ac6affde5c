// Blob leases (issue 9, defect 5): prune's grace period protects only blobs whose owner may still be
// running; a dead operation's staged blobs go at once, a live one's stay even without a grace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ImageStore } from '../src/image';
import { tempRootsPerTest } from '../../../test/helpers/temp';

describe('blob leases and prune', () => {
  const newRoot = tempRootsPerTest();
  let tmp: string;
  let store: ImageStore;
  beforeEach(async () => {
    tmp = newRoot('bloblease');
    store = await ImageStore.open(path.join(tmp, 'store'));
  });

  it('a dead operation\'s fresh blobs are pruned at once; a live lease keeps its blobs past the grace', async () => {
    const dead = await store.content.putBytes('staged by a load that was killed');
    const live = await store.content.putBytes('staged by a load still running');
    const unowned = await store.content.putBytes('written a moment ago by someone');
    // A lease named after a process that does not exist (pid 1 never has start time 1).
    fs.mkdirSync(path.join(tmp, 'store', 'blob-leases'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'store', 'blob-leases', '1.1-deadbeef.json'), JSON.stringify([dead.digest]));
    const staged = await store.stageBlobs();
    await staged.hold(live.digest);

    await store.prune();
    expect(await store.content.has(dead.digest)).toBe(false);
    expect(await store.content.has(live.digest)).toBe(true);
    expect(await store.content.has(unowned.digest)).toBe(true); // within the grace, owner unknown
    expect(fs.readdirSync(path.join(tmp, 'store', 'blob-leases'))).toHaveLength(1);

    await store.prune({ graceMs: 0 });
    expect(await store.content.has(live.digest)).toBe(true);
    expect(await store.content.has(unowned.digest)).toBe(false);
    await staged.release();
    await store.prune({ graceMs: 0 });
    expect(await store.content.has(live.digest)).toBe(false);
  });
});
