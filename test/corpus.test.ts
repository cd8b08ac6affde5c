// The real-world corpus (test/corpus/*, README.md there): Dockerfiles in the shapes real projects use,
// on a Debian 12 base made by debootstrap (fixtures/debian.ts, cached outside the clone). Each case
// is built with the tsbuild CLI into its own store, smoke-tested with `tsbuild run` (a --version, a
// script, a request to a server on 127.0.0.1 inside the same container), and, where the classic
// builder understands the Dockerfile, built by a test dockerd too and compared with it: the config
// fields a Dockerfile controls exactly, the file tree exactly except the paths each case lists as
// volatile (files that embed build times), where only the content may differ. Three cases are also
// built under the aufs and vfs drivers and compared with overlay2's result the same way.
//
// Network: RUN steps reach the machine's apt mirror and the npm registry (host network, as BuildKit).
// A build whose output shows a network failure is retried whole, with backoff (the store keeps no
// partial state, so a retry starts clean and reuses the cached steps before the failure); the base
// image also sets apt's Acquire::Retries, whose retries back off by themselves. The Dockerfiles stay
// as they are: a retry loop inside a RUN would change the files under test.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '@tsbuild/storage';
import { debianBaseTarball } from '../fixtures/debian';
import { CLI, REPO, mountsUnder } from './helpers/roots';
import { diffTrees, type CaptureOptions, type TreeEntry } from './helpers/tree';
import { dockerBuild, dockerImage, normalizeConfig, storeImage, type Built } from './helpers/parity';
import { startDockerd, type Dockerd } from './peers/dockerd';

const CORPUS = path.join(REPO, 'test', 'corpus');
type Driver = 'overlay2' | 'aufs' | 'vfs';

/** What apt and dpkg write with the time of the build in it: content may differ, nothing else. */
const APT_VOLATILE = [
  /^var\/log\/(dpkg\.log|alternatives\.log|apt\/(history\.log|term\.log|eipp\.log\.xz))$/,
  /^var\/cache\/apt\/(pkgcache|srcpkgcache)\.bin$/,
  /^var\/cache\/debconf\/(config|templates)\.dat(-old)?$/,
  /^var\/cache\/ldconfig\/aux-cache$/,
];
/**
 * npm's own state under /root/.npm: log files named by the time of the run, and a cache that npm's
 * update check writes into in the background, racing npm's exit (a finished entry, a tmp file, or
 * nothing, depending on timing, in either builder).
 */
const NPM_SKIP = [/^root\/\.npm$/];
/** useradd/groupadd stamp the day of the last password change into shadow (the same within a day). */
const SHADOW_VOLATILE = [/^etc\/(shadow|gshadow)-?$/];

/** Build output that means the network failed us, not the Dockerfile. */
const NETWORK_FAILURE =
  /Temporary failure resolving|Could not resolve|Could not connect|Connection (timed out|refused|reset|failed)|Unable to connect|Failed to fetch|Hash Sum mismatch|Undetermined Error|ECONNRESET|ETIMEDOUT|ECONNREFUSED|EAI_AGAIN|ENOTFOUND|socket hang up|curl: \((6|7|18|28|35|52|56)\)|npm ERR! (network|code E(5\d\d|AI_AGAIN|CONNRESET))/;
const RETRY_DELAYS_MS = [5_000, 20_000];

interface Smoke {
  /** `tsbuild run --rm` arguments after the image (its CMD when empty). */
  args: string[];
  input?: string;
  /** What stdout, without its trailing newlines, must match. */
  stdout: RegExp;
}

interface CorpusCase {
  name: string;
  tag: string;
  /** Images of earlier cases this one builds FROM. */
  needs?: string[];
  smokes: (config: Record<string, unknown>) => Smoke[];
  /** Why the classic builder cannot build it (BuildKit-only syntax); otherwise parity is checked. */
  noClassic?: string;
  /** Paths (tree-relative) whose content embeds build times or random data. */
  volatile?: RegExp[];
  /** Paths left out of both trees: names that embed times (npm's log files). */
  skip?: RegExp[];
  /** Exact diffTrees lines expected against the classic builder, with the reason beside each. */
  classicDiff?: string[];
  /** Also built under these drivers, each compared with overlay2's tree. */
  drivers?: Driver[];
  /** Case-specific checks on tsbuild's image. */
  check?: (built: Built, root: string) => void;
}

const entry = (built: Built, p: string): TreeEntry | undefined => built.tree.find((e) => e.path === p);

/** A shell command that waits (bounded) for `probe` to succeed inside the container. */
const waitFor = (probe: string) => `i=0; until ${probe}; do i=$((i+1)); [ $i -lt 100 ] || exit 99; sleep 0.1; done`;

/** The image's HEALTHCHECK test as a shell command (CMD-SHELL or exec form). */
function healthcheckCommand(config: Record<string, unknown>): string {
  const test = (config.Healthcheck as { Test?: string[] } | undefined)?.Test;
  if (!test || test.length < 2) throw new Error('the image has no HEALTHCHECK');
  if (test[0] === 'CMD-SHELL') return test[1]!;
  return test.slice(1).map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}

const CASES: CorpusCase[] = [
  {
    name: 'jq',
    tag: 'corpus/jq',
    smokes: () => [
      { args: ['--version'], stdout: /^jq-1\.6/ },
      { args: ['-c', '{name: .name, n: (.items | length)}'], input: '{"name":"corpus","items":[1,2,3]}', stdout: /^\{"name":"corpus","n":3\}$/m },
    ],
    volatile: APT_VOLATILE,
    drivers: ['aufs', 'vfs'],
    check: (b) => expect(entry(b, 'usr/bin/jq')?.type).toBe('file'),
  },
  {
    name: 'apt-cache-mount',
    tag: 'corpus/apt-cache-mount',
    noClassic: 'RUN --mount needs BuildKit',
    smokes: () => [{ args: [], stdout: /^tree v2\./ }],
    check: (b, root) => {
      // The packages went to the cache mount, not into the image.
      expect(b.tree.filter((e) => /^var\/cache\/apt\/archives\/.*\.deb$/.test(e.path))).toEqual([]);
      expect(b.tree.filter((e) => /^var\/lib\/apt\/lists\/.*Packages/.test(e.path))).toEqual([]);
      expect(entry(b, 'etc/apt/apt.conf.d/keep-cache')?.type).toBe('file');
      const cached = fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => /\/tree_[^/]*\.deb$/.test(f));
      expect(cached.length, 'tree .deb kept in the cache mount').toBe(1);
    },
  },
  {
    name: 'heredoc',
    tag: 'corpus/heredoc',
    noClassic: 'heredocs need BuildKit (dockerfile 1.4)',
    smokes: () => [{ args: ['/bin/dash', '/etc/apt/apt.conf.d/no-recommends', '/etc/heredoc-summary'], stdout: /^ELF 64-bit .*\nASCII text\nASCII text$/ }],
    volatile: APT_VOLATILE,
    check: (b) => {
      expect(entry(b, 'usr/local/bin/describe')?.mode).toBe(0o755);
      expect(entry(b, 'etc/heredoc-summary')?.preview).toBe('2 apt configs\n');
      expect(entry(b, 'etc/apt/apt.conf.d/no-suggests')?.preview).toBe('APT::Install-Suggests "false";\n');
    },
  },
  {
    name: 'locale-tz',
    tag: 'corpus/locale-tz',
    smokes: () => [{ args: [], stdout: /^en_US\.utf8 Europe\/Paris UTF-8$/m }],
    volatile: [...APT_VOLATILE, /^usr\/lib\/locale\/locale-archive$/],
    check: (b) => expect(entry(b, 'etc/localtime')?.linkTarget).toBe('/usr/share/zoneinfo/Europe/Paris'),
  },
  {
    name: 'nginx-healthcheck',
    tag: 'corpus/nginx-healthcheck',
    smokes: (config) => [
      {
        // nginx daemonizes without the CMD's "daemon off;"; the HEALTHCHECK's own command, then a page.
        args: ['sh', '-c', `nginx && ${waitFor('curl -fs -o /dev/null http://127.0.0.1/health')} && ${healthcheckCommand(config)} && curl -fsS http://127.0.0.1/`],
        stdout: /served by nginx in a tsbuild container/,
      },
    ],
    volatile: APT_VOLATILE,
  },
  {
    name: 'devcontainer-sudo',
    tag: 'corpus/devcontainer-sudo',
    smokes: () => [
      { args: ['id', '-un'], stdout: /^vscode$/m },
      // sudo is setuid root: the unprivileged user becomes root through it.
      { args: ['sudo', '-n', 'id', '-u'], stdout: /^0$/m },
      { args: ['cat', 'welcome.txt'], stdout: /^welcome, vscode \(1000:1000\) in \/workspaces\/project$/m },
    ],
    volatile: [...APT_VOLATILE, ...SHADOW_VOLATILE],
    drivers: ['aufs', 'vfs'],
    check: (b) => {
      expect(entry(b, 'usr/bin/sudo')).toMatchObject({ mode: 0o4755, uid: 0 });
      expect(entry(b, 'workspaces/project/made-by-user')).toMatchObject({ uid: 1000, gid: 1000 });
      expect(entry(b, 'etc/sudoers.d/vscode')?.mode).toBe(0o440);
    },
  },
  {
    name: 'c-multistage',
    tag: 'corpus/c-multistage',
    smokes: () => [
      { args: ['--version'], stdout: /^hello 1\.0\.0$/ },
      { args: ['corpus'], stdout: /^hello from nobody corpus$/ },
    ],
    check: (b) => {
      expect(entry(b, 'usr/local/bin/hello')?.mode).toBe(0o755);
      expect(entry(b, 'usr/bin/gcc'), 'the compiler stays in the build stage').toBeUndefined();
    },
  },
  {
    name: 'entrypoint-user',
    tag: 'corpus/entrypoint-user',
    smokes: () => [
      { args: [], stdout: /^app-server as app:app in \/data\n-rw-r--r-- 1 999 999 0 / },
      { args: ['id', '-u'], stdout: /^0$/ },
    ],
    volatile: SHADOW_VOLATILE,
    drivers: ['aufs', 'vfs'],
    check: (b) => expect(entry(b, 'data')).toMatchObject({ uid: 999, gid: 999 }),
  },
  {
    name: 'node-base',
    tag: 'corpus/node-base:20',
    smokes: () => [{ args: ['sh', '-c', 'node --version && npm --version'], stdout: /^v20\.9\.0\n10\.1\.0$/ }],
    volatile: [...APT_VOLATILE, ...SHADOW_VOLATILE],
    skip: NPM_SKIP,
    check: (b) => {
      expect(entry(b, 'usr/bin/curl'), 'curl purged after the download').toBeUndefined();
      expect(entry(b, 'usr/local/bin/node')?.mode).toBe(0o755);
    },
  },
  {
    name: 'node-npm-ci',
    tag: 'corpus/node-npm-ci',
    needs: ['corpus/node-base:20'],
    smokes: (config) => [
      {
        args: [
          'sh',
          '-c',
          `node server.js > /tmp/server.log & ${waitFor(healthcheckCommand(config))} && node -e "fetch('http://127.0.0.1:3000/').then((r) => r.text()).then(console.log)"`,
        ],
        stdout: /^\{"hello":"world","node":"v20\.9\.0","express":"4\.21\.2"\}$/m,
      },
    ],
    volatile: [...APT_VOLATILE, ...SHADOW_VOLATILE],
    skip: NPM_SKIP,
    check: (b) => {
      expect(entry(b, 'usr/src/app/node_modules/express/package.json')?.type).toBe('file');
      expect(entry(b, 'usr/src/app/node_modules/nodemon'), 'dev dependencies omitted').toBeUndefined();
      expect(entry(b, 'usr/src/app/server.js')).toMatchObject({ uid: 1000, gid: 1000 });
    },
  },
  {
    name: 'long-chain',
    tag: 'corpus/long-chain',
    smokes: () => [
      {
        args: [],
        stdout: /^chain 2\.4\.1 steps=abc files=\d+\nname=chain\nversion=2\.4\.1\nhome=\/opt\/chain\n\/opt\/chain\/tmp\/replaced:\nnew\n\n\/opt\/chain\/var\/cache:\ntwo\nself-test ok as chain$/,
      },
    ],
    volatile: SHADOW_VOLATILE,
    drivers: ['aufs'],
    check: (b) => {
      expect(entry(b, 'opt/chain/var/cache/one'), 'deleted in a later layer').toBeUndefined();
      expect(entry(b, 'opt/chain/tmp/replaced/sub'), 'replaced directory').toBeUndefined();
      expect(entry(b, 'opt/chain/share/doc/drafts')).toBeUndefined();
      expect(entry(b, 'opt/chain/bin/chain-hardlink')?.hardlinkGroup).toBe('opt/chain/bin/chain');
    },
  },
];

interface CaseRoot {
  root: string;
  work: string;
}

let top: string;
let dockerd: Dockerd;
let baseTarball: string;
/** Saved images of earlier cases (docker-archive), for the cases that build FROM them. */
const saved = new Map<string, string>();
/** overlay2 trees of the cases also built under other drivers. */
const overlayTrees = new Map<string, TreeEntry[]>();

/** One line per phase on stderr, so a CI log shows where the tier's minutes go. */
async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
  const start = Date.now();
  try {
    return await work();
  } finally {
    process.stderr.write(`corpus: ${what} ${((Date.now() - start) / 1000).toFixed(1)}s\n`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs the tsbuild CLI without blocking the event loop (dockerd builds alongside). */
function tsbuild(root: string, driver: Driver, args: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--root', root, '--storage-driver', driver, ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

async function tsbuildOk(root: string, driver: Driver, args: string[]): Promise<string> {
  const r = await tsbuild(root, driver, args);
  if (r.status !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.status}:\n${r.stderr.slice(-6000)}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** Retries `attempt` when its failure reads as a network failure, with growing delays. */
async function withNetworkRetry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = RETRY_DELAYS_MS[i];
      if (delay === undefined || !NETWORK_FAILURE.test((err as Error).message)) throw err;
      process.stderr.write(`${what}: network failure, retrying in ${delay / 1000}s\n`);
      await sleep(delay);
    }
  }
}

async function newRoot(name: string, driver: Driver): Promise<CaseRoot> {
  const dir = fs.mkdtempSync(path.join(top, `${name}-${driver}-`));
  const r = { root: path.join(dir, 'root'), work: path.join(dir, 'work') };
  fs.mkdirSync(r.work);
  await tsbuildOk(r.root, driver, ['import', baseTarball, 'debian:bookworm']);
  await tsbuildOk(r.root, driver, ['tag', 'debian:bookworm', 'debian:bookworm-slim']);
  return r;
}

async function removeRoot(r: CaseRoot): Promise<void> {
  const dir = path.dirname(r.root);
  const left = mountsUnder(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  expect(left, `mounts left under ${dir}`).toEqual([]);
}

/** The tree of an image in a root, read through a Store opened in this process. */
async function readImage(r: CaseRoot, driver: Driver, tag: string, capture: CaptureOptions): Promise<Built> {
  const store = await Store.open(r.root, { driver });
  try {
    return await storeImage(store, tag, capture);
  } finally {
    await store.close();
  }
}

/** Builds a case in a fresh root under `driver`, runs its smokes, and returns tsbuild's image. */
async function buildCase(c: CorpusCase, driver: Driver): Promise<{ r: CaseRoot; built: Built }> {
  const r = await newRoot(c.name, driver);
  for (const need of c.needs ?? []) {
    const archive = saved.get(need);
    if (!archive) throw new Error(`${c.name} needs ${need}, which no earlier case saved`);
    await tsbuildOk(r.root, driver, ['load', '-i', archive]);
  }
  const what = `tsbuild build ${c.name} (${driver})`;
  await timed(what, () => withNetworkRetry(what, () => tsbuildOk(r.root, driver, ['build', '--progress', 'plain', '-t', c.tag, path.join(CORPUS, c.name)])));
  const built = await timed(`read tree ${c.name} (${driver})`, () => readImage(r, driver, c.tag, captureOptions(c)));
  for (const smoke of c.smokes(built.config)) {
    const run = await tsbuild(r.root, driver, ['run', '--rm', ...(smoke.input !== undefined ? ['-i'] : []), c.tag, ...smoke.args], smoke.input);
    expect(run.status, `tsbuild run ${c.tag} ${smoke.args.join(' ')}: ${run.stderr}`).toBe(0);
    expect(run.stdout.trimEnd(), `tsbuild run ${c.tag} ${smoke.args.join(' ')}`).toMatch(smoke.stdout);
  }
  expect(built.tree.find((e) => e.path === 'etc/debian_version')?.preview, 'a tree read from the image').toMatch(/^12\./);
  return { r, built };
}

function captureOptions(c: CorpusCase): CaptureOptions {
  const skip = c.skip ?? [];
  return { skip: (rel) => skip.some((re) => re.test(rel)) };
}

/**
 * Differences between two trees that a case does not explain: every line must either be one of
 * `expected` or a content-only difference (size, digest) of a volatile path.
 */
function unexplained(lines: string[], volatile: RegExp[], expected: string[] = []): string[] {
  return lines.filter((line) => {
    if (expected.includes(line)) return false;
    const m = /^(.*?): (size|sha256|content) /.exec(line);
    return !(m && volatile.some((re) => re.test(m[1]!)));
  });
}

beforeAll(async () => {
  // Generated once per machine (debootstrap, about a minute), then read from the cache.
  baseTarball = debianBaseTarball((line) => process.stderr.write(`${line}\n`));
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-corpus-'));
  dockerd = await startDockerd();
  // Docker gets the very base the stores import: saved by tsbuild as a docker-archive.
  const seed = await newRoot('seed', 'overlay2');
  try {
    const archive = path.join(top, 'debian-docker.tar');
    await tsbuildOk(seed.root, 'overlay2', ['save', '--format', 'docker', '-o', archive, 'debian:bookworm', 'debian:bookworm-slim']);
    const loaded = await dockerd.docker(['load', '-i', archive]);
    expect(loaded.stdout).toContain('debian:bookworm');
    fs.rmSync(archive);
  } finally {
    await removeRoot(seed);
  }
}, 600_000);

afterAll(async () => {
  await dockerd?.stop();
  if (top) {
    for (const m of mountsUnder(top).reverse()) await new Promise((r) => spawn('umount', ['-l', m]).on('close', r));
    fs.rmSync(top, { recursive: true, force: true });
  }
});

describe('real-world corpus', () => {
  for (const c of CASES) {
    it(
      c.name,
      async () => {
        const classic = c.noClassic
          ? undefined
          : timed(`docker build ${c.name}`, () =>
              withNetworkRetry(`docker build ${c.name}`, () => dockerBuild(dockerd, path.join(CORPUS, c.name), c.tag, { network: 'host', timeoutMs: 600_000 })),
            );
        // Both builders work at once: most of a build is waiting on the mirror and dpkg.
        const [ours] = await Promise.allSettled([buildCase(c, 'overlay2'), classic]);
        if (ours.status === 'rejected') throw ours.reason;
        const { r, built } = ours.value;
        try {
          c.check?.(built, r.root);
          if (c.drivers) overlayTrees.set(c.name, built.tree);
          if (CASES.some((other) => other.needs?.includes(c.tag))) {
            const archive = path.join(top, `${c.name}.tar`);
            await tsbuildOk(r.root, 'overlay2', ['save', '--format', 'docker', '-o', archive, c.tag]);
            saved.set(c.tag, archive);
          }
          if (classic) {
            await classic;
            const docker = await timed(`read docker tree ${c.name}`, () => dockerImage(dockerd, c.tag, r.work, captureOptions(c)));
            expect(normalizeConfig(built.config), `config of ${c.tag}`).toEqual(normalizeConfig(docker.config));
            const lines = diffTrees(docker.tree, built.tree, ['docker', 'tsbuild']);
            expect(unexplained(lines, c.volatile ?? [], c.classicDiff), `tree of ${c.tag} against docker`).toEqual([]);
            expect((c.classicDiff ?? []).filter((l) => !lines.includes(l)), 'expected classic-builder differences').toEqual([]);
          }
        } finally {
          await removeRoot(r);
        }
      },
      900_000,
    );
  }
});

describe('real-world corpus under aufs and vfs', () => {
  for (const c of CASES) {
    for (const driver of c.drivers ?? []) {
      it(
        `${c.name} (${driver})`,
        async () => {
          const reference = overlayTrees.get(c.name);
          expect(reference, `the overlay2 build of ${c.name} ran first`).toBeDefined();
          const { r, built } = await buildCase(c, driver);
          try {
            c.check?.(built, r.root);
            expect(unexplained(diffTrees(reference!, built.tree, ['overlay2', driver]), c.volatile ?? []), `tree of ${c.tag} under ${driver}`).toEqual([]);
          } finally {
            await removeRoot(r);
          }
        },
        900_000,
      );
    }
  }
});
