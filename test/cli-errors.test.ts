// What users see when their input or their machine is at fault: exit 1 and one line naming the cause,
// never "internal error" (exit 125 is kept for tsbuild's own bugs), never a stack trace, names cut to
// a readable length. Also the storage root checks (a root under /proc once made tsbuild spin forever).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirpSync, prepareRoot } from '@tsbuild/storage';
import { makeTar } from '../fixtures/tars';
import { CLI, cli, cliRootWithBusybox } from './helpers/roots';
import { startRegistry, type RegistryPeer } from './peers/registry';

const paths = cliRootWithBusybox('tsbuild-clierr-');

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** A docker-archive (manifest.json, config, layer) around `layer`; `edit` may change any member. */
function dockerArchive(layer: Buffer, opts: { diffID?: string; repoTags?: string[]; edit?: (files: Map<string, Buffer>, layerName: string) => void } = {}): string {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [opts.diffID ?? `sha256:${sha(layer)}`] } }));
  const layerName = `blobs/sha256/${sha(layer)}`;
  const configName = `blobs/sha256/${sha(config)}`;
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: opts.repoTags ?? ['x:1'], Layers: [layerName] }]));
  const files = new Map<string, Buffer>([
    [configName, config],
    [layerName, layer],
    ['manifest.json', manifest],
  ]);
  opts.edit?.(files, layerName);
  const file = path.join(paths.top, `archive-${crypto.randomBytes(4).toString('hex')}.tar`);
  fs.writeFileSync(file, makeTar([...files].map(([name, content]) => ({ name, content }))));
  return file;
}

const layerOf = (entries: Parameters<typeof makeTar>[0]) => makeTar(entries);

/** Runs the CLI and asserts the user-error contract: exit 1, one line, no stack, no "internal error". */
function expectUserError(rootDir: string, args: string[], pattern: RegExp): string {
  const r = cli(rootDir, args);
  const line = r.stderr;
  expect(line).toMatch(/^tsbuild: [^\n]*\n$/);
  expect(line).not.toContain('internal error');
  expect(line).toMatch(pattern);
  expect(line.length).toBeLessThan(600);
  expect(r.status).toBe(1);
  return line;
}

describe('refused archives are user errors', () => {
  const fresh = () => path.join(paths.top, `r-${crypto.randomBytes(4).toString('hex')}`);
  const hello = () => layerOf([{ name: 'hello', content: 'hi\n' }]);

  it('a missing layer', () => {
    const file = dockerArchive(hello(), { edit: (files, layer) => files.delete(layer) });
    expectUserError(fresh(), ['load', '-i', file], /layer blobs\/sha256\/[0-9a-f]{64} is missing from the archive/);
  });

  it('a layer that does not hash to its name, and one that does not match its diff_id', () => {
    const swapped = dockerArchive(hello(), { edit: (files, layer) => files.set(layer, layerOf([{ name: 'BACKDOOR' }])) });
    expectUserError(fresh(), ['load', '-i', swapped], /is corrupt: expected sha256:/);
    const wrongDiffID = dockerArchive(hello(), { diffID: `sha256:${'0'.repeat(64)}` });
    expectUserError(fresh(), ['load', '-i', wrongDiffID], /does not match its diff_id|diff/);
  });

  it('a truncated gzip layer', () => {
    const layer = hello();
    const gz = zlib.gzipSync(Buffer.concat([layer, crypto.randomBytes(64 << 10)])).subarray(0, 2000);
    const file = dockerArchive(gz, { diffID: `sha256:${sha(layer)}` });
    expectUserError(fresh(), ['load', '-i', file], /corrupt or truncated compressed data|does not match/);
  });

  it('an invalid RepoTags entry', () => {
    const file = dockerArchive(hello(), { repoTags: ['Bad:Tag'] });
    expectUserError(fresh(), ['load', '-i', file], /RepoTags: invalid reference "Bad:Tag": repository name must be lowercase/);
  });

  it('a symlink loop in a layer', () => {
    const file = dockerArchive(
      layerOf([
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'a' },
        { name: 'a/x', content: 'x' },
      ]),
    );
    expectUserError(fresh(), ['load', '-i', file], /cannot extract tar entry "a\/x": .*too many levels of symbolic links/);
  });

  it('overlong names are refused and cut in the message', () => {
    const longName = dockerArchive(layerOf([{ name: 'n'.repeat(300), content: 'x' }]));
    const line = expectUserError(fresh(), ['load', '-i', longName], /cannot extract tar entry "n+…n+": name too long$/m);
    expect(line.length).toBeLessThan(300);
    const longPath = dockerArchive(layerOf([{ name: Array(30).fill('d'.repeat(200)).join('/'), content: 'x' }]));
    expectUserError(fresh(), ['load', '-i', longPath], /cannot extract tar entry "d+…d+": name too long$/m);
  });

  // Found by the metadata fuzzer (test/fuzz/manifests.fuzz.test.ts): each was a TypeError (exit 125).
  it('malformed metadata: a manifest config that is not a descriptor, a null oci-layout, RepoTags not an array, diff_ids not an array', () => {
    const layer = hello();
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] } }));
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: `sha256:${sha(config)}`, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha(layer)}`, size: layer.length }] }),
    );
    const oci = (layout: unknown) => {
      const file = path.join(paths.top, `oci-${crypto.randomBytes(4).toString('hex')}.tar`);
      const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(manifest)}`, size: manifest.length }] };
      const members = [['oci-layout', Buffer.from(JSON.stringify(layout))], ['index.json', Buffer.from(JSON.stringify(index))], ...[config, layer, manifest].map((b) => [`blobs/sha256/${sha(b)}`, b])] as [string, Buffer][];
      fs.writeFileSync(file, makeTar(members.map(([name, content]) => ({ name, content }))));
      return file;
    };
    expectUserError(fresh(), ['load', '-i', oci({ imageLayoutVersion: '1.0.0' })], /manifest sha256:[0-9a-f]{64}: config is malformed: a descriptor must be an object$/m);
    expectUserError(fresh(), ['load', '-i', oci(null)], /unsupported OCI layout version undefined$/m);
    expectUserError(fresh(), ['load', '-i', dockerArchive(layer, { edit: (files) => files.set('manifest.json', Buffer.from(JSON.stringify([{ Config: [...files.keys()][0], RepoTags: 'x:1', Layers: [[...files.keys()][1]] }]))) })], /RepoTags must be an array of strings$/m);
    const badDiffIDs = dockerArchive(layer, {
      edit: (files, layerName) => {
        const cfg = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: 7 } }));
        files.clear();
        files.set(`blobs/sha256/${sha(cfg)}`, cfg).set(layerName, layer);
        files.set('manifest.json', Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${sha(cfg)}`, RepoTags: ['x:1'], Layers: [layerName] }])));
      },
    });
    expectUserError(fresh(), ['load', '-i', badDiffIDs], /config sha256:[0-9a-f]{64} is malformed: no rootfs.diff_ids array$/m);
  });

  it('load -i of a missing file or a directory', () => {
    expectUserError(paths.root, ['load', '-i', '/nonexistent'], /^tsbuild: archive not found: \/nonexistent$/m);
    expectUserError(paths.root, ['load', '-i', paths.top], /not a regular file$/m);
  });
});

describe('a full disk is the machine, not a bug', () => {
  let small: string;
  beforeAll(() => {
    small = path.join(paths.top, 'small');
    fs.mkdirSync(small);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]).status).toBe(0);
  });
  afterAll(() => {
    spawnSync('umount', [small]);
  });

  it('ENOSPC in save names the output; nothing is left behind', () => {
    const out = path.join(small, 'busybox.tar');
    expectUserError(paths.root, ['save', '-o', out, 'busybox'], /^tsbuild: cannot write .*busybox.tar: no space left on device$/m);
    expect(fs.readdirSync(small)).toEqual([]);
  });

  it('ENOSPC in load', () => {
    const archive = path.join(paths.top, 'busybox-save.tar');
    expect(cli(paths.root, ['save', '-o', archive, 'busybox']).status).toBe(0);
    expectUserError(path.join(small, 'root'), ['load', '-i', archive], /no space left on device/);
  });
});

describe('a corrupt layer from a registry', () => {
  let registry: RegistryPeer;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('pull refuses it with exit 1', () => {
    const ref = `${registry.host}/corrupt:1`;
    expect(cli(paths.root, ['push', 'busybox', ref]).status).toBe(0);
    // Overwrite every layer-sized blob in the registry's storage with other bytes of the same length.
    const blobs = path.join(registry.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256');
    let corrupted = 0;
    for (const pre of fs.readdirSync(blobs)) {
      for (const hex of fs.readdirSync(path.join(blobs, pre))) {
        const data = path.join(blobs, pre, hex, 'data');
        const size = fs.statSync(data).size;
        if (size < 100_000) continue; // manifests and configs stay intact
        fs.writeFileSync(data, Buffer.alloc(size, 0x41));
        corrupted++;
      }
    }
    expect(corrupted).toBe(1);
    expectUserError(path.join(paths.top, 'pulled'), ['pull', ref], /sha256:[0-9a-f]{64}/);
  });
});

describe('the storage root', () => {
  it('a root under /proc or /sys is refused at once (Node 20 recursive mkdir used to spin there)', () => {
    for (const bad of ['/proc/tsbuild-root', '/sys/fs/tsbuild/root']) {
      const r = spawnSync(process.execPath, [CLI, '--root', bad, 'images'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).toBe(`tsbuild: storage root ${bad} is under ${bad.split('/').slice(0, 2).join('/')}: use a directory on a real filesystem\n`);
      expect(r.status).toBe(1);
    }
    // also through a symlink into /proc (never through /proc/self/root here: that is the host's /)
    const link = path.join(paths.top, 'proc-link');
    fs.symlinkSync('/proc/self/fd', link);
    expectUserError(path.join(link, 'root'), ['images'], /is under \/proc/);
  });

  it('a root that is or resolves to / is refused before anything is touched', () => {
    expect(() => prepareRoot('/')).toThrow('storage root / is not allowed');
    const link = path.join(paths.top, 'self-link');
    fs.symlinkSync('/proc/self', link);
    expect(() => prepareRoot(path.join(link, 'root'))).toThrow(/is under \/proc/);
    const slash = path.join(paths.top, 'slash-link');
    fs.symlinkSync('/', slash);
    expect(() => prepareRoot(slash)).toThrow(/resolves to \//);
  });

  it('a root that is a file, or below one', () => {
    const file = path.join(paths.top, 'a-file');
    fs.writeFileSync(file, '');
    expectUserError(file, ['images'], /^tsbuild: storage root .*a-file is not a directory$/m);
    expectUserError(path.join(file, 'sub'), ['images'], /not a directory/);
  });

  it('mkdirpSync creates missing parents, refuses files on the way and never loops under /proc', () => {
    const deep = path.join(paths.top, 'm', 'a', 'b');
    expect(mkdirpSync(deep)).toBe(path.join(paths.top, 'm'));
    expect(fs.statSync(deep).isDirectory()).toBe(true);
    expect(mkdirpSync(deep)).toBeUndefined();
    fs.writeFileSync(path.join(paths.top, 'm', 'f'), '');
    expect(() => mkdirpSync(path.join(paths.top, 'm', 'f', 'x'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    expect(() => mkdirpSync('/proc/tsbuild-x/y')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
