// Stale container cgroups (left by a killed tsbuild) are removed on the real v1 tree; fresh ones stay.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { removeStaleCgroups } from '../src/runtime';

const parent = `tsbuild-stale-${process.pid}`;
const dirs = ['pids', 'memory'].map((c) => path.join('/sys/fs/cgroup', c, parent));

afterEach(() => {
  for (const d of dirs) {
    if (!fs.existsSync(d)) continue;
    for (const child of fs.readdirSync(d, { withFileTypes: true })) if (child.isDirectory()) fs.rmdirSync(path.join(d, child.name));
    fs.rmdirSync(d);
  }
});

it('removes empty container groups older than the grace period and keeps recent ones', () => {
  const id = 'a'.repeat(64);
  for (const d of dirs) fs.mkdirSync(path.join(d, id), { recursive: true });
  expect(removeStaleCgroups({ version: 1, parent, minAgeMs: 60_000 })).toBe(0);
  expect(fs.existsSync(path.join(dirs[0]!, id))).toBe(true);
  expect(removeStaleCgroups({ version: 1, parent, minAgeMs: 0 })).toBe(2);
  for (const d of dirs) expect(fs.existsSync(path.join(d, id))).toBe(false);
});
