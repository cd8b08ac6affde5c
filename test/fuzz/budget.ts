// The time budget of the property-based fuzz targets (fast-check). CI runs each target for a few
// seconds, about a minute for all of them; TSBUILD_FUZZ_SECONDS raises the budget per target for a
// long run (see README, "Reliability"). A target stops at its budget without failing; a counterexample
// found within it fails the test with the shrunk input and the seed to replay it.
import * as fc from 'fast-check';

/** Seconds per fuzz target: TSBUILD_FUZZ_SECONDS, else the CI default. */
export function fuzzSeconds(ciDefault: number): number {
  const v = Number(process.env.TSBUILD_FUZZ_SECONDS);
  return Number.isFinite(v) && v > 0 ? v : ciDefault;
}

/** fc.assert options: run until the budget is spent; each async run has `hangMs` before it counts as a hang. */
export function fuzzOptions(ciSeconds: number, hangMs = 10_000): fc.Parameters<unknown> {
  const seconds = fuzzSeconds(ciSeconds);
  return {
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: seconds * 1000,
    markInterruptAsFailure: false,
    timeout: hangMs,
    ...(process.env.TSBUILD_FUZZ_SEED ? { seed: Number(process.env.TSBUILD_FUZZ_SEED) } : {}),
  };
}

/** The vitest timeout for a target: its budget plus room to shrink a counterexample. */
export function fuzzTestTimeout(ciSeconds: number): number {
  return fuzzSeconds(ciSeconds) * 1000 + 120_000;
}

/**
 * Runs a property for its budget. A counterexample throws fast-check's report (the shrunk input, the
 * seed and path to replay it) with the property's own error as the cause; TSBUILD_FUZZ_REPORT=1
 * prints how many inputs were tried.
 */
export async function fuzz<T>(name: string, property: fc.IProperty<T> | fc.IAsyncProperty<T>, ciSeconds: number, hangMs?: number): Promise<number> {
  const details = await fc.check(property as fc.IAsyncProperty<T>, fuzzOptions(ciSeconds, hangMs) as fc.Parameters<T>);
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? `${name}: property failed`, { cause: details.errorInstance });
  if (process.env.TSBUILD_FUZZ_REPORT) process.stderr.write(`fuzz ${name}: ${details.numRuns} inputs, no failure\n`);
  return details.numRuns;
}
