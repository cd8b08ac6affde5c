// The raw addon, called without the TypeScript wrappers: C++ is the second line of validation. A
// missing or mistyped key or argument is a TypeError naming it, never a silent default (a spawn spec
// without cloneFlags must not start a process in the host's namespaces).
import { describe, expect, it } from 'vitest';
import * as os from 'node:os';
import { binding, type NativeSpawnSpec } from '../src/binding';
import { normalizeSpawnSpec } from '../src/spawn';

/** A valid normalized spec with a step, an rlimit and capabilities, so every nested reader is reached. */
function validSpec(): NativeSpawnSpec {
  return normalizeSpawnSpec({
    args: ['/bin/true'],
    env: ['PATH=/bin'],
    stdio: [0, 1, 2],
    namespaces: ['uts'],
    steps: [{ op: 'sethostname', name: 'raw' }],
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: 64, hard: 64 }],
    capabilities: { bounding: ['CHOWN'], effective: ['CHOWN'], permitted: ['CHOWN'], inheritable: [], ambient: [] },
  });
}

/** The spec with one edit applied to a copy (`edit` may delete keys or set wrong types). */
function mutated(edit: (spec: Record<string, any>) => void): NativeSpawnSpec {
  const spec = structuredClone(validSpec()) as unknown as Record<string, any>;
  edit(spec);
  return spec as unknown as NativeSpawnSpec;
}

const noExit = () => {};

describe('spawn spec read by C++', () => {
  it('starts a process from a valid spec (the base of the cases below)', async () => {
    let exited!: (code: number | null) => void;
    const status = new Promise<number | null>((resolve) => (exited = resolve));
    const proc = await binding.spawn(validSpec(), (code) => exited(code));
    expect(proc.pid).toBeGreaterThan(0);
    expect(await status).toBe(0);
  });

  it('throws a TypeError naming a missing cloneFlags, and starts nothing', () => {
    const spec = mutated((s) => delete s.cloneFlags);
    expect(() => binding.spawn(spec, noExit)).toThrow(TypeError);
    expect(() => binding.spawn(spec, noExit)).toThrow('spawn: cloneFlags must be a number (got undefined)');
  });

  it.each<[string, (s: Record<string, any>) => void, string]>([
    ['a mistyped number', (s) => (s.cloneFlags = String(s.cloneFlags)), 'spawn: cloneFlags must be a number (got a string)'],
    ['a missing boolean', (s) => delete s.vfork, 'spawn: vfork must be a boolean (got undefined)'],
    ['a nullable key left out', (s) => delete s.cgroupDir, 'spawn: cgroupDir must be a string (got undefined)'],
    ['a non-string argv element', (s) => s.argv.push(1), 'spawn: argv[1] must be a string (got a number)'],
    ['a step without op', (s) => delete s.steps[0].op, 'spawn: steps[0].op must be a string (got undefined)'],
    ['an unknown step op', (s) => (s.steps[0].op = 'mountt'), "spawn: steps[0].op 'mountt' is not a setup step"],
    ['a mistyped optional step key', (s) => (s.steps[0].flags = 'rec'), 'spawn: steps[0].flags must be a number (got a string)'],
    ['an rlimit without hard', (s) => delete s.rlimits[0].hard, 'spawn: rlimits[0].hard must be a number (got undefined)'],
    ['caps without ambient', (s) => delete s.caps.ambient, 'spawn: caps.ambient must be a number (got undefined)'],
    ['two stdio fds', (s) => s.stdio.pop(), 'spawn: stdio must be three fds [stdin, stdout, stderr]'],
    ['a seccomp filter without flags', (s) => (s.seccomp = Buffer.alloc(8)), 'spawn: seccompFlags must be a number (got undefined)'],
  ])('throws a TypeError for %s', (_, edit, message) => {
    expect(() => binding.spawn(mutated(edit), noExit)).toThrow(new TypeError(message));
  });

  it('requires the spec to be an object and onExit a function', () => {
    expect(() => binding.spawn(null as never, noExit)).toThrow(new TypeError('spawn: the options must be an object (got null)'));
    expect(() => binding.spawn(validSpec(), undefined as never)).toThrow(new TypeError('spawn: onExit must be a function (got undefined)'));
  });
});

describe('positional arguments read by C++', () => {
  it('throws a TypeError naming the argument', async () => {
    const raw = binding as unknown as Record<string, (...args: unknown[]) => unknown>;
    const call = (name: string, ...args: unknown[]) => () => raw[name]!(...args);
    expect(call('mount', null, 5, null, 0, null)).toThrow(new TypeError('mount: target must be a string (got a number)'));
    expect(call('mountSync', null, '/x', null, undefined, null)).toThrow(new TypeError('mountSync: flags must be a number (got undefined)'));
    expect(call('umount', '/x', '2')).toThrow(new TypeError('umount: flags must be a number (got a string)'));
    expect(call('fsmount', 'overlay', ['a'], [5], 0, '/x')).toThrow(new TypeError('fsmount: values[0] must be a string (got a number)'));
    expect(call('fsmount', 'overlay', ['a'], [], 0, '/x')).toThrow(new TypeError('fsmount: keys and values must have the same length'));
    expect(call('lsetxattr', '/x', 'user.a', 'text', 0)).toThrow(new TypeError('lsetxattr: value must be a Buffer (got a string)'));
    expect(call('mknod', 7, 0, 0, 0)).toThrow(new TypeError('mknod: path must be a string or a Buffer (got a number)'));
    expect(call('flock', 0)).toThrow(new TypeError('flock: op must be a number (got undefined)'));
    expect(call('setCloexec', 0, 1)).toThrow(new TypeError('setCloexec: on must be a boolean (got a number)'));
  });
});

describe('failures from C++', () => {
  it('carry code, errno, syscall and path, from sync and async calls alike', async () => {
    const missing = '/nonexistent-tsbuild-path';
    const enoent = (syscall: string) => ({ code: 'ENOENT', errno: os.constants.errno.ENOENT, syscall, path: missing });
    expect(() => binding.statfs(missing)).toThrow(expect.objectContaining(enoent('statfs')));
    expect(() => binding.lgetxattr(missing, 'user.x')).toThrow(expect.objectContaining(enoent('lgetxattr')));
    expect(() => binding.umountSync(missing, 0)).toThrow(expect.objectContaining(enoent('umount2')));
    await expect(binding.umount(missing, 0)).rejects.toMatchObject(enoent('umount2'));
    await expect(binding.mount('tmpfs', missing, 'tmpfs', 0, null)).rejects.toMatchObject(enoent('mount'));
    await expect(binding.flockWait(999_999, 1)).rejects.toMatchObject({ code: 'EBADF', errno: os.constants.errno.EBADF, syscall: 'flock' });
  });
});
