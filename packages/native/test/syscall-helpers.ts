// Helpers shared by the native syscall tests (mount, overlay, fsops); temp roots and their cleanup
// are test/helpers/temp.ts.
import { expect } from 'vitest';
import * as fs from 'node:fs';
import { binding, type NativeBinding } from '../src/binding';

/** Calls fn with the addon's function `name` replaced by a spy, to prove C++ was never reached. */
export async function withoutNative(name: keyof NativeBinding, fn: () => void | Promise<void>): Promise<void> {
  const addon = binding as unknown as Record<string, unknown>;
  const real = addon[name];
  let called = false;
  addon[name] = () => {
    called = true;
  };
  try {
    await fn();
  } finally {
    addon[name] = real;
  }
  expect(called).toBe(false);
}

/** The /proc/self/mountinfo line of the mount at target, if any. */
export function mountLine(target: string): string | undefined {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((line) => line.split(' ')[4] === target);
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; errno?: number; syscall?: string; path?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}
