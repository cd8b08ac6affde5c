// A throwaway podman for interop tests: its own --root/--runroot/--tmpdir under a temp dir, the vfs
// storage driver (no mounts to leak), cgroupfs (cgroups v1 hybrid host, no systemd), file events, and
// default ulimits within this machine's hard limits (REFERENCE.md §0).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface Podman {
  dir: string;
  podman(args: string[], opts?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** Unmounts whatever podman left under its directories and removes them. */
  cleanup(): Promise<void>;
}

function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && (mp === dir || mp.startsWith(`${dir}/`))) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

export function makePodman(): Podman {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tspm-'));
  const conf = path.join(dir, 'containers.conf');
  // Root here lacks CAP_SYS_RESOURCE and the hard NOFILE is 20000: podman's default 1048576 fails.
  fs.writeFileSync(
    conf,
    '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' +
      '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n',
  );
  const storageConf = path.join(dir, 'storage.conf');
  fs.writeFileSync(
    storageConf,
    `[storage]\ndriver = "vfs"\nrunroot = "${dir}/runroot"\ngraphroot = "${dir}/root"\n`,
  );
  const base = [
    '--root', path.join(dir, 'root'),
    '--runroot', path.join(dir, 'runroot'),
    '--tmpdir', path.join(dir, 'tmp'),
    '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
  ];
  const env = { ...process.env, CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storageConf, TMPDIR: path.join(dir, 'tmp') };
  fs.mkdirSync(path.join(dir, 'tmp'));
  return {
    dir,
    async podman(args, opts = {}) {
      try {
        return await execFileP('podman', [...base, ...args], { env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
      } catch (err) {
        const e = err as Error & { stderr?: string };
        throw new Error(`podman ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
      }
    },
    async cleanup() {
      for (const mp of mountsUnder(dir)) await execFileP('umount', ['-l', mp]).catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
