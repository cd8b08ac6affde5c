import { describe, it, expect } from 'vitest';
import { PlainRenderer, JsonRenderer, formatElapsed } from '../src/progress';

describe('plain progress', () => {
  it('prints BuildKit-style vertices, logs, cache hits and outcomes', () => {
    let out = '';
    const r = new PlainRenderer((t) => (out += t));
    r.handle({ type: 'step-start', vertex: 10, name: '[1/3] FROM base', time: 1000 });
    r.handle({ type: 'step-cached', vertex: 10, time: 1000 });
    r.handle({ type: 'step-start', vertex: 11, name: '[2/3] RUN echo hi', time: 2000 });
    r.handle({ type: 'step-cache-miss', vertex: 11, reason: 'no cache entry for this step', time: 2000 });
    r.handle({ type: 'step-log', vertex: 11, stream: 'stdout', data: Buffer.from('hi\nthere\n'), time: 2250 });
    r.handle({ type: 'step-done', vertex: 11, time: 2300 });
    r.handle({ type: 'step-start', vertex: 12, name: '[3/3] RUN exit 3', time: 3000 });
    r.handle({ type: 'step-error', vertex: 12, message: 'exit code: 3', time: 3100 });
    expect(out).toBe(
      [
        '#1 [1/3] FROM base',
        '#1 CACHED',
        '',
        '#2 [2/3] RUN echo hi',
        '#2 cache miss: no cache entry for this step',
        '#2 0.250 hi',
        '#2 0.250 there',
        '#2 DONE 0.3s',
        '',
        '#3 [3/3] RUN exit 3',
        '#3 ERROR: exit code: 3',
        '',
      ].join('\n'),
    );
  });

  it('formats elapsed times with 3/2/1 decimals', () => {
    expect([formatElapsed(1.23456), formatElapsed(12.3456), formatElapsed(123.456)]).toEqual(['1.235', '12.35', '123.5']);
  });

  it('json mode prints one event per line with base64 logs', () => {
    let out = '';
    const r = new JsonRenderer((t) => (out += t));
    r.handle({ type: 'step-log', vertex: 1, stream: 'stdout', data: Buffer.from('hi'), time: 5 });
    expect(JSON.parse(out.trim())).toEqual({ type: 'step-log', vertex: 1, stream: 'stdout', data: 'aGk=', time: 5 });
  });
});
