// Layer sizes as docker shows them: the bytes of the files, counted from the tar on its way through.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarContentCounter, packDir } from '../../src/archive';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-csize-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function count(stream: Readable, chunk?: number): Promise<number> {
  const counter = new TarContentCounter();
  const source = chunk === undefined ? stream : Readable.from(splitInto(stream, chunk));
  await pipeline(source, counter, new Writable({ write: (_c, _e, cb) => cb() }));
  return counter.bytes;
}

async function* splitInto(stream: Readable, size: number): AsyncGenerator<Buffer> {
  for await (const c of stream) for (let i = 0; i < (c as Buffer).length; i += size) yield (c as Buffer).subarray(i, i + size);
}

describe('TarContentCounter', () => {
  it('counts file bytes and link targets; directories, hard links and tar overhead count nothing', async () => {
    const root = path.join(dir, 'tree');
    fs.mkdirSync(path.join(root, 'd', 'e'), { recursive: true });
    fs.writeFileSync(path.join(root, 'a'), 'x'.repeat(1000));
    fs.writeFileSync(path.join(root, 'd', 'e', 'b'), 'y'.repeat(70_000));
    fs.linkSync(path.join(root, 'a'), path.join(root, 'hard'));
    fs.symlinkSync('target/of/eleven', path.join(root, 'link')); // 16 bytes
    const long = 'n'.repeat(180);
    fs.writeFileSync(path.join(root, long), 'z'.repeat(5));
    fs.symlinkSync('t'.repeat(150), path.join(root, 'longlink'));
    const expected = 1000 + 70_000 + 16 + 5 + 150;
    // Our writer (pax for long names and links).
    expect(await count(packDir(root, { whiteouts: 'none' }))).toBe(expected);
    expect(await count(packDir(root, { whiteouts: 'none' }), 7)).toBe(expected);
    // GNU tar's own format (././@LongLink headers).
    const gnu = path.join(dir, 'gnu.tar');
    execFileSync('tar', ['--format=gnu', '-C', root, '-cf', gnu, '.']);
    expect(await count(fs.createReadStream(gnu))).toBe(expected);
    const pax = path.join(dir, 'pax.tar');
    execFileSync('tar', ['--format=posix', '-C', root, '-cf', pax, '.']);
    expect(await count(fs.createReadStream(pax), 100)).toBe(expected);
  });

  it('passes the bytes through unchanged', async () => {
    const root = path.join(dir, 'tree');
    const chunks: Buffer[] = [];
    await pipeline(packDir(root, { whiteouts: 'none' }), new TarContentCounter(), new Writable({ write: (c, _e, cb) => (chunks.push(c as Buffer), cb()) }));
    const direct: Buffer[] = [];
    for await (const c of packDir(root, { whiteouts: 'none' })) direct.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(Buffer.concat(direct))).toBe(true);
  });
});
