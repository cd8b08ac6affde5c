// Builds seccomp-probe.c (static, so it runs in any rootfs) for tests that check what a container may do.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PROBE_SOURCE = path.join(__dirname, 'seccomp-probe.c');

/** Compiles the probe to `out` and returns it. */
export function buildSeccompProbe(out: string): string {
  execFileSync('cc', ['-static', '-O1', '-pthread', '-o', out, PROBE_SOURCE], { stdio: 'pipe' });
  return out;
}

/** Copies the probe into a rootfs as /probe (mode 0755, or as given). */
export function installProbe(probe: string, rootfs: string, name = 'probe', mode = 0o755): string {
  const dest = path.join(rootfs, name);
  fs.copyFileSync(probe, dest);
  fs.chownSync(dest, 0, 0);
  fs.chmodSync(dest, mode);
  return `/${name}`;
}

/** "a=OK\nb=EPERM\n" → { a: 'OK', b: 'EPERM' } */
export function parseProbeOutput(out: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of out.trim().split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) result[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return result;
}
