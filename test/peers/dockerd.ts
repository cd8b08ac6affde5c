// A throwaway Docker engine for interop tests (REFERENCE.md §0): its own data root, exec root and
// unix socket under a temp dir, no iptables, no bridge, and explicit default ulimits (root here lacks
// CAP_SYS_RESOURCE and the hard NOFILE is 20000). If it cannot start, startDockerd throws with the
// daemon's log: a missing peer is a failure, never a skip.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface Dockerd {
  /** DOCKER_HOST value (`unix:///…/docker.sock`). */
  host: string;
  dir: string;
  log: string;
  /** Runs the docker CLI against this daemon. */
  docker(args: string[], opts?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** Stops the daemon, unmounts what it left and removes its directories. */
  stop(): Promise<void>;
}

const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** Mount points at or below `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const decoded = mp.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === dir || decoded.startsWith(`${dir}/`)) out.push(decoded);
  }
  return out.sort((a, b) => b.length - a.length);
}

async function unmountAll(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir)) {
    await execFileP('umount', ['-l', mp]).catch(() => {});
  }
}

export async function startDockerd(): Promise<Dockerd> {
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbd-'));
  const sock = path.join(dir, 'docker.sock');
  const host = `unix://${sock}`;
  const log = path.join(dir, 'dockerd.log');
  const configFile = path.join(dir, 'daemon.json');
  fs.writeFileSync(configFile, '{}');
  const logFd = fs.openSync(log, 'a');
  const child = spawn(
    'dockerd',
    [
      '--config-file', configFile,
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '--pidfile', path.join(dir, 'docker.pid'),
      '-H', host,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--default-ulimit', 'nofile=1024:1024',
      '--default-ulimit', 'nproc=1024:1024',
    ],
    { stdio: ['ignore', logFd, logFd], env: { ...process.env, DOCKER_HOST: host } },
  );
  fs.closeSync(logFd);
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: path.join(dir, 'cli') };
  const docker = async (args: string[], opts: { timeoutMs?: number } = {}) => {
    try {
      return await execFileP('docker', args, { env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
    } catch (err) {
      const e = err as Error & { stderr?: string; stdout?: string };
      throw new Error(`docker ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const done = await Promise.race([exited(child).then(() => true), sleep(STOP_DEADLINE_MS).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exited(child);
      }
    }
    await unmountAll(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const started = Date.now();
  let lastError = '';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      await stop();
      throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode}) while starting; its log:\n${text.slice(-8000)}`);
    }
    if (fs.existsSync(sock)) {
      try {
        await execFileP('docker', ['version', '--format', '{{.Server.Version}}'], { env, timeout: 10_000 });
        break;
      } catch (err) {
        lastError = (err as Error).message;
      }
    }
    if (Date.now() - started > START_DEADLINE_MS) {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      await stop();
      throw new Error(`dockerd did not answer within ${START_DEADLINE_MS / 1000}s (${lastError}); its log:\n${text.slice(-8000)}`);
    }
    await sleep(200);
  }
  return { host, dir, log, docker, stop };
}
