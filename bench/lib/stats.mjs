// Summaries of timing samples (milliseconds) and how they are printed.

export function summarize(samples) {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  return { runs: s.length, median: quantile(s, 0.5), p90: quantile(s, 0.9), min: s[0], max: s[s.length - 1] };
}

// Linear interpolation between closest ranks; with 1-3 samples p90 is close to the max, as it should be.
function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function formatMs(ms) {
  if (ms === undefined || Number.isNaN(ms)) return '—';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function formatRatio(r) {
  if (r === undefined || !Number.isFinite(r)) return '—';
  return `${r < 0.1 ? r.toPrecision(2) : r.toFixed(2)}×`;
}

export function formatKiB(kib) {
  if (kib === undefined || Number.isNaN(kib)) return '—';
  if (kib >= 1024 * 1024) return `${(kib / 1024 / 1024).toFixed(2)} GB`;
  return `${(kib / 1024).toFixed(kib >= 100 * 1024 ? 0 : 1)} MB`;
}
