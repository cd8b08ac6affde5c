// Docker: a private dockerd (own data root, exec root, socket, no iptables/bridge) started for this run
// and stopped at the end, driven by the docker CLI with the classic builder (buildx is not installed).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { run, must, which, errorLine, killGroup } from '../exec.mjs';
import { sleep } from '../cleanup.mjs';

export function dockerTool(ctx) {
  const dir = path.join(ctx.tmp, 'docker');
  const sock = path.join(dir, 'docker.sock');
  const env = { DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: path.join(dir, 'client'), DOCKER_BUILDKIT: '0' };
  const docker = (...args) => ({ cmd: 'docker', args, env, timeoutMs: 15 * 60_000 });
  let daemon;
  let baseId;

  const cli = async (label, ...args) => must(label, 'docker', args, { env, timeoutMs: 5 * 60_000 });

  return {
    name: 'docker',
    note: 'dockerd (private data root), docker CLI, DOCKER_BUILDKIT=0 classic builder',

    /** Starts dockerd, imports bench-base and runs one container; throws the reason it cannot. */
    async setup() {
      for (const bin of ['docker', 'dockerd']) if (!which(bin)) throw new Error(`${bin} not installed`);
      fs.mkdirSync(path.join(dir, 'client'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'daemon.json'), '{}\n');
      const logPath = path.join(dir, 'dockerd.log');
      const logFd = fs.openSync(logPath, 'a');
      daemon = spawn('dockerd', [
        '--config-file', path.join(dir, 'daemon.json'),
        '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'),
        '--pidfile', path.join(dir, 'docker.pid'), '-H', `unix://${sock}`,
        '--iptables=false', '--bridge=none',
        '--default-ulimit', 'nofile=1024:1024', '--default-ulimit', 'nproc=1024:1024',
      ], { detached: true, stdio: ['ignore', logFd, logFd] });
      fs.closeSync(logFd);
      let exited = false;
      daemon.on('exit', () => { exited = true; });
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (exited) throw new Error(`dockerd exited: ${errorLine(fs.readFileSync(logPath, 'utf8'))}`);
        if (fs.existsSync(sock) && (await run('docker', ['version'], { env, timeoutMs: 10_000 })).code === 0) break;
        if (Date.now() > deadline) throw new Error('dockerd did not answer within 60 s');
        await sleep(200);
      }
      const r = await cli('docker import bench-base', 'import', ctx.baseTar, 'bench-base');
      baseId = r.stdout.trim();
      await cli('docker run', 'run', '--rm', '--network', 'none', 'bench-base', 'true');
    },

    async version() {
      const c = await run('docker', ['version', '--format', '{{.Client.Version}} / server {{.Server.Version}}'], { env });
      return c.stdout.trim();
    },

    importCmd: (tar, name) => docker('import', tar, name),
    runCmd: () => docker('run', '--rm', '--network', 'none', 'bench-base', 'true'),
    imagesCmd: () => docker('images'),
    inspectCmd: (name) => docker('inspect', name),
    tagCmd: (source, target) => docker('tag', source, target),
    buildCmd: (tag, context) => docker('build', '--network', 'none', '-t', tag, context),

    /**
     * The daemons' memory during a case, which the client's RSS does not include: dockerd's and
     * containerd's peak RSS (VmHWM, reset through /proc/PID/clear_refs at the start of the case).
     */
    daemonProbe() {
      const daemons = () => daemonPids(daemon?.pid);
      return {
        name: 'docker daemons',
        async start() {
          for (const { pid } of daemons()) { try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* gone or old kernel */ } }
        },
        async finish() {
          const peaks = daemons().map(({ pid, name }) => `${name} ${peakMiB(pid)}`).filter((x) => !x.endsWith(' ?'));
          return peaks.length ? `docker's daemons, peak RSS during the case (VmHWM): ${peaks.join(', ')}` : undefined;
        },
      };
    },

    async rmi(...names) {
      await run('docker', ['rmi', '-f', ...names], { env });
    },

    /** Back to "only bench-base": the classic builder's cache is its intermediate images. */
    async resetImages() {
      await run('docker', ['container', 'prune', '-f'], { env });
      for (let pass = 0; pass < 5; pass++) {
        const tags = (await cli('docker images', 'images', '--format', '{{.Repository}}:{{.Tag}}')).stdout
          .split('\n').filter((t) => t && t !== 'bench-base:latest' && !t.startsWith('<none>'));
        if (tags.length) await run('docker', ['rmi', '-f', ...tags], { env });
        await run('docker', ['image', 'prune', '-f'], { env });
        const ids = (await cli('docker images', 'images', '-aq', '--no-trunc')).stdout.split('\n').filter(Boolean);
        const extra = ids.filter((id) => id !== baseId);
        if (extra.length === 0) return;
        await run('docker', ['rmi', '-f', ...extra], { env });
      }
      throw new Error('docker: could not remove the images of the previous build');
    },

    async teardown() {
      if (!daemon || daemon.exitCode !== null || daemon.signalCode !== null) return;
      const gone = new Promise((resolve) => {
        const timer = setTimeout(() => { killGroup(daemon.pid, 'SIGKILL'); }, 30_000);
        daemon.once('exit', () => { clearTimeout(timer); resolve(); });
      });
      killGroup(daemon.pid, 'SIGTERM');
      await gone;
    },
  };
}

/** dockerd and its long-lived children (containerd), as {pid, name}. */
function daemonPids(root) {
  if (!root) return [];
  const found = [{ pid: root, name: 'dockerd' }];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === root && name === 'containerd') found.push({ pid: Number(entry), name });
    } catch { /* exited meanwhile */ }
  }
  return found;
}

function peakMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? `${(Number(m[1]) / 1024).toFixed(0)} MB` : '?';
  } catch {
    return '?';
  }
}
