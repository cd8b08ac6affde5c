import { describe, it, expect } from 'vitest';
import { binding } from '@tsbuild/native';

describe('addon', () => {
  it('loads', () => {
    expect(typeof binding).toBe('object');
  });
});
