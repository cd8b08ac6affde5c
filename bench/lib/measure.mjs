// One measured case: every participating tool runs the same number of rounds, interleaved (the order
// rotates each round), so all tools see the same machine state. Setup between runs is never timed.
import { run, errorLine, firstLine, settle } from './exec.mjs';
import { summarize, formatMs, formatKiB } from './stats.mjs';

/**
 * participant: {
 *   tool, unavailable?: reason (peer cannot run → "n/a"), error?: message (known failure → "error"),
 *   prepare?(i), command(i) → {cmd, args, env?, cwd?, timeoutMs?}, after?(i), tsbuild?: bool
 * }
 * Every timed command also reports its peak RSS (see run()'s `rss`). `probes` see the whole case for what
 * a command's RSS cannot show (a daemon's memory): probe.start() before the first round, probe.finish()
 * after the last returns a note printed under the table.
 */
export async function measureCase({ title, runs, participants, warmup = 0, dropCaches = false, beforeRound, probes = [], log }) {
  const rows = participants.map((p) => ({
    tool: p.tool,
    status: p.unavailable ? 'n/a' : p.error ? 'error' : 'ok',
    message: p.unavailable ?? p.error,
    samples: [],
    rssKiB: [],
  }));
  const active = () => participants.map((p, k) => ({ p, row: rows[k] })).filter(({ row }) => row.status === 'ok');

  const once = async ({ p, row }, i, timed) => {
    try {
      await p.prepare?.(i);
    } catch (err) {
      fail(row, `setup: ${err.message}`);
      return;
    }
    const spec = p.command(i);
    settle(dropCaches && timed);
    const r = await run(spec.cmd, spec.args, { ...spec, rss: timed });
    if (r.code !== 0) {
      const why = (p.tsbuild ? firstLine(r.stderr) : errorLine(r.stderr)) || errorLine(r.stdout) || `exit status ${r.code}`;
      fail(row, why);
      log(`[${title}] ${p.tool}: error: ${why}`);
      return;
    }
    if (timed) {
      row.samples.push(r.ms);
      if (r.rssKiB !== undefined) row.rssKiB.push(r.rssKiB);
      log(`[${title}] ${i + 1}/${runs} ${p.tool} ${formatMs(r.ms)}${r.rssKiB !== undefined ? ` ${formatKiB(r.rssKiB)}` : ''}`);
    }
    try {
      await p.after?.(i);
    } catch (err) {
      fail(row, `cleanup: ${err.message}`);
    }
  };

  for (let w = 0; w < warmup; w++) for (const entry of active()) await once(entry, w, false);
  for (const p of probes) await p.start?.().catch(() => {});
  for (let i = 0; i < runs; i++) {
    if (active().length === 0) break;
    await beforeRound?.(i);
    const order = rotate(active(), i);
    for (const entry of order) await once(entry, i, true);
  }
  const notes = [];
  for (const p of probes) {
    const note = await p.finish?.().catch((err) => `${p.name ?? 'probe'}: ${err.message}`);
    if (note) notes.push(note);
  }
  for (const row of rows) if (row.status === 'ok') row.stats = summarize(row.samples);
  return { title, runs, rows, notes };
}

function fail(row, message) {
  row.status = 'error';
  row.message = message;
}

function rotate(list, n) {
  if (list.length === 0) return list;
  const k = n % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/** The JSON shape of a case: raw samples plus their summary. */
export function caseJson(c) {
  return {
    title: c.title,
    runs: c.runs,
    rows: c.rows.map((r) => ({ tool: r.tool, status: r.status, message: r.message, samplesMs: r.samples.map((x) => Math.round(x * 100) / 100), stats: r.stats,
      maxRssKiB: r.rssKiB.length ? Math.max(...r.rssKiB) : undefined, rssKiB: r.rssKiB })),
    notes: c.notes,
  };
}
