// File names are bytes (issue 9, defect 4): a name that is not valid UTF-8 survives COPY, RUN, import
// of a GNU tar, save and load byte for byte, as with Docker, on overlay2 and vfs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { decodeName, encodeName } from '@tsbuild/storage';
import { CLI, cli, cliRootWithBusybox } from './helpers/roots';

const paths = cliRootWithBusybox('tsbuild-bytes-');

const B = (s: string) => Buffer.from(s, 'latin1');
/** The names as raw bytes: a file, a directory and a file in it, a symlink to the file. */
const BAD_FILE = B('bad\xff\xfe');
const BAD_DIR = B('dir\xff');
const BAD_INNER = B('inner\xc3');
const BAD_LINK = B('link\xfe');

/** A directory holding the non-UTF-8 names (made through Buffer paths). */
function makeTree(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const at = (...parts: Buffer[]) => Buffer.concat([B(`${dir}/`), ...parts.flatMap((p, i) => (i ? [B('/'), p] : [p]))]);
  fs.writeFileSync(at(BAD_FILE), 'bad\n');
  fs.mkdirSync(at(BAD_DIR));
  fs.writeFileSync(at(BAD_DIR, BAD_INNER), 'inner\n');
  fs.symlinkSync(BAD_FILE, at(BAD_LINK));
}

/** The names under `dir` (recursively), as latin1 strings of their bytes, sorted. */
function namesUnder(dir: Buffer | string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
    const rel = prefix + name.toString('latin1');
    out.push(rel);
    const full = Buffer.concat([Buffer.isBuffer(dir) ? dir : B(dir), B('/'), name]);
    if (fs.lstatSync(full).isDirectory()) out.push(...namesUnder(full, `${rel}/`));
  }
  return out.sort();
}

/** Runs a command in a container and returns its raw stdout. */
function runBytes(root: string, args: string[]): Buffer {
  const r = spawnSync(process.execPath, [CLI, '--root', root, 'run', '--rm', ...args], { timeout: 120_000 });
  expect(r.stderr.toString()).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

/** skopeo + umoci unpack of an OCI archive: the rootfs as those tools see it. */
function unpackWithUmoci(archive: string, work: string): string {
  execFileSync('skopeo', ['copy', '-q', `oci-archive:${archive}`, `oci:${work}/layout:img`]);
  execFileSync('umoci', ['unpack', '--image', `${work}/layout:img`, `${work}/bundle`], { stdio: 'ignore' });
  return `${work}/bundle/rootfs`;
}

describe('names that are not UTF-8', () => {
  it('decodeName/encodeName keep any bytes and leave UTF-8 names as they are', () => {
    for (const bytes of [BAD_FILE, BAD_INNER, B('\xed\xa0\x80'), B('\xf4\x90\x80\x80'), Buffer.from('héllo ✓ 😀'), Buffer.from([0xc0, 0x80, 0xe0, 0x80])]) {
      expect(encodeName(decodeName(bytes))).toEqual(bytes);
    }
    expect(decodeName(Buffer.from('héllo ✓ 😀'))).toBe('héllo ✓ 😀');
  });

  for (const driver of ['overlay2', 'vfs'] as const) {
    it(`COPY . and RUN keep them, and save → load, skopeo + umoci keep the bytes (${driver})`, () => {
      const root = path.join(paths.top, `root-${driver}`);
      const work = path.join(paths.top, `work-${driver}`);
      fs.mkdirSync(work);
      const g = ['--storage-driver', driver];
      expect(cli(root, [...g, 'load', '-i', saveBusybox()]).status).toBe(0);
      const ctx = path.join(work, 'ctx');
      makeTree(ctx);
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY . /c/\nRUN touch "$(printf \'/c/run\\377\\376\')"\n');
      const built = cli(root, [...g, 'build', '-q', '-t', 'names', ctx]);
      expect(built.stderr).toBe('');
      expect(built.status).toBe(0);

      const expected = ['Dockerfile', 'bad\xff\xfe', 'dir\xff', 'dir\xff/inner\xc3', 'link\xfe', 'run\xff\xfe'];
      const listed = runBytes(root, ['names', 'sh', '-c', 'cd /c && find . -mindepth 1 | sort']);
      expect(listed.toString('latin1').split('\n').filter(Boolean).map((l) => l.slice(2)).sort()).toEqual(expected);
      expect(runBytes(root, ['names', 'sh', '-c', 'cat /c/link*'])).toEqual(B('bad\n'));

      // save → our own load into a fresh root
      const archive = path.join(work, 'names.tar');
      expect(cli(root, [...g, 'save', '--format', 'oci', '-o', archive, 'names']).status).toBe(0);
      const other = path.join(work, 'other');
      expect(cli(other, [...g, 'load', '-i', archive]).status).toBe(0);
      const again = runBytes(other, ['names', 'sh', '-c', 'cd /c && find . -mindepth 1 | sort']);
      expect(again).toEqual(listed);
      // … and through skopeo and umoci
      const rootfs = unpackWithUmoci(archive, work);
      expect(namesUnder(path.join(rootfs, 'c'))).toEqual(expected);
      expect(fs.readlinkSync(Buffer.concat([B(`${rootfs}/c/`), BAD_LINK]), { encoding: 'buffer' })).toEqual(BAD_FILE);
    });
  }

  it('import of a GNU tar keeps them (was rewritten to U+FFFD)', () => {
    const work = path.join(paths.top, 'work-import');
    const src = path.join(work, 'src');
    makeTree(src);
    const tarball = path.join(work, 'gnu.tar');
    execFileSync('tar', ['--format=gnu', '-C', src, '-cf', tarball, '.']);
    expect(cli(paths.root, ['import', tarball, 'gnu:1']).status).toBe(0);
    const archive = path.join(work, 'gnu-saved.tar');
    expect(cli(paths.root, ['save', '--format', 'oci', '-o', archive, 'gnu:1']).status).toBe(0);
    const rootfs = unpackWithUmoci(archive, work);
    expect(namesUnder(rootfs)).toEqual(['bad\xff\xfe', 'dir\xff', 'dir\xff/inner\xc3', 'link\xfe']);
    expect(fs.readFileSync(Buffer.concat([B(`${rootfs}/`), BAD_DIR, B('/'), BAD_INNER]), 'utf8')).toBe('inner\n');
  });
});

let busyboxArchive: string | undefined;
/** The base busybox image as a docker archive, to load into the per-driver roots. */
function saveBusybox(): string {
  if (!busyboxArchive) {
    busyboxArchive = path.join(paths.top, 'busybox.tar');
    expect(cli(paths.root, ['save', '-o', busyboxArchive, 'busybox']).status).toBe(0);
  }
  return busyboxArchive;
}
