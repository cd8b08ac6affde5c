// Vitest global setup: rebuild the CLI bundle (packages/builder/scripts/bundle.js) from the compiled dist,
// so the tests that spawn bin/tsbuild.js run the bundle users run, even after a plain `tsc -b`.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');

export default function setup(): void {
  execFileSync(process.execPath, [path.join(REPO, 'packages', 'builder', 'scripts', 'bundle.js')], { stdio: 'inherit' });
}
