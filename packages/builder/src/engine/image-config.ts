// The image config a build produces, mutated one instruction at a time with Docker's semantics.
// Pure: no I/O, so every rule is testable on its own.
import type { ContainerConfig, HistoryEntry, Platform } from '@tsbuild/storage';
import { cleanPath } from '../context/paths';

export type { ContainerConfig, HistoryEntry } from '@tsbuild/storage';

export type HealthConfig = NonNullable<ContainerConfig['Healthcheck']> & { Test: string[] };

/** The image config as a build works on it: storage's fields, with config, history and rootfs always there. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: HistoryEntry[];
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Node's arch names → OCI's. */
export function ociArchitecture(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[arch] ?? arch;
}

/** The config of `FROM scratch` (for `platform`, default this host's): Docker sets PATH so that RUN finds programs. */
export function scratchConfig(platform?: Platform): ImageConfig {
  return {
    architecture: platform?.architecture ?? ociArchitecture(),
    os: platform?.os ?? 'linux',
    ...(platform?.variant ? { variant: platform.variant } : {}),
    config: { Env: [`PATH=${DEFAULT_PATH}`] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/**
 * Tracks one stage's config. `cmdSet` follows Docker: an ENTRYPOINT clears a CMD inherited from the
 * base image, but not one set earlier in this stage.
 */
export class ConfigState {
  readonly image: ImageConfig;
  private cmdSet = false;

  constructor(base: ImageConfig) {
    this.image = structuredClone(base);
    this.image.config ??= {};
    this.image.history ??= [];
    this.image.rootfs ??= { type: 'layers', diff_ids: [] };
    // Triggers belong to the base image; a child image starts without them (they ran at FROM).
    this.image.config.OnBuild = null;
    delete this.image.created;
    // Docker (classic and BuildKit) always gives a stage a PATH: a base image without one gets the
    // default, in the image config and for the stage's own expansion.
    if (this.getEnv('PATH') === undefined) this.image.config.Env = [...this.env(), `PATH=${DEFAULT_PATH}`];
  }

  get config(): ContainerConfig {
    return this.image.config;
  }

  get shell(): string[] {
    return this.image.config.Shell && this.image.config.Shell.length > 0 ? this.image.config.Shell : DEFAULT_SHELL;
  }

  env(): string[] {
    return this.image.config.Env ?? [];
  }

  getEnv(name: string): string | undefined {
    for (const kv of this.env()) {
      const eq = kv.indexOf('=');
      if ((eq < 0 ? kv : kv.slice(0, eq)) === name) return eq < 0 ? '' : kv.slice(eq + 1);
    }
    return undefined;
  }

  /** ENV: replaces an existing key in place, appends new ones (Docker keeps the order). */
  setEnv(pairs: [string, string][]): void {
    const env = [...this.env()];
    for (const [key, value] of pairs) {
      const index = env.findIndex((kv) => kv === key || kv.startsWith(`${key}=`));
      if (index >= 0) env[index] = `${key}=${value}`;
      else env.push(`${key}=${value}`);
    }
    this.image.config.Env = env;
  }

  setLabels(pairs: [string, string][]): void {
    const labels = { ...(this.image.config.Labels ?? {}) };
    for (const [k, v] of pairs) labels[k] = v;
    this.image.config.Labels = labels;
  }

  /** CMD: the exec form as given, the shell form wrapped in the current SHELL. */
  setCmd(args: string[], shellForm: boolean): void {
    this.image.config.Cmd = shellForm ? [...this.shell, ...args] : args;
    this.cmdSet = true;
  }

  setEntrypoint(args: string[], shellForm: boolean): void {
    this.image.config.Entrypoint = shellForm ? [...this.shell, ...args] : args;
    if (!this.cmdSet) this.image.config.Cmd = null;
  }

  /** WORKDIR: relative paths join the current one; the result is clean and absolute. */
  setWorkdir(dir: string): string {
    const current = this.image.config.WorkingDir || '/';
    const joined = dir.startsWith('/') ? dir : `${current}/${dir}`;
    const clean = cleanPath(joined);
    this.image.config.WorkingDir = clean;
    return clean;
  }

  setUser(user: string): void {
    this.image.config.User = user;
  }

  addExposedPorts(ports: string[]): void {
    const exposed = { ...(this.image.config.ExposedPorts ?? {}) };
    for (const port of ports) for (const p of expandPortSpec(port)) exposed[p] = {};
    this.image.config.ExposedPorts = exposed;
  }

  addVolumes(paths: string[]): void {
    const volumes = { ...(this.image.config.Volumes ?? {}) };
    for (const p of paths) {
      if (p.trim() === '') throw new Error('VOLUME specified can not be an empty string');
      volumes[p] = {};
    }
    this.image.config.Volumes = volumes;
  }

  setShell(shell: string[]): void {
    this.image.config.Shell = shell;
  }

  setStopSignal(signal: string): void {
    this.image.config.StopSignal = signal;
  }

  setHealthcheck(health: HealthConfig): void {
    this.image.config.Healthcheck = health;
  }

  addOnBuild(trigger: string): void {
    this.image.config.OnBuild = [...(this.image.config.OnBuild ?? []), trigger];
  }

  setAuthor(author: string): void {
    this.image.author = author;
  }

  addLayer(diffID: string, createdBy: string, created: string | undefined): void {
    this.image.rootfs.diff_ids.push(diffID);
    this.image.history.push(historyEntry(createdBy, created, false));
  }

  addHistory(createdBy: string, created: string | undefined): void {
    this.image.history.push(historyEntry(createdBy, created, true));
  }
}

export function historyEntry(createdBy: string, created: string | undefined, empty: boolean): HistoryEntry {
  const entry: HistoryEntry = {};
  if (created) entry.created = created;
  entry.created_by = createdBy;
  entry.comment = 'tsbuild.dockerfile.v0';
  if (empty) entry.empty_layer = true;
  return entry;
}

/** `80` → `80/tcp`; `53/UDP` → `53/udp`; a range or an `[ip:]host:` prefix is an error here. */
export function normalizePort(port: string): string {
  const [num, proto] = port.split('/');
  if (!num || !/^\d+(-\d+)?$/.test(num)) throw new Error(`invalid containerPort: ${port}`);
  return `${num}/${(proto || 'tcp').toLowerCase()}`;
}

/**
 * An EXPOSE word as Docker reads it (`[ip:][hostPort:]port[-end][/proto]`): the container ports it
 * names, one `port/proto` per port of a range (`9000-9002` → 9000/tcp, 9001/tcp, 9002/tcp).
 */
export function expandPortSpec(spec: string): string[] {
  const parts = spec.split(':');
  const container = parts[parts.length - 1]!;
  const slash = container.indexOf('/');
  const range = slash < 0 ? container : container.slice(0, slash);
  const proto = (slash < 0 || container.slice(slash + 1) === '' ? 'tcp' : container.slice(slash + 1)).toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw new Error(`invalid proto: ${proto}`);
  const m = /^(\d+)(?:-(\d+))?$/.exec(range);
  const start = m ? Number(m[1]) : NaN;
  const end = m?.[2] !== undefined ? Number(m[2]) : start;
  if (!m || start > 65535 || end > 65535 || end < start) throw new Error(`invalid containerPort: ${range || spec}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

export { cleanPath };
