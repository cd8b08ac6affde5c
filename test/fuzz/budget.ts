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
