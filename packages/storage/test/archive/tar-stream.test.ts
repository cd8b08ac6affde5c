// Why layers do not use tar-stream (REFERENCE §6): these tests pin tar-stream 3.2.2's actual behaviour
// on a big uid and a binary xattr, next to our codec doing the same job correctly.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tarStream from 'tar-stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { listTar } from '../../src/archive/tar-reader';
import { buildTar } from '../../src/archive/tar-writer';
import { makeTarWithTarStream, paxEntry, makeTar } from '../../../../fixtures/tars';
import { bufferStream } from '../../../../test/helpers/streams';
import { tempRootsPerTest } from '../../../../test/helpers/temp';

const BIG_ID = 1_000_000;
/** A real VFS_CAP_REVISION_2 blob (setcap cap_net_raw,cap_setuid,cap_net_bind_service+ep): byte 0x80 included. */
const CAPABILITY = Buffer.from('0100000280240000000000000000000000000000', 'hex');

/** Headers as tar-stream's extractor reports them. */
async function tarStreamHeaders(tar: Buffer): Promise<tarStream.Header[]> {
  const extract = tarStream.extract();
  const out: tarStream.Header[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      out.push(header);
      stream.on('end', next);
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(tar);
  await done;
  return out;
}

const newRoot = tempRootsPerTest();
let root: string;
beforeEach(() => {
  root = newRoot('tarstream');
});

describe('tar-stream 3.2.2 is wrong for layers', () => {
  it('clamps uid/gid 1000000 to 262143 (0o777777) when writing; our writer keeps it', async () => {
    const theirs = await makeTarWithTarStream([{ name: 'owned', content: 'x', uid: BIG_ID, gid: BIG_ID }]);
    const theirHeader = (await listTar(bufferStream(theirs)))[0]!;
    expect(theirHeader).toMatchObject({ uid: 0o777777, gid: 0o777777 });
    expect(theirHeader.uid).toBe(262143);

    const ours = buildTar([{ header: { name: 'owned', type: 'file', uid: BIG_ID, gid: BIG_ID }, body: 'x' }]);
    expect((await listTar(bufferStream(ours)))[0]).toMatchObject({ uid: BIG_ID, gid: BIG_ID });

    // GNU tar agrees on both files
    const theirsFile = path.join(root, 'theirs.tar');
    const oursFile = path.join(root, 'ours.tar');
    fs.writeFileSync(theirsFile, theirs);
    fs.writeFileSync(oursFile, ours);
    expect(execFileSync('tar', ['--numeric-owner', '-tvf', theirsFile], { encoding: 'utf8' })).toContain(' 262143/262143 ');
    expect(execFileSync('tar', ['--numeric-owner', '-tvf', oursFile], { encoding: 'utf8' })).toContain(' 1000000/1000000 ');
  });

  it('ignores pax uid/gid/mtime when reading; our reader applies them', async () => {
    const tar = makeTar([paxEntry({ uid: String(BIG_ID), gid: String(BIG_ID), mtime: '1700000000' }), { name: 'f', content: 'x', uid: 0, gid: 0, mtime: 5 }]);
    const [theirs] = await tarStreamHeaders(tar);
    expect(theirs).toMatchObject({ name: 'f', uid: 0, gid: 0 });
    expect(theirs!.mtime!.getTime()).toBe(5000);
    expect((await listTar(bufferStream(tar)))[0]).toMatchObject({ uid: BIG_ID, gid: BIG_ID, mtime: 1_700_000_000 });
  });

  it('mangles a binary security.capability on write (UTF-8) and on read (U+FFFD); ours round-trips it', async () => {
    // Writing: pax values are strings, encoded as UTF-8, so 0x80 becomes c2 80.
    const theirs = await makeTarWithTarStream([{ name: 'ping', content: 'x', xattrs: { 'security.capability': CAPABILITY.toString('latin1') } }]);
    const stored = (await listTar(bufferStream(theirs)))[0]!.xattrs.get('security.capability')!;
    expect(stored.equals(CAPABILITY)).toBe(false);
    expect(stored.length).toBe(21);
    expect(stored.subarray(4, 6)).toEqual(Buffer.from([0xc2, 0x80]));

    // Reading: our tar carries the exact bytes; tar-stream decodes them as UTF-8 and loses 0x80.
    const ours = buildTar([{ header: { name: 'ping', type: 'file', xattrs: new Map([['security.capability', CAPABILITY]]) }, body: 'x' }]);
    const [header] = await tarStreamHeaders(ours);
    const value = (header!.pax as Record<string, string>)['SCHILY.xattr.security.capability']!;
    expect(value).toContain('\ufffd');
    expect(Buffer.from(value, 'latin1').equals(CAPABILITY)).toBe(false);
    expect(Buffer.from(value, 'utf8').equals(CAPABILITY)).toBe(false);

    // Our reader gives back the exact 20 bytes.
    expect((await listTar(bufferStream(ours)))[0]!.xattrs.get('security.capability')).toEqual(CAPABILITY);
  });
});
