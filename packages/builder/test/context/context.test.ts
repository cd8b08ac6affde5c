// BuildContext: .dockerignore selection and semantics, walking, and COPY/ADD source resolution on real
// directory trees.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/context';
import { ContextError } from '../../src/context/errors';
import { tempRootsPerTest, writeTree } from '../../../../test/helpers/temp';

const newRoot = tempRootsPerTest();
let tmp: string | undefined;
let ctxDir: string;

beforeEach(() => {
  tmp = newRoot('ctx');
  ctxDir = path.join(tmp, 'ctx');
  fs.mkdirSync(ctxDir);
});

async function open(tree: Parameters<typeof writeTree>[1], opts?: Parameters<typeof BuildContext.open>[1]): Promise<BuildContext> {
  writeTree(ctxDir, { Dockerfile: 'FROM scratch\n', ...tree });
  return BuildContext.open(ctxDir, opts);
}

async function paths(ctx: BuildContext, dir = ''): Promise<string[]> {
  return (await ctx.walk(dir)).map((e) => e.path);
}

async function rejection(p: Promise<unknown>): Promise<ContextError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ContextError);
    return err as ContextError;
  }
  throw new Error('expected a ContextError');
}

describe('opening a context', () => {
  it('reads the Dockerfile and reports no ignore file when there is none', async () => {
    const ctx = await open({ 'a.txt': 'a' });
    expect(ctx.dockerfile).toBe('FROM scratch\n');
    expect(ctx.dockerfilePath).toBe(path.join(ctxDir, 'Dockerfile'));
    expect(ctx.ignoreFile).toBeNull();
    expect(await paths(ctx)).toEqual(['Dockerfile', 'a.txt']);
  });

  it('falls back to a lower-case dockerfile like the docker CLI', async () => {
    writeTree(ctxDir, { dockerfile: 'FROM lower\n' });
    const ctx = await BuildContext.open(ctxDir);
    expect(ctx.dockerfile).toBe('FROM lower\n');
  });

  it('names a missing context or Dockerfile', async () => {
    const missing = path.join(ctxDir, 'nope');
    const e1 = await rejection(BuildContext.open(missing));
    expect(e1.code).toBe('CONTEXT_NOT_FOUND');
    expect(e1.message).toBe(`unable to prepare context: path "${missing}" not found`);
    const e2 = await rejection(BuildContext.open(ctxDir));
    expect(e2.message).toBe(`failed to read dockerfile: open ${path.join(ctxDir, 'Dockerfile')}: no such file or directory`);
  });

  it('takes the Dockerfile text directly (stdin) with only .dockerignore', async () => {
    writeTree(ctxDir, { '.dockerignore': 'x\n', x: '', y: '' });
    const ctx = await BuildContext.open(ctxDir, { dockerfileText: 'FROM stdin\n' });
    expect(ctx.dockerfile).toBe('FROM stdin\n');
    expect(ctx.dockerfilePath).toBeNull();
    expect(await paths(ctx)).toEqual(['.dockerignore', 'y']);
  });

  it('prefers <Dockerfile>.dockerignore over .dockerignore', async () => {
    const tree = {
      '.dockerignore': 'a.txt\n',
      'build/Dockerfile.dev': 'FROM dev\n',
      'build/Dockerfile.dev.dockerignore': 'b.txt\n',
      'a.txt': 'a',
      'b.txt': 'b',
    };
    const dev = await open(tree, { dockerfilePath: 'build/Dockerfile.dev' });
    expect(dev.ignoreFile).toBe(path.join(ctxDir, 'build/Dockerfile.dev.dockerignore'));
    expect(dev.dockerfile).toBe('FROM dev\n');
    expect(await paths(dev)).toContain('a.txt');
    expect(await paths(dev)).not.toContain('b.txt');

    const plain = await BuildContext.open(ctxDir);
    expect(plain.ignoreFile).toBe(path.join(ctxDir, '.dockerignore'));
    expect(await paths(plain)).not.toContain('a.txt');
    expect(await paths(plain)).toContain('b.txt');

    const explicit = await BuildContext.open(ctxDir, { ignoreFile: null });
    expect(await paths(explicit)).toEqual(expect.arrayContaining(['a.txt', 'b.txt']));
  });

  it('keeps the Dockerfile and .dockerignore readable even when excluded', async () => {
    const ctx = await open({ '.dockerignore': '*\n', 'a.txt': 'a' });
    expect(ctx.dockerfile).toBe('FROM scratch\n');
    expect(await paths(ctx)).toEqual(['.dockerignore', 'Dockerfile']);
    const srcs = await ctx.resolveSources(['Dockerfile', '.dockerignore']);
    expect(srcs.map((s) => s.root.path)).toEqual(['Dockerfile', '.dockerignore']);
    expect((await rejection(ctx.resolveSources(['a.txt']))).code).toBe('SOURCE_NOT_FOUND');
  });

  it('names the ignore file when it cannot be parsed', async () => {
    writeTree(ctxDir, { Dockerfile: '', '.dockerignore': 'a\n!\n' });
    const e = await rejection(BuildContext.open(ctxDir));
    expect(e.code).toBe('BAD_IGNORE_FILE');
    expect(e.message).toBe(`failed to parse ${path.join(ctxDir, '.dockerignore')}: illegal exclusion pattern: "!"`);
    fs.writeFileSync(path.join(ctxDir, '.dockerignore'), 'ok\n[z-a]\n');
    expect((await rejection(BuildContext.open(ctxDir))).message).toContain('syntax error in pattern: "[z-a]"');
  });
});

describe('.dockerignore semantics while walking', () => {
  it('applies exceptions, **, leading / and ./', async () => {
    const ctx = await open({
      '.dockerignore': '# comment\n**/*.log\n!logs/keep.log\n*.md\n**/*.tmp\n/node_modules\n./.git\nsrc/gen\n',
      'a.txt': '', 'b.log': '', 'logs/x.log': '', 'logs/keep.log': '', 'src/app.ts': '', 'src/gen/out.js': '',
      'deep/a/b/c.tmp': '', 'c.tmp': '', 'node_modules/m/index.js': '', '.git/HEAD': '', 'top.md': '', 'sub/nested.md': '',
    });
    expect(await paths(ctx)).toEqual([
      '.dockerignore', 'Dockerfile', 'a.txt', 'deep', 'deep/a', 'deep/a/b', 'logs', 'logs/keep.log', 'src', 'src/app.ts', 'sub', 'sub/nested.md',
    ]);
    // Patterns are anchored at the root, unlike .gitignore: "*.md" leaves sub/nested.md alone.
    expect(ctx.isExcluded('node_modules/m/index.js')).toBe(true);
    expect(ctx.isExcluded('/src/gen')).toBe(true);
    expect(ctx.isExcluded('')).toBe(false);
  });

  it('finds a file re-included under an excluded directory, and only that', async () => {
    const ctx = await open({
      '.dockerignore': 'docs\n!docs/api/README.md\nvendor\n!**/keep.me\nempty\n!empty/nothing-here\n',
      'docs/a.md': '', 'docs/api/README.md': 'readme', 'docs/api/b.md': '',
      'vendor/x/y/keep.me': '', 'vendor/x/drop': '', 'empty/file': '',
    });
    expect(await paths(ctx)).toEqual([
      '.dockerignore', 'Dockerfile', 'docs', 'docs/api', 'docs/api/README.md', 'vendor', 'vendor/x', 'vendor/x/y', 'vendor/x/y/keep.me',
    ]);
    const docs = (await ctx.resolveSources(['docs']))[0]!;
    expect([...docs.items].map((i) => i.rel)).toEqual(['', 'api', 'api/README.md']);
    const readme = (await ctx.resolveSources(['docs/api/README.md']))[0]!;
    expect(readme.root.type).toBe('file');
    expect((await rejection(ctx.resolveSources(['docs/a.md']))).code).toBe('SOURCE_NOT_FOUND');
    expect((await rejection(ctx.resolveSources(['empty']))).code).toBe('SOURCE_NOT_FOUND');
    expect((await ctx.resolveSources(['vend*'])).map((s) => s.matchedPath)).toEqual(['vendor']);
  });

  it('walks a subdirectory with entries sorted by bytes, directories before their children', async () => {
    const ctx = await open({ 'd/b': '', 'd/a/z': '', 'd/B': '', 'd/é': '', 'd/_': '' });
    expect(await paths(ctx, 'd')).toEqual(['d/B', 'd/_', 'd/a', 'd/a/z', 'd/b', 'd/é']);
    expect(await paths(ctx, 'd/b')).toEqual([]);
    expect((await rejection(ctx.walk('nope'))).code).toBe('SOURCE_NOT_FOUND');
  });

  it('reports metadata from lstat', async () => {
    const ctx = await open({ 'f.sh': '#!/bin/sh\n', l: { link: 'f.sh' } });
    fs.chmodSync(path.join(ctxDir, 'f.sh'), 0o4755);
    const entries = await ctx.walk();
    const f = entries.find((e) => e.path === 'f.sh')!;
    expect(f).toMatchObject({ type: 'file', mode: 0o4755, size: 10, uid: process.getuid?.(), absPath: path.join(fs.realpathSync(ctxDir), 'f.sh') });
    expect(typeof f.mtimeNs).toBe('bigint');
    expect(entries.find((e) => e.path === 'l')).toMatchObject({ type: 'symlink', linkTarget: 'f.sh' });
  });
});

describe('resolveSources', () => {
  it('expands wildcards per component in byte order', async () => {
    const ctx = await open({
      'a.txt': '', 'c.txt': '', 'B.txt': '', 'src/app.ts': '', 'src/util.ts': '', 'src/x.js': '', 'lib/app.ts': '', '[x]': 'lit',
    });
    const matched = async (s: string) => (await ctx.resolveSources([s])).map((e) => e.matchedPath);
    expect(await matched('*.txt')).toEqual(['B.txt', 'a.txt', 'c.txt']);
    expect(await matched('src/*.ts')).toEqual(['src/app.ts', 'src/util.ts']);
    expect(await matched('s?c/app.ts')).toEqual(['src/app.ts']);
    expect(await matched('[ab].txt')).toEqual(['a.txt']);
    expect(await matched('*/app.ts')).toEqual(['lib/app.ts', 'src/app.ts']);
    expect(await matched('[[]x]')).toEqual(['[x]']);
    expect(await matched('/src/../*.txt')).toEqual(['B.txt', 'a.txt', 'c.txt']);
  });

  it('keeps the order of several sources', async () => {
    const ctx = await open({ 'a.txt': '', 'src/app.ts': '' });
    const out = await ctx.resolveSources(['src', 'a.txt', './src/app.ts']);
    expect(out.map((s) => [s.source, s.matchedPath, s.root.type])).toEqual([
      ['src', 'src', 'dir'], ['a.txt', 'a.txt', 'file'], ['./src/app.ts', 'src/app.ts', 'file'],
    ]);
  });

  it('copies a directory with all its visible descendants, relative to it', async () => {
    const ctx = await open({ '.dockerignore': '**/*.o\n', 'app/main.c': 'int main;', 'app/main.o': '', 'app/inc/a.h': '', 'app/empty': { dir: true } });
    const app = (await ctx.resolveSources(['app']))[0]!;
    expect(app.root).toEqual(app.items.at(0));
    expect([...app.items].map((i) => [i.rel, i.path, i.type])).toEqual([
      ['', 'app', 'dir'], ['empty', 'app/empty', 'dir'], ['inc', 'app/inc', 'dir'], ['inc/a.h', 'app/inc/a.h', 'file'], ['main.c', 'app/main.c', 'file'],
    ]);
    const root = (await ctx.resolveSources(['.']))[0]!;
    expect(root.items.at(0).path).toBe('');
    expect([...root.items].map((i) => i.rel)).toContain('app/main.c');
    expect([...root.items].map((i) => i.rel)).not.toContain('app/main.o');
  });

  it('names a missing or excluded source with BuildKit-like wording', async () => {
    const ctx = await open({ '.dockerignore': 'secret\n', secret: 's', 'dir/f': '' });
    const e = await rejection(ctx.resolveSources(['missing']));
    expect(e.code).toBe('SOURCE_NOT_FOUND');
    expect(e.source).toBe('missing');
    expect(e.message).toBe('failed to compute cache key: "/missing": not found: file not found in build context or excluded by .dockerignore');
    expect((await rejection(ctx.resolveSources(['secret']))).message).toContain('"/secret": not found');
    expect((await rejection(ctx.resolveSources(['dir/f/x']))).code).toBe('SOURCE_NOT_FOUND');
    expect((await rejection(ctx.resolveSources(['nodir/*.txt']))).code).toBe('SOURCE_NOT_FOUND');
  });

  it('lets a wildcard match nothing (BuildKit) unless told otherwise', async () => {
    const ctx = await open({ 'a.txt': '' });
    expect(await ctx.resolveSources(['nomatch*'])).toEqual([]);
    const e = await rejection(ctx.resolveSources(['nomatch*'], { allowEmptyWildcard: false }));
    expect(e.code).toBe('NO_MATCH');
    expect(e.message).toContain('"/nomatch*"');
  });

  it('refuses .. above the root, naming the source', async () => {
    writeTree(tmp!, { outside: 'secret' });
    const ctx = await open({ 'a/b': '' });
    for (const s of ['../outside', 'a/../../outside', '..', '/../outside']) {
      const e = await rejection(ctx.resolveSources([s]));
      expect(e.code).toBe('OUTSIDE_CONTEXT');
      expect(e.message).toBe(`forbidden path outside the build context: ${s}`);
    }
    expect((await ctx.resolveSources(['a/../a/b']))[0]!.matchedPath).toBe('a/b');
  });

  it('refuses a followed symlink pointing outside, naming it', async () => {
    writeTree(tmp!, { 'outside/secret': 'secret' });
    const ctx = await open({
      rel: { link: '../outside/secret' }, abs: { link: path.join(tmp!, 'outside/secret') }, 'dir/up': { link: '../../outside' },
    });
    const e = await rejection(ctx.resolveSources(['rel']));
    expect(e.code).toBe('OUTSIDE_CONTEXT');
    expect(e.message).toBe('forbidden path outside the build context: rel (symlink "rel" -> "../outside/secret")');
    expect((await rejection(ctx.resolveSources(['abs']))).message).toContain(`(symlink "abs" -> "${path.join(tmp!, 'outside/secret')}")`);
    expect((await rejection(ctx.resolveSources(['dir/up/secret']))).message).toContain('symlink "dir/up" -> "../../outside"');
    expect((await rejection(ctx.resolveSources(['r*']))).code).toBe('OUTSIDE_CONTEXT');
    // Not followed, the link itself is the source.
    const raw = (await ctx.resolveSources(['rel'], { followSymlinks: false }))[0]!;
    expect(raw.root).toMatchObject({ type: 'symlink', linkTarget: '../outside/secret' });
  });

  it('copies symlinks inside a copied directory as symlinks, even pointing outside', async () => {
    const ctx = await open({ 'dir/f': 'f', 'dir/out': { link: '../../outside' }, 'dir/in': { link: 'f' } });
    const dir = (await ctx.resolveSources(['dir']))[0]!;
    expect([...dir.items].map((i) => [i.rel, i.type, i.linkTarget])).toEqual([
      ['', 'dir', undefined], ['f', 'file', undefined], ['in', 'symlink', 'f'], ['out', 'symlink', '../../outside'],
    ]);
  });

  it('follows symlinks within the context (BuildKit testCopyThroughSymlinkContext, #1197, testCopySymlinks)', async () => {
    const ctx = await open({
      link: { link: 'sub' }, 'sub/foo': 'contents',
      bar: 'bar-contents', 'foo/sub': { link: '../bar' },
      'lnk/lfile': 'lfile', 'lnk/l0': { link: 'subfile' }, 'lnk/subfile': 'subfile', 'lnk/l1': { link: 'second' },
      'lnk/second': { link: 'baz' }, 'lnk/baz': 'baz',
      abslink: { link: path.join(ctxDir, 'sub') },
    });
    const [foo] = await ctx.resolveSources(['link/foo']);
    expect(foo).toMatchObject({ matchedPath: 'link/foo', root: { path: 'sub/foo', type: 'file' } });
    const sub = (await ctx.resolveSources(['foo/sub']))[0]!;
    expect(sub.root).toMatchObject({ path: 'bar', type: 'file' });
    const links = await ctx.resolveSources(['lnk/l*']);
    expect(links.map((s) => [s.matchedPath, s.root.path])).toEqual([
      ['lnk/l0', 'lnk/subfile'], ['lnk/l1', 'lnk/baz'], ['lnk/lfile', 'lnk/lfile'],
    ]);
    const viaDir = (await ctx.resolveSources(['link']))[0]!;
    expect([...viaDir.items].map((i) => i.path)).toEqual(['sub', 'sub/foo']);
    const abs = (await ctx.resolveSources(['abslink/foo']))[0]!;
    expect(abs.root.path).toBe('sub/foo');
  });

  it('does not follow symlinked directories for intermediate wildcard components (like BuildKit)', async () => {
    const ctx = await open({ 'real/x': '', 'rlink': { link: 'real' } });
    expect((await ctx.resolveSources(['r*/x'])).map((s) => s.matchedPath)).toEqual(['real/x']);
  });

  it('treats a symlink to an excluded file as missing', async () => {
    const ctx = await open({ '.dockerignore': 'hidden\n', hidden: 'h', peek: { link: 'hidden' } });
    expect((await rejection(ctx.resolveSources(['peek']))).code).toBe('SOURCE_NOT_FOUND');
  });

  it('stops symlink loops', async () => {
    const ctx = await open({ a: { link: 'b' }, b: { link: 'a' } });
    const e = await rejection(ctx.resolveSources(['a']));
    expect(e.code).toBe('SYMLINK_LOOP');
    expect(e.message).toContain('too many levels of symbolic links');
  });

  it('records hardlinks by (dev, ino) across the result', async () => {
    const ctx = await open({ 'hl/a': 'same', 'hl/c': 'other' });
    fs.linkSync(path.join(ctxDir, 'hl/a'), path.join(ctxDir, 'hl/b'));
    fs.linkSync(path.join(ctxDir, 'hl/a'), path.join(ctxDir, 'top'));
    const out = await ctx.resolveSources(['hl', 'top']);
    const byPath = new Map(out.flatMap((s) => [...s.items]).map((i) => [i.path, i]));
    expect(byPath.get('hl/a')!.hardlinkTo).toBeUndefined();
    expect(byPath.get('hl/b')!.hardlinkTo).toBe('hl/a');
    expect(byPath.get('top')!.hardlinkTo).toBe('hl/a');
    expect(byPath.get('hl/c')!.hardlinkTo).toBeUndefined();
    expect(byPath.get('hl/b')!.ino).toBe(byPath.get('hl/a')!.ino);
  });

  it('applies --exclude patterns relative to each source', async () => {
    const ctx = await open({ 'src/a.ts': '', 'src/a.js': '', 'src/sub/b.js': '', 'src/sub/keep.js': '', 'home.txt': '', 'home.md': '' });
    const src = (await ctx.resolveSources(['src'], { excludes: ['**/*.js', '!sub/keep.js'] }))[0]!;
    expect([...src.items].map((i) => i.rel)).toEqual(['', 'a.ts', 'sub', 'sub/keep.js']);
    const homes = await ctx.resolveSources(['hom*'], { excludes: ['*.txt'] });
    expect(homes.map((s) => s.matchedPath)).toEqual(['home.md']);
    expect((await rejection(ctx.resolveSources(['src'], { excludes: ['['] }))).code).toBe('BAD_PATTERN');
  });

  it('reports a malformed wildcard', async () => {
    const ctx = await open({ 'a.txt': '' });
    const e = await rejection(ctx.resolveSources(['a[']));
    expect(e.code).toBe('BAD_PATTERN');
    expect(e.message).toContain('syntax error in pattern');
  });
});
