// Helpers shared by the native syscall tests (mount, overlay, fsops); temp roots and their cleanup
// are test/helpers/temp.ts.
import { expect } from 'vitest';
import * as fs from 'node:fs';
import { binding } from '../src/binding';

/** Calls fn with the addon's function `name` replaced by a spy, to prove C++ was never reached. */
export function withoutNative(name: string, fn: () => void): void {
  const real = binding[name];
  let called = false;
  binding[name] = () => {
    called = true;
  };
  try {
    fn();
  } finally {
    binding[name] = real;
  }
  expect(called).toBe(false);
}

/** The /proc/self/mountinfo line of the mount at target, if any. */
export function mountLine(target: string): string | undefined {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((line) => line.split(' ')[4] === target);
}
