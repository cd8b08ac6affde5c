// Markdown tables for stdout and the JSON document under bench/results/.
import { formatKiB, formatMs, formatRatio } from './stats.mjs';
import { NODE_START } from './start-floor.mjs';

// What the RSS column is, printed under every table that has one.
export const RSS_NOTE = 'peak RSS: the largest of the runs\' wait4 ru_maxrss, i.e. the biggest single process among the ' +
  'command and the children it waited for (for docker and podman, the client: a daemon, conmon and what they start are not its children)';

/**
 * A case is one measured thing (e.g. "app cold") with one row per tool:
 * { tool, status: 'ok'|'error'|'n/a', message?, samples: number[], stats? }.
 */
export function caseTable(title, rows, notes = [], ratioTool = 'tsbuild') {
  const ref = rows.find((r) => r.tool === ratioTool && r.status === 'ok');
  const lines = [`#### ${title}`, '', `| tool | median | p90 | min | max | runs | ${ratioTool}/peer | peak RSS |`, '|---|---:|---:|---:|---:|---:|---:|---:|'];
  for (const row of rows) {
    if (row.status !== 'ok') {
      const cell = row.status === 'n/a' ? `n/a: ${row.message}` : `error: ${row.message}`;
      lines.push(`| ${row.tool} | ${escapeCell(cell)} | | | | ${row.samples.length} | | |`);
      continue;
    }
    const s = row.stats;
    const ratio = row.tool === ratioTool ? '—' : ref ? formatRatio(ref.stats.median / s.median) : '—';
    lines.push(`| ${row.tool} | ${formatMs(s.median)} | ${formatMs(s.p90)} | ${formatMs(s.min)} | ${formatMs(s.max)} | ${s.runs} | ${ratio} | ${formatKiB(maxRss(row))} |`);
  }
  for (const note of notes) lines.push('', note);
  return lines.join('\n');
}

/** Goal rows: { case, peer, goal (max ratio), ratio|undefined, note, nodeStartRatio? }. */
export function goalTable(title, goals) {
  const floor = goals.some((g) => g.nodeStartRatio !== undefined);
  const lines = [`#### ${title}`, '', `| case | tsbuild/peer | goal | met |${floor ? ` ${NODE_START} / peer |` : ''}`, `|---|---:|---:|:---:|${floor ? '---:|' : ''}`];
  for (const g of goals) {
    const met = g.ratio === undefined ? `— (${g.note})` : g.ratio <= g.goal ? 'yes' : 'no';
    const start = floor ? ` ${g.nodeStartRatio === undefined ? '' : formatRatio(g.nodeStartRatio)} |` : '';
    lines.push(`| ${g.case} vs ${g.peer} | ${formatRatio(g.ratio)} | ≤ ${g.goal.toFixed(2)}× | ${escapeCell(met)} |${start}`);
  }
  return lines.join('\n');
}

export function maxRss(row) {
  return row.rssKiB?.length ? Math.max(...row.rssKiB) : undefined;
}

/** tsbuild's peak RSS in every case against the issue's memory budget. */
export function rssGoalTable(cases, budgetMiB = 150) {
  const lines = [`#### tsbuild peak RSS (budget ${budgetMiB} MB)`, '', '| case | peak RSS | within |', '|---|---:|:---:|'];
  for (const c of cases) {
    const rss = maxRss(c.rows.find((r) => r.tool === 'tsbuild' && r.status === 'ok') ?? {});
    if (rss !== undefined) lines.push(`| ${escapeCell(c.title)} | ${formatKiB(rss)} | ${rss <= budgetMiB * 1024 ? 'yes' : 'no'} |`);
  }
  return lines.length > 4 ? lines.join('\n') : '';
}

/** The median ratio tsbuild/peer in a case, or a reason why there is none. */
export function ratioOf(rows, peer) {
  const ts = rows.find((r) => r.tool === 'tsbuild');
  const p = rows.find((r) => r.tool === peer);
  if (!ts || ts.status !== 'ok') return { note: `tsbuild ${ts ? ts.status : 'not run'}` };
  if (!p || p.status !== 'ok') return { note: `${peer} ${p ? p.status : 'not run'}` };
  const node = rows.find((r) => r.tool === NODE_START && r.status === 'ok');
  return { ratio: ts.stats.median / p.stats.median, ...(node ? { nodeStartRatio: node.stats.median / p.stats.median } : {}) };
}

function escapeCell(s) {
  return String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
