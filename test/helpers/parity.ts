// Shared by the Docker parity tiers (test/docker-parity.test.ts, test/corpus.test.ts): build with the
// classic builder of a test dockerd, read an image's merged tree from either side, and compare the
// config fields a Dockerfile controls.
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Store } from '@tsbuild/storage';
import { captureTree, type CaptureOptions, type TreeEntry } from './tree';
import type { Dockerd } from '../peers/dockerd';

const execFileP = promisify(execFile);

/** The config fields a Dockerfile sets: these must match Docker's exactly. */
export const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'] as const;

export interface Built {
  config: Record<string, unknown>;
  tree: TreeEntry[];
}

/**
 * Where the classic builder is known to differ from BuildKit (whose semantics tsbuild follows), a
 * case states the difference exactly, with the reason beside it: `treeDiff` lists the expected
 * diffTrees lines (any other line, or a missing one, fails), `dockerConfig` maps Docker's config to
 * what BuildKit makes of the same Dockerfile.
 */
export interface KnownClassicDifferences {
  treeDiff?: string[];
  dockerConfig?: (config: Record<string, unknown>) => Record<string, unknown>;
}

/** `docker build` with the classic builder (DOCKER_BUILDKIT=0); its output goes into the error. */
export async function dockerBuild(dockerd: Dockerd, ctx: string, tag: string, opts: { network?: 'host'; timeoutMs?: number } = {}): Promise<string> {
  const env = { ...process.env, DOCKER_HOST: dockerd.host, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: path.join(dockerd.dir, 'cli') };
  const args = ['build', '--force-rm', ...(opts.network ? ['--network', opts.network] : []), '-t', tag, ctx];
  try {
    const { stdout, stderr } = await execFileP('docker', args, { env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`docker build of ${tag} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/**
 * Docker's image: its config, and its tree read from the image's own overlay2 layer directories
 * (mounted through Docker's short `l/` links, as dockerd does, so deep chains fit in one page).
 */
export async function dockerImage(dockerd: Dockerd, tag: string, scratchDir: string, capture: CaptureOptions = {}): Promise<Built> {
  const [info] = JSON.parse((await dockerd.docker(['image', 'inspect', tag])).stdout) as {
    Config: Record<string, unknown>;
    GraphDriver: { Name: string; Data: { UpperDir: string; LowerDir?: string } };
  }[];
  if (!info || info.GraphDriver.Name !== 'overlay2') throw new Error(`docker image ${tag}: expected an overlay2 image, got ${JSON.stringify(info?.GraphDriver)}`);
  const layers = [info.GraphDriver.Data.UpperDir, ...(info.GraphDriver.Data.LowerDir?.split(':') ?? [])];
  if (layers.length === 1) return { config: info.Config, tree: captureTree(layers[0]!, capture) };
  const overlayDir = path.dirname(path.dirname(layers[0]!));
  const short = layers.map((diff) => `l/${fs.readFileSync(path.join(path.dirname(diff), 'link'), 'utf8').trim()}`);
  const target = fs.mkdtempSync(path.join(scratchDir, 'docker-rootfs-'));
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${short.join(':')}`, target], { cwd: overlayDir });
  try {
    return { config: info.Config, tree: captureTree(target, capture) };
  } finally {
    execFileSync('umount', [target]);
    fs.rmdirSync(target);
  }
}

/** An image of a tsbuild store: its config, and its tree read from the store's own mount of the chain. */
export async function storeImage(store: Store, tag: string, capture: CaptureOptions = {}): Promise<Built> {
  const { chainID, config } = await store.imageChain(tag);
  const imageConfig = (config.config ?? {}) as Record<string, unknown>;
  if (chainID === null) return { config: imageConfig, tree: [] };
  const rootfs = await store.layers.mount(chainID);
  try {
    return { config: imageConfig, tree: captureTree(rootfs, capture) };
  } finally {
    await store.layers.unmount(chainID);
  }
}

/** null, missing, [] and {} all mean "no value" in an image config. */
export function normalizeConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) {
    const v = config[field];
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[field] = v;
  }
  return out;
}
