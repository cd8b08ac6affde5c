// The error a call throws, for closer checks than toThrow gives; no error fails the test.
import { expect } from 'vitest';

/** Runs fn, asserts that it throws an Error, and returns it. */
export function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return err as Error & { code?: string };
  }
  expect.unreachable('expected an error to be thrown');
  throw new Error('unreachable');
}

/** Awaits fn and returns the error it rejects with (failing the test when it does not). */
export async function errorOf(fn: () => Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error, got none');
}
