// Suite "ci": a CI runner's view of the shared build cache (issue 13). A loopback docker-registry sits
// behind a counting proxy (requests, bytes each way). Per run, two fresh stores pull bench-base from it
// (untimed); store A builds a workload cold with --cache-to type=registry,mode=max and pushes the image;
// store B, empty but for the base, builds the same context with --cache-from and pushes its image to
// another repository of the same registry. Reported per phase: wall time, requests, bytes down and up;
// against the cold build: B's build time (goal ≤ 0.15×) and the bytes B downloads, build and push,
// against the image's compressed bytes (goal < 1%). tsbuild only: docker's classic builder has no
// --cache-to, and buildx is not installed here.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { run, firstLine } from '../exec.mjs';
import { copyContext } from '../fixtures.mjs';
import { summarize, formatMs, formatRatio } from '../stats.mjs';

export const CI_TOOLS = ['tsbuild'];
const REGISTRY_BIN = '/usr/bin/docker-registry';
const DEFAULT_WORKLOADS = ['app'];

export async function ciSuite(env) {
  const { tools, opts, log, tmp } = env;
  const tool = tools.tsbuild;
  if (!tool || tool.error) return { cases: [], goals: [], tables: [`#### ci\n\ntsbuild: ${tool?.error ?? 'not selected'}`] };
  if (!fs.existsSync(REGISTRY_BIN)) return { cases: [], goals: [], tables: [`#### ci\n\nn/a: ${REGISTRY_BIN} missing (apt-get install docker-registry)`] };
  const registry = await startCountingRegistry(path.join(tmp, 'ci-registry'), log);
  const tables = [];
  const goals = [];
  const data = {};
  try {
    const seed = await tool.newRootWithBase('ci-seed');
    await must(tool, seed, 'push', 'bench-base', `${registry.host}/bench-base:ci`);
    const workloads = opts.ciWorkloads ?? DEFAULT_WORKLOADS;
    for (const workload of workloads) {
      const context = await copyContext(env.workloads, workload, path.join(tmp, 'contexts', `ci-${workload}`));
      const phases = await ciWorkload({ tool, registry, context, workload, runs: opts.buildRuns, log });
      data[workload] = phases;
      const { table, workloadGoals } = report(workload, phases);
      tables.push(table);
      goals.push(...workloadGoals);
    }
  } finally {
    await registry.stop();
  }
  return { cases: [], goals, tables, data };
}

const PHASES = ['A: cold build, export cache', 'A: push', 'B: build from the cache', 'B: push (same registry)'];

async function ciWorkload({ tool, registry, context, workload, runs, log }) {
  const phases = Object.fromEntries(PHASES.map((p) => [p, { ms: [], requests: [], down: [], up: [], blobGets: [], blobPuts: [] }]));
  const imageBytes = [];
  for (let i = 0; i < runs; i++) {
    const cacheRef = `${registry.host}/ci-${workload}:cache-${i}`;
    const a = await runnerStore(tool, registry);
    const b = await runnerStore(tool, registry);
    try {
      const steps = [
        [PHASES[0], a, ['build', '-q', '-t', 'app', '--cache-to', `type=registry,ref=${cacheRef},mode=max`, context]],
        [PHASES[1], a, ['push', 'app', `${registry.host}/ci-${workload}:${i}`]],
        [PHASES[2], b, ['build', '-q', '-t', 'app', '--cache-from', `type=registry,ref=${cacheRef}`, context]],
        [PHASES[3], b, ['push', 'app', `${registry.host}/ci-${workload}-b:${i}`]],
      ];
      for (const [phase, root, args] of steps) {
        const before = registry.snapshot();
        const r = await run(tool.cliPath, ['--root', root, ...args], { timeoutMs: 15 * 60_000 });
        if (r.code !== 0) throw new Error(`${phase}: ${firstLine(r.stderr) || `exit status ${r.code}`}`);
        const d = registry.since(before);
        const p = phases[phase];
        p.ms.push(r.ms);
        p.requests.push(d.requests);
        p.down.push(d.down);
        p.up.push(d.up);
        p.blobGets.push(d.blobGets);
        p.blobPuts.push(d.blobPuts);
        log(`[ci ${workload}] ${i + 1}/${runs} ${phase}: ${formatMs(r.ms)}, ${d.requests} requests, ${d.down} B down, ${d.up} B up`);
      }
      imageBytes.push(await registry.imageBytes(`ci-${workload}`, String(i)));
    } finally {
      tool.drop(a);
      tool.drop(b);
    }
  }
  return { phases, imageBytes };
}

/** A fresh store holding bench-base pulled from the registry (so both runners name the same blobs). */
async function runnerStore(tool, registry) {
  const root = tool.newRoot('ci');
  await must(tool, root, 'pull', `${registry.host}/bench-base:ci`);
  await must(tool, root, 'tag', `${registry.host}/bench-base:ci`, 'bench-base');
  return root;
}

async function must(tool, root, ...args) {
  const r = await run(tool.cliPath, ['--root', root, ...args]);
  if (r.code !== 0) throw new Error(`${args[0]}: ${firstLine(r.stderr) || `exit status ${r.code}`}`);
}

const median = (xs) => summarize(xs)?.median;

function report(workload, { phases, imageBytes }) {
  const lines = [
    `#### ci: ${workload} (two fresh stores, one registry)`,
    '',
    '| phase | median | min | max | runs | requests | blob GETs | blob uploads | bytes down | bytes up |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [name, p] of Object.entries(phases)) {
    const s = summarize(p.ms);
    lines.push(`| ${name} | ${formatMs(s?.median)} | ${formatMs(s?.min)} | ${formatMs(s?.max)} | ${s?.runs ?? 0} | ${median(p.requests) ?? '—'} | ${median(p.blobGets) ?? '—'} | ${median(p.blobPuts) ?? '—'} | ${bytes(median(p.down))} | ${bytes(median(p.up))} |`);
  }
  const image = median(imageBytes);
  const cold = median(phases[PHASES[0]].ms);
  const warm = median(phases[PHASES[2]].ms);
  const bDown = median(phases[PHASES[2]].down.map((d, i) => d + phases[PHASES[3]].down[i]));
  lines.push('', `Image: ${bytes(image)} compressed (layers and config). Store B downloaded ${bytes(bDown)} (build and push): ${((100 * bDown) / image).toFixed(2)}% of it.`);
  const workloadGoals = [
    { case: `ci ${workload}: B's build from the cache`, peer: "A's cold build", goal: 0.15, ratio: warm / cold },
    { case: `ci ${workload}: B's bytes downloaded (build + push)`, peer: 'the image', goal: 0.01, ratio: bDown / image },
  ];
  return { table: lines.join('\n'), workloadGoals };
}

function bytes(n) {
  if (n === undefined || Number.isNaN(n)) return '—';
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * docker-registry on a loopback port behind a proxy that counts every request and the bytes of
 * bodies each way. Clients talk to the proxy (`host`); the Host header passes through, so the
 * registry's upload Locations point back at the proxy.
 */
async function startCountingRegistry(dir, log) {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'data')}`, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'));
  const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: 'ignore' });
  const counts = { requests: 0, down: 0, up: 0, blobGets: 0, blobPuts: 0 };
  const proxy = http.createServer((req, res) => {
    counts.requests++;
    if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url)) counts.blobGets++;
    if ((req.method === 'PUT' || req.method === 'PATCH') && req.url.includes('/blobs/uploads/')) counts.blobPuts++;
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.on('data', (c) => { counts.down += c.length; });
      up.pipe(res);
    });
    upstream.on('error', (err) => { res.writeHead(502); res.end(String(err)); });
    req.on('data', (c) => { counts.up += c.length; });
    req.pipe(upstream);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${proxy.address().port}`;
  for (let tries = 0; ; tries++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (tries > 100) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  log(`ci: registry on 127.0.0.1:${port}, counting proxy on ${host}`);
  return {
    host,
    snapshot: () => ({ ...counts }),
    since: (before) => Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v - before[k]])),
    /** Compressed bytes of an image pushed as repo:tag (layers and config), read past the proxy. */
    async imageBytes(repo, tag) {
      const r = await fetch(`http://127.0.0.1:${port}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
      const m = await r.json();
      return m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
    },
    async stop() {
      const closed = new Promise((resolve) => proxy.close(resolve));
      proxy.closeAllConnections();
      await closed;
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
