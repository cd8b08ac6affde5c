// The overlay probe runs once per root, kernel and filesystem; later opens read its record.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { probeOverlay } from '../../src/drivers';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

function freshRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-probe-'));
  roots.push(root);
  return root;
}

it('records a passed probe in the root', () => {
  const root = freshRoot();
  expect(probeOverlay(root).supported).toBe(true);
  const record = JSON.parse(fs.readFileSync(path.join(root, '.overlay-probe.json'), 'utf8'));
  expect(record.identity).toBe(`${os.release()} ${fs.statSync(root).dev}`);
  expect(record.probe.supported).toBe(true);
});

it('trusts a record for this kernel and filesystem, and probes again for another', () => {
  const identity = (root: string) => `${os.release()} ${fs.statSync(root).dev}`;
  const recorded = { supported: true, fsType: 'recorded', indexParam: false, metacopyParam: false, lowerdirPlus: false };

  const same = freshRoot();
  fs.writeFileSync(path.join(same, '.overlay-probe.json'), JSON.stringify({ identity: identity(same), probe: recorded }));
  expect(probeOverlay(same).fsType).toBe('recorded');

  const other = freshRoot();
  fs.writeFileSync(path.join(other, '.overlay-probe.json'), JSON.stringify({ identity: 'another-kernel 1', probe: recorded }));
  const probed = probeOverlay(other);
  expect(probed.fsType).not.toBe('recorded');
  expect(JSON.parse(fs.readFileSync(path.join(other, '.overlay-probe.json'), 'utf8')).identity).toBe(identity(other));
});
