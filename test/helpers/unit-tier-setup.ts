// The unit tier's promise is "no root": when the suite runs as root (as CI does), every unit test
// file's worker becomes nobody before its tests run, so a test that secretly needs root fails with
// EPERM here instead of passing; it belongs in the integration tier (vitest.config.mts).
import * as fs from 'node:fs';

const NOBODY = 65534;

if (process.getuid?.() === 0) {
  // nobody's passwd home: root's $HOME (docker and containers auth files) is not readable by nobody.
  process.env.HOME = '/nonexistent';
  process.setgroups?.([]);
  process.setgid?.(NOBODY);
  process.setuid?.(NOBODY);
}
const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
if (process.getuid?.() === 0 || BigInt(`0x${capEff}`) !== 0n) {
  throw new Error(`the unit tier must run without root or capabilities (uid ${process.getuid?.()}, CapEff ${capEff})`);
}
