import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeKnownDir, renameNoReplace, writeFileAtomic } from '../src/atomic';
import { StoreLock } from '../src/lock';

const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** Another process holding the lock (util-linux flock(1)) until we write a line to it. */
async function holdInChild(file: string, mode: '-x' | '-s'): Promise<ChildProcess> {
  const child = spawn('flock', [mode, file, '-c', 'echo locked; read x'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock(1) exited ${code}`)));
  });
  return child;
}

function release(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.stdin!.end('\n');
  });
}

describe('StoreLock', () => {
  let tmp: string;
  let file: string;
  const children: ChildProcess[] = [];
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-lock-'));
    file = path.join(tmp, 'store.lock');
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('waits for another process without blocking the event loop', async () => {
    const lock = new StoreLock(file);
    const child = await holdInChild(file, '-x');
    children.push(child);
    let ran = false;
    const p = lock.withShared(() => {
      ran = true;
      return 42;
    });
    await turns(); // the loop keeps turning while we wait
    expect(ran).toBe(false);
    await release(child);
    expect(await p).toBe(42);
    expect(ran).toBe(true);
  });

  it('shares with other readers and excludes other processes while exclusive', async () => {
    const lock = new StoreLock(file);
    const child = await holdInChild(file, '-s');
    children.push(child);
    expect(await lock.withShared(() => 'together')).toBe('together');
    await release(child);
    await lock.withExclusive(() => {
      expect(() => execFileSync('flock', ['-n', '-s', file, 'true'])).toThrow();
    });
    execFileSync('flock', ['-n', '-x', file, 'true']); // released afterwards
  });

  it('serializes exclusive sections in one process and lets shared ones overlap', async () => {
    const a = new StoreLock(file);
    const b = new StoreLock(file); // same path: same in-process state
    let inside = 0;
    let maxInside = 0;
    const section = async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      await turns(3);
      inside--;
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).withExclusive(section)));
    expect(maxInside).toBe(1);
    maxInside = 0;
    await Promise.all(Array.from({ length: 6 }, () => a.withShared(section)));
    expect(maxInside).toBe(6);
    const order: string[] = [];
    await Promise.all([
      a.withShared(async () => {
        order.push('r1');
        await turns(3);
        order.push('r1 end');
      }),
      a.withExclusive(() => {
        order.push('w');
      }),
      a.withShared(() => {
        order.push('r2');
      }),
    ]);
    // The writer waits for r1; r2 queues behind the writer (writers do not starve).
    expect(order).toEqual(['r1', 'r1 end', 'w', 'r2']);
  });

  it('follows a lock file that was removed and recreated', async () => {
    const lock = new StoreLock(file);
    await lock.withExclusive(() => {});
    fs.rmSync(file);
    await lock.withExclusive(() => {
      expect(fs.existsSync(file)).toBe(true);
      expect(() => execFileSync('flock', ['-n', '-s', file, 'true'])).toThrow();
    });
  });

  it('is reentrant within one async call chain and refuses upgrades', async () => {
    const lock = new StoreLock(file);
    const got = await lock.withExclusive(async () => {
      const inner = await lock.withExclusive(async () => lock.withShared(() => lock.heldMode()));
      return inner;
    });
    expect(got).toBe('exclusive');
    await expect(lock.withShared(() => lock.withExclusive(() => 1))).rejects.toThrow(/cannot take it exclusively while holding it shared/);
    // Still usable afterwards.
    expect(await lock.withExclusive(() => 'ok')).toBe('ok');
    // An error inside releases the lock.
    await expect(lock.withExclusive(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    execFileSync('flock', ['-n', '-x', file, 'true']);
  });
});

describe('atomic writes', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-atomic-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writeFileAtomic replaces a file and leaves no temporary file', async () => {
    const f = path.join(tmp, 'index.json');
    await writeFileAtomic(f, 'one');
    await writeFileAtomic(f, Buffer.from('two'));
    expect(fs.readFileSync(f, 'utf8')).toBe('two');
    expect(fs.readdirSync(tmp)).toEqual(['index.json']);
    await expect(writeFileAtomic(path.join(tmp, 'missing', 'x'), 'x')).rejects.toThrow(/ENOENT/);
  });

  it('renameNoReplace does not overwrite', async () => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    fs.writeFileSync(a, 'A');
    fs.writeFileSync(b, 'B');
    expect(await renameNoReplace(a, b)).toBe(false);
    expect(fs.readFileSync(b, 'utf8')).toBe('B');
    fs.rmSync(b);
    expect(await renameNoReplace(a, b)).toBe(true);
    expect(fs.existsSync(a)).toBe(false);
    expect(fs.readFileSync(b, 'utf8')).toBe('A');
  });

  it('removeKnownDir removes a dir of the named files, one with more in it, and a missing one', () => {
    const known = path.join(tmp, 'known');
    fs.mkdirSync(known);
    fs.writeFileSync(path.join(known, 'hosts'), 'x');
    removeKnownDir(known, ['hosts', 'hostname']); // a named file that is not there is fine
    expect(fs.existsSync(known)).toBe(false);
    const more = path.join(tmp, 'more');
    fs.mkdirSync(path.join(more, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(more, 'sub', 'f'), 'x');
    fs.writeFileSync(path.join(more, 'unexpected'), 'x');
    removeKnownDir(more, ['sub']); // a dir where a file was named: the recursive fallback takes it
    expect(fs.existsSync(more)).toBe(false);
    removeKnownDir(path.join(tmp, 'missing'), ['x']);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
