// bin/code-cache.js: the CLI bundle's V8 code cache is used only for the exact bytes it was made from.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const CODE_CACHE = path.resolve(__dirname, '../../bin/code-cache.js');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-cache-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Loads `file` through the code cache in a new process (no in-memory compilation cache shared). */
function load(file: string, write = false): { answer: string; accepted: boolean } {
  const script = `
    const cc = require(${JSON.stringify(CODE_CACHE)});
    const loaded = cc.loadWithCodeCache(${JSON.stringify(file)});
    const answer = loaded.exports.answer();
    if (${write}) cc.writeCodeCache(${JSON.stringify(file)}, loaded);
    process.stdout.write(JSON.stringify({ answer, accepted: loaded.cacheAccepted }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { answer: string; accepted: boolean };
}

/** A module of a fixed length whose answer() returns `letter`; its functions are compiled when it runs. */
function writeModule(file: string, letter: string): void {
  fs.writeFileSync(file, `'use strict';\nfunction answer() { return [1, 2, 3].map((n) => n * 2).join('') + '${letter}'; }\nmodule.exports = { answer, self: typeof module.filename };\n`);
}

describe('the CLI bundle code cache', () => {
  it('is written after a run and accepted by the next process', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    expect(load(file, true)).toEqual({ answer: '246A', accepted: false });
    expect(fs.statSync(`${file}.cache`).size).toBeGreaterThan(32);
    expect(load(file)).toEqual({ answer: '246A', accepted: true });
  });

  it('is not used for other bytes of the same length (V8 itself checks only the length)', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    load(file, true);
    const cache = fs.readFileSync(`${file}.cache`);
    writeModule(file, 'B');
    expect(load(file)).toEqual({ answer: '246B', accepted: false });
    // What the guard prevents: V8 given A's data for B's source accepts it and runs A's code.
    const unguarded = `
      const vm = require('node:vm'); const Module = require('node:module'); const fs = require('node:fs');
      const source = Module.wrapper[0] + fs.readFileSync(${JSON.stringify(file)}, 'latin1') + Module.wrapper[1];
      const script = new vm.Script(source, { filename: ${JSON.stringify(file)}, cachedData: fs.readFileSync(${JSON.stringify(`${file}.cache`)}).subarray(32) });
      const m = { exports: {} }; script.runInThisContext()(m.exports, require, m, '', '');
      process.stdout.write(JSON.stringify({ answer: m.exports.answer(), rejected: script.cachedDataRejected }));`;
    fs.writeFileSync(`${file}.cache`, cache);
    expect(JSON.parse(spawnSync(process.execPath, ['-e', unguarded], { encoding: 'utf8' }).stdout)).toEqual({ answer: '246A', rejected: false });
  });

  it('falls back to compiling when the cache is damaged or missing', () => {
    const file = path.join(dir, 'bundle.js');
    writeModule(file, 'A');
    expect(load(file)).toEqual({ answer: '246A', accepted: false });
    load(file, true);
    const cache = fs.readFileSync(`${file}.cache`);
    fs.writeFileSync(`${file}.cache`, Buffer.concat([cache.subarray(0, 32), Buffer.alloc(cache.length - 32, 0xa5)]));
    expect(load(file)).toEqual({ answer: '246A', accepted: false });
    fs.writeFileSync(`${file}.cache`, cache.subarray(0, 10));
    expect(load(file)).toEqual({ answer: '246A', accepted: false });
  });
});
