import { expect } from 'vitest';

/** Runs fn, asserts that it throws, and returns the error for closer checks. */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return err as Error;
  }
  expect.unreachable('expected an error to be thrown');
  throw new Error('unreachable');
}
