// Leaving the machine as found: unmount what the peers left under our temp dir, stop processes that
// belong to it (dockerd's containerd, shims, conmon), remove it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir) {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  let text = '';
  try { text = fs.readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return []; }
  const points = text.split('\n').filter(Boolean)
    .map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything under `dir` (lazily, so a busy mount cannot block the cleanup). */
export function unmountUnder(dir) {
  for (let pass = 0; pass < 5; pass++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return [];
    for (const p of points) spawnSync('umount', ['-l', p]);
  }
  return mountsUnder(dir);
}

/** Pids whose command line or working directory names `dir`: only processes started for this run. */
export function processesUnder(dir) {
  const pids = [];
  // `dir` itself or a path below it, never a sibling that merely shares the prefix.
  const names = new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=/|\\0|$|[\\s,:;"])`);
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      let cwd = '';
      try { cwd = fs.readlinkSync(`/proc/${name}/cwd`); } catch { /* kernel thread or gone */ }
      if (names.test(cmdline) || cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(name));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

export function killProcessesUnder(dir) {
  const pids = processesUnder(dir);
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  return pids;
}

/** Unmounts and deletes `dir`; returns the mount points that would not go away (normally none). */
export function removeTree(dir) {
  const stuck = unmountUnder(dir);
  if (stuck.length === 0) fs.rmSync(dir, { recursive: true, force: true });
  return stuck;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export function ensureDir(...parts) {
  const d = path.join(...parts);
  fs.mkdirSync(d, { recursive: true });
  return d;
}
