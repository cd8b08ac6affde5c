// The shared inputs: the busybox base tar (per run, 2 MB) and the workloads (generated once by
// mkworkloads.sh into a cache dir and reused while the script is unchanged; bigcopy is ~320 MB).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { must } from './exec.mjs';
import { GENERATED, generateWorkload } from './generate.mjs';

/** Made by the shared mkworkloads.sh. */
export const SCRIPTED = ['app', 'bigcopy', 'layers100'];
/** Every build workload: the scripted ones and those of generate.mjs. */
export const WORKLOADS = [...SCRIPTED, ...GENERATED];

/** The base tar: the repo's fixture generator when built, else the shared mkbase.sh. */
export async function makeBaseTar(repoRoot, sharedBench, out) {
  const fixture = path.join(repoRoot, 'fixtures/dist/busybox.js');
  if (fs.existsSync(fixture)) {
    await must('busybox fixture', process.execPath, [fixture, out]);
  } else {
    const script = path.join(sharedBench, 'mkbase.sh');
    if (!fs.existsSync(script)) throw new Error(`no base generator: build fixtures (npx tsc -b) or provide ${script}`);
    await must('mkbase.sh', 'bash', [script, out]);
  }
  return out;
}

/** Generates the workloads into `dir` unless a complete set from the same script is already there. */
export async function ensureWorkloads(script, dir, log) {
  if (!fs.existsSync(script)) throw new Error(`workload generator not found: ${script} (pass --workloads-script)`);
  const stamp = path.join(dir, '.stamp');
  const want = crypto.createHash('sha256').update(fs.readFileSync(script)).digest('hex');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === want && SCRIPTED.every((w) => fs.existsSync(path.join(dir, w, 'Dockerfile')))) {
    log(`workloads: reusing ${dir}`);
  } else {
    log(`workloads: generating into ${dir} (bigcopy is ~320 MB, once)`);
    fs.rmSync(stamp, { force: true });
    await must('mkworkloads.sh', 'bash', [script, dir], { timeoutMs: 30 * 60_000 });
    fs.writeFileSync(stamp, `${want}\n`);
  }
  ensureGenerated(dir, log);
  return dir;
}

/** smallfiles and steps30, regenerated when generate.mjs changes (the script's rm -rf leaves them alone). */
function ensureGenerated(dir, log) {
  const generator = fileURLToPath(new URL('./generate.mjs', import.meta.url));
  const want = crypto.createHash('sha256').update(fs.readFileSync(generator)).digest('hex');
  for (const name of GENERATED) {
    const stamp = path.join(dir, `.stamp-${name}`);
    if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === want && fs.existsSync(path.join(dir, name, 'Dockerfile'))) continue;
    log(`workloads: generating ${name}`);
    fs.rmSync(stamp, { force: true });
    generateWorkload(name, path.join(dir, name));
    fs.writeFileSync(stamp, `${want}\n`);
  }
}

/** bigcopy's data directory as a rootfs tar (entries ./small/..., ./big.bin), cached beside the workloads. */
export async function ensureBigcopyRootfsTar(workloads, log) {
  const out = path.join(workloads, 'bigcopy-rootfs.tar');
  const stamp = `${out}.ok`;
  if (fs.existsSync(stamp) && fs.existsSync(out)) return out;
  log(`import: writing ${out}`);
  fs.rmSync(stamp, { force: true });
  await must('tar bigcopy rootfs', 'tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name',
    '-C', path.join(workloads, 'bigcopy', 'data'), '-cf', out, '.'], { timeoutMs: 30 * 60_000 });
  fs.writeFileSync(stamp, '');
  return out;
}

/** A private copy of a workload whose files a case will modify (the app rebuild edits src/m5.js). */
export async function copyContext(workloads, name, dest) {
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  await must('copy context', 'cp', ['-a', path.join(workloads, name), dest]);
  return dest;
}
