// cc/mapfile/mapfile.c (tsbuild_mapfile.node, the CLI loader's file mapping): the bytes fs reads, or
// undefined where the loader must read with fs instead; a mapping keeps the file it mapped when a new
// one is renamed over it, which is how the bundle and its caches are replaced.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeBinaries } from '@tsbuild/native';

const mapfile = (() => {
  const mod = { exports: {} as { latin1(file: string): string | undefined; bytes(file: string): Buffer | undefined } };
  process.dlopen(mod, path.join(path.dirname(nativeBinaries.addon), 'tsbuild_mapfile.node'));
  return mod.exports;
})();

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mapfile-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('tsbuild_mapfile.node', () => {
  it('gives the bytes fs reads, as a latin1 string and as a Buffer', () => {
    const file = path.join(dir, 'f');
    const data = Buffer.alloc(3 * 65536 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    fs.writeFileSync(file, data);
    expect(mapfile.latin1(file)).toBe(fs.readFileSync(file, 'latin1'));
    expect(mapfile.bytes(file)!.equals(data)).toBe(true);
  });

  it('gives undefined for what it does not map: missing, empty, a directory, a FIFO (without blocking)', () => {
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '');
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const file of [path.join(dir, 'missing'), empty, dir, fifo, 'x'.repeat(5000)]) {
      expect(mapfile.latin1(file), file).toBeUndefined();
      expect(mapfile.bytes(file), file).toBeUndefined();
    }
  });

  it('keeps the file it mapped when another is renamed over it', () => {
    const file = path.join(dir, 'bundle.js');
    fs.writeFileSync(file, 'a'.repeat(100_000));
    const text = mapfile.latin1(file)!;
    const bytes = mapfile.bytes(file)!;
    fs.writeFileSync(`${file}.tmp`, 'b'.repeat(10));
    fs.renameSync(`${file}.tmp`, file);
    expect(text).toBe('a'.repeat(100_000));
    expect(bytes.toString('latin1')).toBe('a'.repeat(100_000));
  });
});
