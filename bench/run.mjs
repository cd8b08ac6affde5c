#!/usr/bin/env node
// Side-by-side benchmarks of tsbuild against docker, podman, buildah and runc.
// Usage: node bench/run.mjs [import|run|build ...] [options]   (as root; see bench/README.md)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { killLive } from './lib/exec.mjs';
import { killProcessesUnder, removeTree, unmountUnder } from './lib/cleanup.mjs';
import { makeBaseTar, ensureWorkloads, WORKLOADS } from './lib/fixtures.mjs';
import { caseTable, goalTable, rssGoalTable, RSS_NOTE } from './lib/report.mjs';
import { caseJson } from './lib/measure.mjs';
import { tsbuildTool } from './lib/tools/tsbuild.mjs';
import { dockerTool } from './lib/tools/docker.mjs';
import { podmanTool, buildahTool } from './lib/tools/containers.mjs';
import { runcTool } from './lib/tools/runc.mjs';
import { importSuite, IMPORT_TOOLS } from './lib/suites/import.mjs';
import { runSuite, RUN_TOOLS } from './lib/suites/run.mjs';
import { querySuite, QUERY_TOOLS } from './lib/suites/query.mjs';
import { buildSuite, BUILD_TOOLS } from './lib/suites/build.mjs';
import { ciSuite, CI_TOOLS } from './lib/suites/ci.mjs';
import { rootlessSuite, ROOTLESS_TOOLS } from './lib/suites/rootless.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SUITES = {
  import: [importSuite, IMPORT_TOOLS], run: [runSuite, RUN_TOOLS], query: [querySuite, QUERY_TOOLS], build: [buildSuite, BUILD_TOOLS],
  ci: [ciSuite, CI_TOOLS], rootless: [rootlessSuite, ROOTLESS_TOOLS],
};
const ALL_TOOLS = ['tsbuild', 'docker', 'podman', 'buildah', 'runc'];
const FACTORIES = { tsbuild: tsbuildTool, docker: dockerTool, podman: podmanTool, buildah: buildahTool, runc: runcTool };

const USAGE = `Usage: node bench/run.mjs [SUITE...] [OPTIONS]     (as root)

Suites: import, run, query, build, ci, rootless (default: all six, in that order)

Options:
  --runs N               runs per case in every suite (the per-suite options below win over it)
  --run-runs N           runs of "run --rm true", "images" and "inspect" per tool (default 30, after 3 warm-ups)
  --build-runs N         runs per build case (default 3)
  --bigcopy-runs N       runs of the cold bigcopy build (default 2)
  --import-runs N        runs of the import suite (default 3)
  --quick                smoke settings: run 5, builds 1, bigcopy 1, import 1
  --tools LIST           comma-separated subset of ${ALL_TOOLS.join(',')}
  --workloads-only LIST  build and ci suite workloads (default: build ${WORKLOADS.join(',')}; ci app)
  --workloads DIR        workload cache (default $TMPDIR/tsbuild-bench-workloads, reused between runs)
  --workloads-script F   generator (default ../shared/bench/mkworkloads.sh beside the repo)
  --tsbuild FILE         the tsbuild CLI script (default packages/builder/bin/tsbuild.js)
  --drop-caches          drop the page cache before every cold build and import (default: warm cache)
  --out FILE             JSON results (default bench/results/<timestamp>.json)
  --keep                 keep the temp dir (stores, logs) after the run; mounts and daemons still go
  -h, --help`;

function parseOptions(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      runs: { type: 'string' }, 'run-runs': { type: 'string' }, 'build-runs': { type: 'string' },
      'bigcopy-runs': { type: 'string' }, 'import-runs': { type: 'string' }, quick: { type: 'boolean' },
      tools: { type: 'string' }, 'workloads-only': { type: 'string' }, workloads: { type: 'string' },
      'workloads-script': { type: 'string' }, tsbuild: { type: 'string' }, 'drop-caches': { type: 'boolean' }, out: { type: 'string' },
      keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  const count = (name, dflt) => {
    const raw = values[name] ?? values.runs;
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
    return n;
  };
  const q = values.quick === true;
  const suites = positionals.length ? positionals : Object.keys(SUITES);
  for (const s of suites) if (!SUITES[s]) throw new Error(`unknown suite "${s}": use ${Object.keys(SUITES).join(', ')}`);
  const list = (raw, all, what) => {
    if (raw === undefined) return all;
    const items = raw.split(',').map((x) => x.trim()).filter(Boolean);
    for (const x of items) if (!all.includes(x)) throw new Error(`unknown ${what} "${x}": use ${all.join(', ')}`);
    return items;
  };
  return {
    suites,
    runRuns: count('run-runs', q ? 5 : 30),
    buildRuns: count('build-runs', q ? 1 : 3),
    bigcopyRuns: count('bigcopy-runs', q ? 1 : 2),
    importRuns: count('import-runs', q ? 1 : 3),
    tools: list(values.tools, ALL_TOOLS, 'tool'),
    buildWorkloads: list(values['workloads-only'], WORKLOADS, 'workload'),
    ciWorkloads: values['workloads-only'] === undefined ? undefined : list(values['workloads-only'], WORKLOADS, 'workload'),
    workloads: path.resolve(values.workloads ?? path.join(os.tmpdir(), 'tsbuild-bench-workloads')),
    workloadsScript: path.resolve(values['workloads-script'] ?? path.join(repoRoot, '..', 'shared', 'bench', 'mkworkloads.sh')),
    tsbuildCli: path.resolve(values.tsbuild ?? path.join(repoRoot, 'packages/builder/bin/tsbuild.js')),
    dropCaches: values['drop-caches'] === true,
    out: values.out ? path.resolve(values.out) : undefined,
    keep: values.keep === true,
  };
}

const log = (msg) => process.stderr.write(`${msg}\n`);
const say = (text) => process.stdout.write(`${text}\n\n`);

function hostInfo() {
  const sh = (c) => spawnSync('sh', ['-c', c], { encoding: 'utf8' }).stdout.trim();
  return {
    kernel: os.release(),
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    commit: sh(`git -C '${repoRoot}' rev-parse --short HEAD 2>/dev/null`) || undefined,
    dirty: sh(`git -C '${repoRoot}' status --porcelain 2>/dev/null | head -1`) !== '',
  };
}

async function main() {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    log(`bench: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (process.getuid?.() !== 0) { log('bench: run as root (the peers need mounts, namespaces and a private dockerd)'); return 2; }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-bench-run-'));
  const started = new Date();
  const result = { startedAt: started.toISOString(), host: hostInfo(), options: { ...opts }, tools: {}, suites: {} };
  const tools = {};
  let interrupted = false;
  const cleanup = async () => {
    killLive();
    for (const name of Object.keys(tools).reverse()) {
      try { await tools[name].teardown?.(); } catch (err) { log(`bench: stopping ${name}: ${err.message}`); }
    }
    const stray = killProcessesUnder(tmp);
    if (stray.length) log(`bench: killed leftover processes ${stray.join(' ')}`);
    const stuck = opts.keep ? unmountUnder(tmp) : removeTree(tmp);
    if (stuck.length) log(`bench: could not unmount ${stuck.join(' ')}`);
    else if (opts.keep) log(`bench: kept ${tmp}`);
  };
  const writeResult = () => {
    const out = opts.out ?? path.join(repoRoot, 'bench', 'results', `${started.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path.relative(process.cwd(), out) || out}`);
  };
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = true;
    log(`bench: ${sig}, cleaning up`);
    result.error = `interrupted by ${sig}`;
    cleanup().finally(() => { writeResult(); process.exit(130); });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const baseTar = await makeBaseTar(repoRoot, path.dirname(opts.workloadsScript), path.join(tmp, 'base.tar'));
    const ctx = { repoRoot, tmp, baseTar, tsbuildCli: opts.tsbuildCli };
    const workloads = opts.suites.some((s) => s === 'import' || s === 'build' || s === 'ci' || s === 'rootless') ? await ensureWorkloads(opts.workloadsScript, opts.workloads, log) : undefined;

    const needed = ALL_TOOLS.filter((t) => opts.tools.includes(t) && opts.suites.some((s) => SUITES[s][1].includes(t)));
    for (const name of needed) {
      const tool = FACTORIES[name](ctx);
      tools[name] = tool;
      if (name === 'tsbuild') {
        tool.error = await tool.check();
      } else {
        log(`setup: ${name}`);
        try { await tool.setup(); } catch (err) { tool.unavailable = err.message; }
      }
      const status = tool.unavailable ? `n/a: ${tool.unavailable}` : tool.error ? `error: ${tool.error}` : 'ok';
      result.tools[name] = { status, note: tool.note, version: status === 'ok' || name === 'tsbuild' ? await tool.version?.().catch(() => undefined) : undefined };
      log(`setup: ${name}: ${status}`);
    }

    say(`## tsbuild benchmarks, ${started.toISOString()}\n\n${result.host.cpus} CPUs, ${result.host.memGiB} GiB, Linux ${result.host.kernel}, Node ${result.host.node}, ` +
      `commit ${result.host.commit ?? '?'}${result.host.dirty ? ' (dirty)' : ''}, page cache ${opts.dropCaches ? 'dropped before cold runs' : 'warm'}\n\n` +
      Object.entries(result.tools).map(([n, t]) => `- ${n}: ${t.version ?? ''} ${t.status === 'ok' ? '' : `(${t.status})`} ${t.note ?? ''}`.replace(/\s+/g, ' ').trim()).join('\n'));

    say(`Every table: ${RSS_NOTE}.`);
    const env = { tools, opts, log, tmp, workloads };
    const allCases = [];
    for (const suite of opts.suites) {
      log(`suite: ${suite}`);
      // A suite whose cases are not tools side by side (ci) gives its own tables and raw data.
      const { cases, goals, tables = [], data } = await SUITES[suite][0](env);
      allCases.push(...cases);
      say(`### ${suite}\n\n${[...cases.map((c) => caseTable(c.title, c.rows, c.notes)), ...tables].join('\n\n')}${goals.length ? `\n\n${goalTable(`${suite}: goals (median ratios)`, goals)}` : ''}`);
      result.suites[suite] = { cases: cases.map(caseJson), goals, ...(data ? { data } : {}) };
    }
    const memory = rssGoalTable(allCases);
    if (memory) say(`### memory\n\n${memory}`);
    return 0;
  } catch (err) {
    log(`bench: ${err.message}`);
    result.error = err.message;
    return 1;
  } finally {
    if (!interrupted) {
      await cleanup();
      writeResult();
    }
  }
}

main().then((code) => { process.exitCode = code; });
