// Blob leases (issue 9, defect 5): prune's grace period protects only blobs whose owner may still be
// running; a dead operation's staged blobs go at once, a live one's stay even without a grace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ImageStore } from '../src/image';
import { createLease, readLeases } from '../src/lease';
import { ownedName } from '../src/drivers/proc';
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

  it('a lease is rewritten in place; a reader that catches a rewrite half done reads it again', async () => {
    const dir = path.join(tmp, 'leases');
    const lease = await createLease(dir);
    await lease.add('sha256:a');
    await lease.add('sha256:b');
    const [name] = fs.readdirSync(dir);
    expect(JSON.parse(fs.readFileSync(path.join(dir, name!), 'utf8'))).toEqual(['sha256:a', 'sha256:b']);
    await lease.release();
    expect(fs.readdirSync(dir)).toEqual([]);

    // A live owner's lease (this process) caught mid-write: the reader waits for the whole text.
    const torn = path.join(dir, `${ownedName('torn')}.json`);
    fs.writeFileSync(torn, '["sha256:a","sha2');
    setTimeout(() => fs.writeFileSync(torn, '["sha256:a","sha256:b"]'), 20);
    expect((await readLeases(dir)).live).toEqual(['sha256:a', 'sha256:b']);

    // A live owner's lease that stays unreadable: its items are unknown, so the reader refuses rather
    // than report nothing held (a sweep would then remove what the owner uses).
    fs.writeFileSync(torn, '["sha256:a","sha2');
    await expect(readLeases(dir)).rejects.toThrow(/lease .*torn.* of running process [\d.]+ cannot be read/);
    // A dead owner's torn lease is simply removed.
    fs.rmSync(torn);
    const dead = path.join(dir, '999999999.1-dead.json');
    fs.writeFileSync(dead, '["sha256:c","sha2');
    expect(await readLeases(dir)).toEqual({ live: [], dead: [] });
    expect(fs.existsSync(dead)).toBe(false);
  });
});
