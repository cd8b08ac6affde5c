// Start latency of @tsbuild/native spawn(): /bin/true (busybox) from a warm Node process, per
// namespace set, VM|VFORK clone vs fork-style clone. Needs root, the built addon and the compiled dist.
//
// Run from the repository root:
//   npx tsc -b && (cd packages/native && npx node-gyp build)
//   npx tsc --ignoreConfig bench/start-latency.ts --outDir /tmp/tsbuild-bench --module nodenext --target es2022 \
//     --types node --skipLibCheck && node /tmp/tsbuild-bench/start-latency.js [runs=1000] [--rss=MB]
//
// --rss=MB first grows this process's resident memory (fork-style clone copies page tables, so its
// cost grows with RSS; VM|VFORK does not). "start" is spawn() until execve succeeded; "exit" is until
// the exit has been observed through the pidfd.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

interface Step {
  op: string;
  [key: string]: unknown;
}
interface SpawnModule {
  spawn(spec: {
    args: string[];
    env: string[];
    stdio: [number, number, number];
    namespaces?: string[];
    steps?: Step[];
    cloneMode?: 'vfork' | 'fork';
    seccomp?: { filter: Uint8Array; flags?: number };
  }): Promise<{ pid: number; exited: Promise<{ exitCode: number | null }> }>;
}

const repo = process.cwd();
const native = require(path.join(repo, 'packages/native/dist/spawn')) as SpawnModule;
const runtime = require(path.join(repo, 'packages/storage/dist/runtime')) as {
  containerSeccomp(option: 'default', caps: readonly string[]): { filter: Buffer; flags: number };
  capabilitySet(opt: undefined): string[];
};

function makeRootfs(dir: string): string {
  for (const d of ['bin', 'proc', 'dev', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(dir, 'bin/true'));
  return dir;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(runs: number, spec: Parameters<SpawnModule['spawn']>[0]) {
  const start: number[] = [];
  const exit: number[] = [];
  for (let i = 0; i < Math.min(20, runs); i++) await (await native.spawn(spec)).exited; // warm up
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const p = await native.spawn(spec);
    const t1 = process.hrtime.bigint();
    const status = await p.exited;
    const t2 = process.hrtime.bigint();
    if (status.exitCode !== 0) throw new Error(`run ${i} exited with ${JSON.stringify(status)}`);
    start.push(Number(t1 - t0) / 1e6);
    exit.push(Number(t2 - t0) / 1e6);
  }
  start.sort((a, b) => a - b);
  exit.sort((a, b) => a - b);
  return { start, exit };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 1000);
  const rssArg = args.find((a) => a.startsWith('--rss='));
  const ballast: Buffer[] = [];
  if (rssArg) {
    const mb = Number(rssArg.slice(6));
    for (let i = 0; i < mb; i++) ballast.push(Buffer.alloc(1 << 20, 1)); // touched pages
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-bench-'));
  try {
    const rootfs = makeRootfs(path.join(tmp, 'rootfs'));
    const devNull = fs.openSync('/dev/null', 'r+');
    const base = { args: ['/bin/true'], env: ['PATH=/bin'], stdio: [devNull, devNull, devNull] as [number, number, number] };
    const slave: Step = { op: 'mount', target: '/', flags: ['rec', 'slave'] };
    const chroot: Step[] = [slave, { op: 'chroot', root: rootfs }];
    const full: Step[] = [
      slave,
      { op: 'mount', source: rootfs, target: rootfs, flags: ['bind', 'rec'] },
      { op: 'pivotRoot', root: rootfs },
      { op: 'mount', source: 'proc', target: '/proc', type: 'proc', flags: ['nosuid', 'nodev', 'noexec'] },
      { op: 'mount', source: 'tmpfs', target: '/dev', type: 'tmpfs', flags: ['nosuid'], data: 'mode=755,size=65536k' },
      { op: 'mknod', path: '/dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 },
      { op: 'sethostname', name: 'bench' },
    ];
    // Docker's default profile for Docker's capability set: compiled once per process (cached), so a
    // warm process only pays for the kernel loading the filter and the container running under it.
    const t0 = process.hrtime.bigint();
    const seccomp = runtime.containerSeccomp('default', runtime.capabilitySet(undefined));
    const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const variants: { name: string; namespaces: string[]; steps: Step[]; seccomp?: typeof seccomp }[] = [
      { name: 'no namespaces (host /bin/true)', namespaces: [], steps: [] },
      { name: 'mount+pid+ipc+uts, chroot', namespaces: ['mount', 'pid', 'ipc', 'uts'], steps: chroot },
      { name: '+ net', namespaces: ['mount', 'pid', 'ipc', 'uts', 'net'], steps: chroot },
      { name: 'container: pivot_root, /proc, /dev', namespaces: ['mount', 'pid', 'ipc', 'uts', 'net'], steps: full },
      { name: `+ seccomp (${seccomp.filter.length / 8} insns)`, namespaces: ['mount', 'pid', 'ipc', 'uts', 'net'], steps: full, seccomp },
    ];
    const rss = Math.round(process.memoryUsage().rss / (1 << 20));
    console.log(`spawn start latency, ${runs} runs each, Node RSS ${rss} MB, ${os.cpus().length} CPUs, ms`);
    console.log(`Docker's seccomp profile compiled in ${compileMs.toFixed(2)} ms (first container of a process only)`);
    const exitP50 = new Map<string, number>();
    console.log(['variant'.padEnd(38), 'clone', 'start p50', 'start p90', 'exit p50', 'exit p90'].join('  '));
    for (const v of variants) {
      for (const cloneMode of ['vfork', 'fork'] as const) {
        const spec = {
          ...base, args: v.steps.length ? ['/bin/true'] : ['/bin/busybox', 'true'], namespaces: v.namespaces, steps: v.steps, cloneMode,
          ...(v.seccomp ? { seccomp: v.seccomp } : {}),
        };
        const { start, exit } = await measure(runs, spec);
        exitP50.set(`${v.seccomp ? 'seccomp' : v.name}/${cloneMode}`, percentile(exit, 50));
        const f = (n: number) => n.toFixed(2).padStart(9);
        console.log([v.name.padEnd(38), cloneMode.padEnd(5), f(percentile(start, 50)), f(percentile(start, 90)), f(percentile(exit, 50)), f(percentile(exit, 90))].join('  '));
      }
    }
    for (const mode of ['vfork', 'fork']) {
      const extra = exitP50.get(`seccomp/${mode}`)! - exitP50.get(`container: pivot_root, /proc, /dev/${mode}`)!;
      console.log(`seccomp filter, extra start-to-exit p50 (${mode}): ${extra.toFixed(3)} ms (budget 1 ms)`);
    }
    fs.closeSync(devNull);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    ballast.length = 0;
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
