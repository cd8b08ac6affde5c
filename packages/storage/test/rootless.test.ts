// The rootless mode's pure parts (unit tier, as nobody): subordinate id files, the maps newuidmap and
// newgidmap get, the one-line error for a user without ranges, the default root, and the container
// steps in a user namespace. The end-to-end tests as a real user are in test/rootless.test.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MIN_SUBORDINATE_IDS, TsbuildError, containerSteps, defaultStorageRoot, namespaceMapping, parseIdMap, rootlessMappings, rootlessRuntimeDir,
  subordinateRanges,
} from '@tsbuild/storage';

const user = { name: 'ci', uid: 1001, gid: 1002 };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function idFiles(subuid: string, subgid: string): { subuid: string; subgid: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-subids-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'subuid'), subuid);
  fs.writeFileSync(path.join(dir, 'subgid'), subgid);
  return { subuid: path.join(dir, 'subuid'), subgid: path.join(dir, 'subgid') };
}

describe('subordinate ids', () => {
  it('reads the user\'s blocks by name or uid, in file order, skipping others and bad lines', () => {
    const text = 'other:100000:65536\nci:200000:65536\n1001:300000:1000\nci:bad:1\nci:5:0\n\n';
    expect(subordinateRanges(text, { name: 'ci', id: 1001 })).toEqual([{ start: 200000, count: 65536 }, { start: 300000, count: 1000 }]);
    expect(subordinateRanges(text, { name: 'nobody', id: 65534 })).toEqual([]);
  });

  it('maps the user to 0 and the blocks from 1 on', () => {
    expect(namespaceMapping(1001, [{ start: 200000, count: 65536 }, { start: 300000, count: 10 }])).toEqual([
      { inside: 0, outside: 1001, count: 1 },
      { inside: 1, outside: 200000, count: 65536 },
      { inside: 65537, outside: 300000, count: 10 },
    ]);
  });

  it('gives uid and gid maps when both files have 65536 ids', () => {
    const maps = rootlessMappings(user, idFiles('ci:100000:65536\n', '1002:500000:65536\n'));
    expect(maps.uid).toEqual([{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 100000, count: 65536 }]);
    expect(maps.gid).toEqual([{ inside: 0, outside: 1002, count: 1 }, { inside: 1, outside: 500000, count: 65536 }]);
  });

  it('without enough ids: one line naming each file and the line it needs, exit 125 (no single-id fall back)', () => {
    const files = idFiles('ci:100000:1000\n', '');
    let err: unknown;
    try {
      rootlessMappings(user, files);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsbuildError);
    expect((err as TsbuildError).exitCode).toBe(125);
    expect((err as Error).message).toBe(
      `rootless mode needs subordinate ids for ci: ${files.subuid} needs a line "ci:100000:${MIN_SUBORDINATE_IDS}" (it gives 1000 ids) and ` +
        `${files.subgid} needs a line "ci:100000:${MIN_SUBORDINATE_IDS}" (as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ci)`,
    );
    expect((err as Error).message).not.toContain('\n');
  });

  it('parses /proc/self/uid_map', () => {
    expect(parseIdMap('         0       1001          1\n         1     100000      65536\n')).toEqual([
      { inside: 0, outside: 1001, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ]);
  });
});

describe('the runtime directory of the keeper', () => {
  it('is $XDG_RUNTIME_DIR/tsbuild, made 0700; one others can write is refused (exit 125)', () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-run-'));
    dirs.push(run);
    const uid = process.getuid!();
    const dir = rootlessRuntimeDir(uid, { XDG_RUNTIME_DIR: run });
    expect(dir).toBe(path.join(run, 'tsbuild'));
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    fs.chmodSync(dir, 0o777);
    expect(() => rootlessRuntimeDir(uid, { XDG_RUNTIME_DIR: run })).toThrow(`rootless mode: ${dir} must be a directory of uid ${uid} that only it can access (mode 0700)`);
  });
});

describe('the default storage root of a user', () => {
  it('is $XDG_DATA_HOME/tsbuild, else ~/.local/share/tsbuild (this tier runs as nobody)', () => {
    expect(process.geteuid?.()).not.toBe(0);
    expect(defaultStorageRoot({ XDG_DATA_HOME: '/data/u', HOME: '/home/u' })).toBe('/data/u/tsbuild');
    expect(defaultStorageRoot({ XDG_DATA_HOME: 'relative', HOME: '/home/u' })).toBe('/home/u/.local/share/tsbuild');
    expect(defaultStorageRoot({ HOME: '/home/u' })).toBe('/home/u/.local/share/tsbuild');
  });
});

describe('container steps in a user namespace', () => {
  const base = { rootfs: '/r', hostname: 'h' };

  it('binds the host\'s device nodes instead of mknod, and mounts proc before the pivot', () => {
    const steps = containerSteps({ ...base, rootless: true, ownNetwork: true });
    expect(steps.some((s) => s.op === 'mknod')).toBe(false);
    const opened = steps.filter((s) => s.op === 'openTree').map((s) => (s as { source: string }).source);
    expect(opened).toEqual(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
    const pivot = steps.findIndex((s) => s.op === 'pivotRoot');
    const proc = steps.findIndex((s) => s.op === 'mount' && (s as { type?: string }).type === 'proc');
    const sysfs = steps.findIndex((s) => s.op === 'mount' && (s as { type?: string }).type === 'sysfs');
    expect(proc).toBeLessThan(pivot);
    expect(sysfs).toBeLessThan(pivot);
    expect(steps[proc]).toMatchObject({ target: '/r/proc' });
  });

  it('binds the host\'s /sys read-only when the container shares the host network (sysfs needs its own)', () => {
    const steps = containerSteps({ ...base, rootless: true, ownNetwork: false });
    expect(steps.some((s) => s.op === 'mount' && (s as { type?: string }).type === 'sysfs')).toBe(false);
    const attach = steps.find((s) => s.op === 'attachTree' && (s as { target: string }).target === '/sys');
    expect(attach).toMatchObject({ flags: ['ro', 'nosuid', 'nodev', 'noexec'] });
  });

  it('as root: mknod and proc after the pivot, as before', () => {
    const steps = containerSteps({ ...base, ownNetwork: true });
    expect(steps.filter((s) => s.op === 'mknod')).toHaveLength(6);
    expect(steps.findIndex((s) => s.op === 'mount' && (s as { type?: string }).type === 'proc')).toBeGreaterThan(steps.findIndex((s) => s.op === 'pivotRoot'));
  });
});
