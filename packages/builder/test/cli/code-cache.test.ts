// bin/code-cache.js: the CLI bundle's V8 code cache is used only for the bundle build it was made from,
// and each command family's cache is written on its first success, beside the bundle or in the user's
// cache directory.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const CODE_CACHE = path.resolve(__dirname, '../../bin/code-cache.js');
const { familyOf } = require(CODE_CACHE) as { familyOf(argv: string[]): string };

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-cache-'));
});
afterEach(() => {
  fs.chmodSync(dir, 0o700);
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Loaded {
  answer: string;
  accepted: boolean;
  stale: boolean;
  wrote?: string;
}

/**
 * Loads `file` through the code cache in a new process (no in-memory compilation cache shared), as the
 * bin does: with the V8 flags it sets after loading, restored before a cache is written.
 */
function load(file: string, opts: { write?: boolean; argv?: string[]; env?: NodeJS.ProcessEnv } = {}): Loaded {
  const script = `
    const cc = require(${JSON.stringify(CODE_CACHE)});
    const v8 = require('node:v8');
    const loaded = cc.loadWithCodeCache(${JSON.stringify(file)}, ${JSON.stringify(opts.argv ?? [])});
    v8.setFlagsFromString('--semi-space-growth-factor=1');
    v8.setFlagsFromString('--heap-growing-percent=50');
    const answer = loaded.exports.answer();
    const wrote = ${Boolean(opts.write)} ? cc.writeCodeCache(${JSON.stringify(file)}, loaded, () => {
      v8.setFlagsFromString('--semi-space-growth-factor=2');
      v8.setFlagsFromString('--heap-growing-percent=0');
    }) : undefined;
    process.stdout.write(JSON.stringify({ answer, accepted: loaded.cacheAccepted, stale: loaded.stale, wrote }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: path.join(dir, 'xdg'), ...opts.env } });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Loaded;
}

/** A module of a fixed length whose answer() returns `letter`; its functions are compiled when it runs. */
function writeModule(file: string, letter: string, buildId: string | null = letter.toLowerCase().repeat(32)): void {
  const idLine = buildId === null ? '//' + ' '.repeat(49) : `//tsbuild-build-id ${buildId}`;
  fs.writeFileSync(file, `${idLine}\n'use strict';\nfunction answer() { return [1, 2, 3].map((n) => n * 2).join('') + '${letter}'; }\nmodule.exports = { answer, self: typeof module.filename };\n`);
}

describe('the CLI bundle code cache', () => {
  it('compiles a bundle written as its wrapper function as it is, with its cache', () => {
    const { PREWRAPPED_HEAD, PREWRAPPED_TAIL } = require(CODE_CACHE) as { PREWRAPPED_HEAD: string; PREWRAPPED_TAIL: string };
    const file = path.join(dir, 'bundle.js');
    const body = `'use strict';\nfunction answer() { return [1, 2, 3].map((n) => n * 2).join('') + 'W' + (typeof __dirname); }\nmodule.exports = { answer };`;
    fs.writeFileSync(file, `//tsbuild-build-id ${'c'.repeat(32)}\n${PREWRAPPED_HEAD}${body}${PREWRAPPED_TAIL}`);
    expect(load(file, { write: true })).toEqual({ answer: '246Wstring', accepted: false, stale: true, wrote: `${file}.cache` });
    expect(load(file)).toEqual({ answer: '246Wstring', accepted: true, stale: false });
  });

  it('is written after a run and accepted by the next process, under the flags the bin sets after loading', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    expect(load(file, { write: true })).toEqual({ answer: '246A', accepted: false, stale: true, wrote: `${file}.cache` });
    expect(fs.readFileSync(`${file}.cache`, 'latin1')).toMatch(new RegExp(`^tsbuild-code-cache a{32} ${process.versions.v8.replace(/\./g, '\\.')} [0-9a-f]{8}\n`));
    expect(load(file)).toEqual({ answer: '246A', accepted: true, stale: false });
  });

  it('is not used for another build of the same length (V8 itself checks only the length)', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    load(file, { write: true });
    const cache = fs.readFileSync(`${file}.cache`);
    writeModule(file, 'B');
    expect(load(file)).toEqual({ answer: '246B', accepted: false, stale: true });
    // What the build id prevents: V8 given A's data for B's source accepts it and runs A's code.
    const unguarded = `
      const vm = require('node:vm'); const Module = require('node:module'); const fs = require('node:fs');
      const source = Module.wrapper[0] + fs.readFileSync(${JSON.stringify(file)}, 'latin1') + Module.wrapper[1];
      const cache = fs.readFileSync(${JSON.stringify(`${file}.cache`)});
      const script = new vm.Script(source, { filename: ${JSON.stringify(file)}, cachedData: cache.subarray(cache.indexOf(10) + 1) });
      const m = { exports: {} }; script.runInThisContext()(m.exports, require, m, '', '');
      process.stdout.write(JSON.stringify({ answer: m.exports.answer(), rejected: script.cachedDataRejected }));`;
    fs.writeFileSync(`${file}.cache`, cache);
    expect(JSON.parse(spawnSync(process.execPath, ['-e', unguarded], { encoding: 'utf8' }).stdout)).toEqual({ answer: '246A', rejected: false });
  });

  it('is never used or written for a file without a build id', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    load(file, { write: true });
    writeModule(file, 'A', null);
    expect(load(file, { write: true })).toEqual({ answer: '246A', accepted: false, stale: false });
  });

  it('falls back to compiling when the cache is damaged or missing', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    expect(load(file)).toEqual({ answer: '246A', accepted: false, stale: true });
    load(file, { write: true });
    const cache = fs.readFileSync(`${file}.cache`);
    const header = cache.indexOf(10) + 1;
    fs.writeFileSync(`${file}.cache`, Buffer.concat([cache.subarray(0, header), Buffer.alloc(cache.length - header, 0xa5)]));
    // Same build and V8: V8 rejects the data, and it is not rewritten on every command.
    expect(load(file)).toEqual({ answer: '246A', accepted: false, stale: false });
    fs.writeFileSync(`${file}.cache`, cache.subarray(0, 10));
    expect(load(file)).toEqual({ answer: '246A', accepted: false, stale: true });
    fs.writeFileSync(`${file}.cache`, Buffer.from(cache.toString('latin1').replace(process.versions.v8, '0.0.0.0'), 'latin1'));
    expect(load(file)).toEqual({ answer: '246A', accepted: false, stale: true });
  });

  it('is rewritten by a plain command after a process started with other V8 flags wrote it', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    const flagged = { NODE_OPTIONS: '--max-old-space-size=300' };
    expect(load(file, { write: true, env: flagged })).toEqual({ answer: '246A', accepted: false, stale: true, wrote: `${file}.cache` });
    expect(load(file, { env: flagged })).toEqual({ answer: '246A', accepted: true, stale: false });
    // V8 rejects it without the flag: stale, so this command's cache replaces it, and the next one takes it.
    expect(load(file, { write: true, env: { NODE_OPTIONS: '' } })).toEqual({ answer: '246A', accepted: false, stale: true, wrote: `${file}.cache` });
    expect(load(file, { env: { NODE_OPTIONS: '' } })).toEqual({ answer: '246A', accepted: true, stale: false });
  });

  it('gives each command a cache of its own, starting from the default one', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    load(file, { write: true });
    const run = ['--root', '/r', 'run', '--rm', 'img', 'true'];
    expect(load(file, { argv: run, write: true })).toEqual({ answer: '246A', accepted: true, stale: true, wrote: `${file}.run.cache` });
    expect(load(file, { argv: run })).toEqual({ answer: '246A', accepted: true, stale: false });
    expect(load(file, { argv: ['-t', 'app', '.'] })).toEqual({ answer: '246A', accepted: true, stale: true });
    expect(fs.readdirSync(dir).sort()).toEqual(['bundle.js', 'bundle.js.cache', 'bundle.js.run.cache']);
  });

  it('goes to the user cache directory when the bundle directory is not writable, keeping one build there', () => {
    const file = path.join(dir, 'bundle.js');
    const xdg = path.join(dir, 'xdg');
    writeModule(file, 'A');
    fs.chmodSync(dir, 0o555);
    if (spawnSync('touch', [path.join(dir, 'probe')]).status === 0) return expect.fail('the directory is writable: run the unit tier as non-root');
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(xdg);
    fs.chmodSync(dir, 0o555);
    expect(load(file, { write: true })).toEqual({ answer: '246A', accepted: false, stale: true, wrote: path.join(xdg, 'tsbuild', `${'a'.repeat(32)}.bundle.js.cache`) });
    expect(load(file, { argv: ['build', '.'], write: true }).wrote).toBe(path.join(xdg, 'tsbuild', `${'a'.repeat(32)}.bundle.js.build.cache`));
    expect(load(file, { argv: ['build', '.'] })).toEqual({ answer: '246A', accepted: true, stale: false });
    fs.chmodSync(dir, 0o755);
    writeModule(file, 'B');
    fs.chmodSync(dir, 0o555);
    expect(load(file, { write: true }).wrote).toBe(path.join(xdg, 'tsbuild', `${'b'.repeat(32)}.bundle.js.cache`));
    expect(fs.readdirSync(path.join(xdg, 'tsbuild')).sort()).toEqual([`${'a'.repeat(32)}.bundle.js.build.cache`, `${'b'.repeat(32)}.bundle.js.cache`]);
    expect(load(file)).toEqual({ answer: '246B', accepted: true, stale: false });
  });

  it('skips writing silently when no place is writable', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    fs.chmodSync(dir, 0o555);
    expect(load(file, { write: true, env: { XDG_CACHE_HOME: '', HOME: '/nonexistent' } })).toEqual({ answer: '246A', accepted: false, stale: true });
  });

  it('picks the family from the command word after the global options', () => {
    expect(familyOf([])).toBe('default');
    expect(familyOf(['--version'])).toBe('default');
    expect(familyOf(['version'])).toBe('default');
    expect(familyOf(['--help'])).toBe('default');
    expect(familyOf(['help', 'run'])).toBe('default');
    expect(familyOf(['images'])).toBe('images');
    expect(familyOf(['--root', 'run', 'images'])).toBe('images');
    expect(familyOf(['--root=/r', '--storage-driver', 'vfs', '--debug', 'run', 'img'])).toBe('run');
    expect(familyOf(['image', 'ls'])).toBe('image');
    expect(familyOf(['build', '-t', 'app', '.'])).toBe('build');
    expect(familyOf(['-t', 'app', '.'])).toBe('build');
    expect(familyOf(['--tag', 'app', '.'])).toBe('build');
    expect(familyOf(['./dir'])).toBe('build');
    expect(familyOf(['/abs/dir'])).toBe('build');
    expect(familyOf(['Weird_Word'])).toBe('default');
    expect(familyOf(['run', '--help'])).toBe('default');
    expect(familyOf(['build', '-h'])).toBe('default');
  });
});
