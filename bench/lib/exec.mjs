// Running commands: timed, with a timeout, output captured for error cells. Every child gets its own
// process group so a timeout or Ctrl-C can stop it with everything it started.
import * as fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';

const live = new Set();
let stopping = false;
const OUTPUT_CAP = 256 * 1024;

// GNU time reports the child's peak RSS from wait4's rusage (ru_maxrss, KiB): the largest single process
// among the command and the descendants it waited for. Its line goes to stderr after the child's output,
// behind a marker that no tool prints.
const GNU_TIME = '/usr/bin/time';
const RSS_MARK = '@@tsbuild-bench-maxrss-kib ';
export const canMeasureRss = fs.existsSync(GNU_TIME);

/**
 * Spawns `cmd args`, resolves when it exits; never rejects. `ms` is wall time from spawn to exit.
 * With `rss`, the command runs under GNU time (one extra fork+exec, well under a millisecond, paid by
 * every tool alike) and `rssKiB` is its peak RSS.
 */
export function run(cmd, args, { env, cwd, timeoutMs = 10 * 60_000, rss = false } = {}) {
  if (rss && canMeasureRss) {
    return run(GNU_TIME, ['-f', `\n${RSS_MARK}%M`, cmd, ...args], { env, cwd, timeoutMs }).then(splitRss);
  }
  return new Promise((resolve) => {
    if (stopping) {
      resolve({ ms: 0, code: -1, stdout: '', stderr: 'interrupted' });
      return;
    }
    const t0 = process.hrtime.bigint();
    let child;
    try {
      child = spawn(cmd, args, {
        cwd,
        env: env ? { ...process.env, ...env } : process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      resolve({ ms: 0, code: -1, stdout: '', stderr: `${cmd}: ${err.message}` });
      return;
    }
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => { if (stdout.length < OUTPUT_CAP) stdout += d; });
    child.stderr.on('data', (d) => { if (stderr.length < OUTPUT_CAP) stderr += d; });
    const timer = setTimeout(() => { timedOut = true; killGroup(child.pid, 'SIGKILL'); }, timeoutMs);
    child.on('error', (err) => { stderr += `${cmd}: ${err.message}\n`; });
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      live.delete(child);
      if (timedOut) stderr = `timed out after ${Math.round(timeoutMs / 1000)} s\n${stderr}`;
      resolve({ ms, code: code ?? (signal ? 128 : -1), signal, stdout, stderr });
    });
  });
}

/** Takes GNU time's line off stderr; keeps the child's exit status (time passes it through). */
function splitRss(r) {
  const at = r.stderr.lastIndexOf(`\n${RSS_MARK}`);
  if (at < 0) return r;
  const rssKiB = Number(r.stderr.slice(at + 1 + RSS_MARK.length).trim());
  // GNU time adds "Command exited with non-zero status N" before its line; drop that too.
  const stderr = r.stderr.slice(0, at).replace(/\n?Command (exited with non-zero status \d+|terminated by signal \d+)\s*$/, '');
  return { ...r, stderr, rssKiB: Number.isFinite(rssKiB) ? rssKiB : undefined };
}

/** Like run() but throws a one-line Error when the command fails. */
export async function must(label, cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${label}: ${errorLine(r.stderr || r.stdout) || `exit ${r.code}`}`);
  return r;
}

// Lines peers print on stderr that never explain a failure.
const NOISE = [/^DEPRECATED: The legacy builder/, /^Sending build context/, /^BuildKit is currently disabled/, /^environment-variable\.?$/,
  /^WARNING:/, /^time=".*level=(info|warning)/];

/** The line that best explains a failure: the first one mentioning an error, else the first non-noise line. */
export function errorLine(text) {
  const lines = String(text).split('\n').map((l) => l.trim()).filter(Boolean).filter((l) => !NOISE.some((re) => re.test(l)));
  return (lines.find((l) => /error|fail|denied|not found|no such|non-zero|invalid|cannot|unable/i.test(l)) ?? lines[0] ?? '').slice(0, 200);
}

/** First non-empty line of stderr, as the brief asks for tsbuild cells. */
export function firstLine(text) {
  return (String(text).split('\n').map((l) => l.trim()).find(Boolean) ?? '').slice(0, 200);
}

export function killGroup(pid, signal = 'SIGTERM') {
  try { process.kill(-pid, signal); } catch { /* already gone */ }
}

/** Stops every child still running and refuses to start more (Ctrl-C). */
export function killLive() {
  stopping = true;
  for (const child of live) killGroup(child.pid, 'SIGKILL');
  live.clear();
}

export function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Flushes dirty pages so one tool's writeback is not billed to the next; optionally drops the page cache. */
export function settle(dropCaches) {
  spawnSync('sync');
  if (dropCaches) {
    try { spawnSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']); } catch { /* not permitted: ignore */ }
  }
}
