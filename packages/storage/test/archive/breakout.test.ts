// The moby/go-archive breakout catalog (REFERENCE §5.1), table-driven over fixtures/tars.ts, with
// go-archive's testBreakout harness: dest beside victim/hello; victim must stay untouched, no regular
// file under dest may hold hello's bytes, and the only error allowed is a path-escape error (unless the
// case names another). Runs for apply modes merge and overlay, under both symlink-escape policies.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { applyTar, type ApplyWhiteouts } from '../../src/archive/apply';
import { packDir } from '../../src/archive/pack';
import { readTar } from '../../src/archive/tar-reader';
import { BreakoutError, resolveInRoot, resolveInRootSync } from '../../src/archive/resolve';
import { breakoutCatalog, makeTar, type BreakoutCase, type BreakoutOutcome } from '../../../../fixtures/tars';
import { errorOf } from '../../../../test/helpers/errors';
import { bufferStream, collect } from '../../../../test/helpers/streams';
import { tempRootsPerTest } from '../../../../test/helpers/temp';

const newRoot = tempRootsPerTest();
let base: string;
beforeEach(() => {
  base = newRoot('breakout');
});

interface Layout {
  outer: string;
  dest: string;
  victim: string;
  hello: Buffer;
  helloMode: number;
  secret: Buffer;
}

/** base/outer/{dest, dest/victim, victim/hello, dest-evil/secret}: go-archive's layout plus the sibling. */
function layout(): Layout {
  const outer = path.join(base, 'outer');
  const dest = path.join(outer, 'dest');
  const victim = path.join(outer, 'victim');
  fs.mkdirSync(path.join(dest, 'victim'), { recursive: true });
  fs.mkdirSync(victim);
  fs.mkdirSync(path.join(outer, 'dest-evil'));
  const hello = Buffer.from(`${new Date().toISOString()} ${crypto.randomBytes(8).toString('hex')}`);
  fs.writeFileSync(path.join(victim, 'hello'), hello, { mode: 0o644 });
  const secret = Buffer.from(`secret ${crypto.randomBytes(8).toString('hex')}`);
  fs.writeFileSync(path.join(outer, 'dest-evil', 'secret'), secret, { mode: 0o600 });
  return { outer, dest, victim, hello, helloMode: fs.statSync(path.join(victim, 'hello')).mode, secret };
}

function prepare(dest: string, before: BreakoutCase['before']): void {
  for (const b of before ?? []) {
    const p = path.join(dest, b.path);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (b.type === 'dir') fs.mkdirSync(p, { recursive: true });
    else if (b.type === 'symlink') fs.symlinkSync(b.target!, p);
    else fs.writeFileSync(p, b.content ?? '');
  }
}

/** Regular files under dir (symlinks never followed). */
function regularFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...regularFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** go-archive's testBreakout checks, plus: nothing appeared beside dest or above it. */
function assertContained(l: Layout): void {
  expect(fs.readdirSync(base)).toEqual(['outer']);
  expect(fs.readdirSync(l.outer).sort()).toEqual(['dest', 'dest-evil', 'victim']);
  expect(fs.lstatSync(l.victim).isDirectory()).toBe(true);
  expect(fs.readdirSync(l.victim)).toEqual(['hello']);
  const hello = path.join(l.victim, 'hello');
  expect(fs.lstatSync(hello).mode).toBe(l.helloMode);
  expect(fs.readFileSync(hello)).toEqual(l.hello);
  expect(fs.readdirSync(path.join(l.outer, 'dest-evil'))).toEqual(['secret']);
  expect(fs.readFileSync(path.join(l.outer, 'dest-evil', 'secret'))).toEqual(l.secret);
  for (const f of regularFiles(l.dest)) {
    const data = fs.readFileSync(f);
    expect(data.equals(l.hello), `${f} holds victim/hello's bytes`).toBe(false);
    expect(data.equals(l.secret), `${f} holds dest-evil/secret's bytes`).toBe(false);
  }
}

function assertOutcome(c: BreakoutCase, expected: BreakoutOutcome, err: (Error & { code?: string }) | null): void {
  if (expected === 'ok') {
    expect(err, `${c.id} should extract`).toBeNull();
  } else if (expected === 'breakout') {
    expect(err, `${c.id} should be refused as a breakout`).toBeInstanceOf(BreakoutError);
    expect(err!.code).toBe('EBREAKOUT');
    expect(err!.message).toMatch(/path breakout/);
    // the error names the entry
    expect(c.entries.some((e) => err!.message.includes(JSON.stringify(e.name)))).toBe(true);
  } else {
    expect(err, `${c.id} should fail`).not.toBeNull();
    expect(err).not.toBeInstanceOf(BreakoutError);
    expect(err!.message).toMatch(expected.error);
  }
}

const ino = (p: string) => fs.lstatSync(p).ino;

/** What each case leaves in dest, beyond containment. */
const after: Record<string, (dest: string, policy: 'clamp' | 'error') => void> = {
  SiblingPrefix: (d) => expect(fs.existsSync(path.join(d, 'grab'))).toBe(false),
  HardlinkToSymlink: (d) => {
    expect(fs.lstatSync(path.join(d, 'symlink2')).isSymbolicLink()).toBe(true);
    expect(ino(path.join(d, 'symlink2'))).toBe(ino(path.join(d, 'symlink1')));
    expect(fs.readlinkSync(path.join(d, 'symlink2'))).toBe('regfile');
  },
  AbsoluteHardlink: (d) => {
    expect(ino(path.join(d, 'usr/bin/perlthanks'))).toBe(ino(path.join(d, 'usr/bin/perlbug')));
    expect(fs.readFileSync(path.join(d, 'usr/bin/perlthanks'), 'utf8')).toBe('hello');
  },
  'InvalidSymlink/dotdot': (d) => expect(fs.readlinkSync(path.join(d, 'dotdot'))).toBe('../victim/hello'),
  'InvalidSymlink/slash-dotdot': (d) => expect(fs.readlinkSync(path.join(d, 'slash-dotdot'))).toBe('/../victim/hello'),
  'InvalidSymlink/loophole-write-through': (d, p) => expect(fs.existsSync(path.join(d, 'victim/file'))).toBe(p === 'clamp'),
  'InvalidSymlink/loophole-replace': (d) => expect(fs.lstatSync(path.join(d, 'loophole-victim')).isFile()).toBe(true),
  'InvalidSymlink/dir-loophole': (d, p) => expect(fs.existsSync(path.join(d, 'victim/newdir/newfile'))).toBe(p === 'clamp'),
  SymlinkBreakout: (d, p) => {
    expect(fs.readlinkSync(path.join(d, 'inner/go_up'))).toBe('..');
    expect(fs.existsSync(path.join(d, 'victim/newfile'))).toBe(p === 'clamp');
  },
  'ThroughAbsoluteSymlink/existing-target': (d) => {
    expect(fs.readFileSync(path.join(d, 'run/existing/non-existing/file'), 'utf8')).toBe('content');
    expect(fs.readlinkSync(path.join(d, 'var/run'))).toBe('/run');
  },
  'ThroughAbsoluteSymlink/missing-target': (d) => {
    expect(fs.readFileSync(path.join(d, 'run/existing/non-existing/file'), 'utf8')).toBe('content');
    expect(fs.readlinkSync(path.join(d, 'var/run'))).toBe('/run');
  },
  RelativeEscapeBeforeAbsoluteSymlink: (d, p) => expect(fs.existsSync(path.join(d, 'target/file'))).toBe(p === 'clamp'),
  HardlinkSourceThroughAbsoluteSymlink: (d) => {
    expect(fs.readFileSync(path.join(d, 'run/link'), 'utf8')).toBe('content');
    expect(ino(path.join(d, 'run/link'))).toBe(ino(path.join(d, 'run/source')));
    expect(fs.lstatSync(path.join(d, 'run/source')).nlink).toBe(2);
  },
  ImpliedDirectoriesThroughLowerSymlink: (d) => {
    expect(fs.readlinkSync(path.join(d, 'lib'))).toBe('usr/lib');
    expect(fs.readFileSync(path.join(d, 'usr/lib/systemd/system/container.service'), 'utf8')).toBe('content');
  },
};

describe.each<ApplyWhiteouts>(['merge', 'overlay'])('breakout catalog, apply mode %s', (mode) => {
  describe.each<'clamp' | 'error'>(['clamp', 'error'])('symlinkEscape %s', (policy) => {
    it.each(breakoutCatalog.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
      const l = layout();
      prepare(l.dest, c.before);
      const tar = makeTar(c.entries);
      let err: (Error & { code?: string }) | null = null;
      try {
        const r = await applyTar(bufferStream(tar), l.dest, { whiteouts: mode, symlinkEscape: policy });
        expect(r.diffID).toBe(`sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      assertOutcome(c, c.outcome[policy], err);
      assertContained(l);
      after[c.id]?.(l.dest, policy);
    });
  });
});

it('covers every shape of the catalog in REFERENCE §5.1', () => {
  const ids = new Set(breakoutCatalog.map((c) => c.id.split('/')[0]));
  for (const name of [
    'InvalidFilenames', 'ParentTraversal', 'SiblingPrefix', 'HardlinkToSymlink', 'InvalidHardlink', 'AbsoluteHardlink',
    'InvalidSymlink', 'SymlinkBreakout', 'InvalidWhiteoutName', 'ThroughAbsoluteSymlink', 'RelativeEscapeBeforeAbsoluteSymlink',
    'HardlinkSourceThroughAbsoluteSymlink', 'ImpliedDirectoriesThroughLowerSymlink',
  ]) {
    expect(ids.has(name), name).toBe(true);
  }
});

describe('chrootarchive malicious symlinks (CVE-2018-15664 shapes)', () => {
  function hostLayout() {
    const root = path.join(base, 'root');
    fs.mkdirSync(root);
    const hostFile = path.join(base, 'host-file');
    fs.writeFileSync(hostFile, 'I am a host file');
    fs.symlinkSync(base, path.join(root, 'safe')); // root/safe → the host dir above root
    return { root, hostFile };
  }

  it('UntarWithMaliciousSymlinks: extracting to root/safe resolved in root never writes the host file', async () => {
    const { root, hostFile } = hostLayout();
    const dest = await resolveInRoot(root, 'safe', { followFinal: true, createParents: true });
    expect(dest).toBe(path.join(root, base));
    fs.mkdirSync(dest, { recursive: true });
    await applyTar(bufferStream(makeTar([{ name: 'host-file', content: 'pwn3d' }])), dest, { whiteouts: 'merge' });
    expect(fs.readFileSync(hostFile, 'utf8')).toBe('I am a host file');
    expect(fs.readFileSync(path.join(root, base, 'host-file'), 'utf8')).toBe('pwn3d');
  });

  it('TarWithMaliciousSymlinks: packing root never emits host data', async () => {
    const { root } = hostLayout();
    const includes: Array<((p: string) => boolean) | undefined> = [undefined, (p) => p === 'safe' || p.startsWith('safe/'), (p) => p.startsWith('/safe')];
    for (const include of includes) {
      const tar = await collect(packDir(root, { whiteouts: 'none', ...(include && { include }) }));
      expect(tar.includes(Buffer.from('I am a host file'))).toBe(false);
      const names: string[] = [];
      for await (const e of readTar(bufferStream(tar))) {
        names.push(`${e.header.type}:${e.header.name}`);
        await e.drain();
      }
      expect(names).toEqual(include && include('safe') === false ? [] : ['symlink:safe']);
    }
  });
});

describe('resolveInRoot', () => {
  function tree() {
    const root = path.join(base, 'root');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), '');
    fs.writeFileSync(path.join(root, 'file'), '');
    fs.symlinkSync('/etc', path.join(root, 'abs'));
    fs.symlinkSync('../../../../etc', path.join(root, 'up'));
    fs.symlinkSync('loop2', path.join(root, 'loop1'));
    fs.symlinkSync('loop1', path.join(root, 'loop2'));
    fs.symlinkSync('/missing/deeper', path.join(root, 'dangling'));
    return root;
  }

  it('re-roots absolute targets, clamps .., keeps dangling paths inside', async () => {
    const root = tree();
    for (const resolve of [resolveInRoot, async (r: string, p: string, o?: object) => resolveInRootSync(r, p, o)]) {
      expect(await resolve(root, 'abs/passwd')).toBe(path.join(root, 'etc/passwd'));
      expect(await resolve(root, '/abs/../abs/passwd')).toBe(path.join(root, 'etc/passwd'));
      expect(await resolve(root, 'up/passwd')).toBe(path.join(root, 'etc/passwd'));
      expect(await resolve(root, '../../../etc/x')).toBe(path.join(root, 'etc/x'));
      expect(await resolve(root, 'dangling/x')).toBe(path.join(root, 'missing/deeper/x'));
      expect(await resolve(root, 'abs')).toBe(path.join(root, 'abs'));
      expect(await resolve(root, 'abs', { followFinal: true })).toBe(path.join(root, 'etc'));
      expect(await resolve(root, '')).toBe(root);
    }
  });

  it('fails clearly on loops, non-dirs and (when asked) escapes', async () => {
    const root = tree();
    expect((await errorOf(() => resolveInRoot(root, 'loop1/x'))).code).toBe('ELOOP');
    expect(() => resolveInRootSync(root, 'loop1', { followFinal: true })).toThrow(/too many levels of symbolic links/);
    expect((await errorOf(() => resolveInRoot(root, 'file/x'))).message).toMatch(/is not a directory/);
    const esc = await errorOf(() => resolveInRoot(root, 'up/passwd', { escape: 'error' }));
    expect(esc).toBeInstanceOf(BreakoutError);
    expect(await resolveInRoot(root, 'abs/passwd', { escape: 'error' })).toBe(path.join(root, 'etc/passwd'));
  });

  it('creates missing parents inside the root only', async () => {
    const root = tree();
    const created: string[] = [];
    const p = await resolveInRoot(root, 'dangling/a/b/file', { createParents: true, onCreate: (d) => created.push(d) });
    expect(p).toBe(path.join(root, 'missing/deeper/a/b/file'));
    expect(created).toEqual(['missing', 'missing/deeper', 'missing/deeper/a', 'missing/deeper/a/b'].map((d) => path.join(root, d)));
    expect(fs.statSync(path.join(root, 'missing/deeper/a/b')).mode & 0o7777).toBe(0o755);
    expect(fs.existsSync('/missing')).toBe(false);
  });
});
