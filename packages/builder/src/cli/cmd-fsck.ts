// tsbuild fsck [--repair]: checks the storage root; exit 0 when clean, 1 when it found problems.
import type { FsckReport } from '@tsbuild/storage';
import { defineCommand } from './command';
import { withStore } from './store';

const USAGE = `Usage: tsbuild fsck [--repair]

Check the storage root: every blob against its digest, every compressed layer blob against its
diff_id, images and tags, every layer's chain and diff directory, leftover mounts, work layers,
containers and cgroups. Exit status 0 when all is well, 1 when problems were found.

Options:
      --repair   remove or fix what is wrong or orphaned, and say what was done`;

const OPTIONS = { repair: { type: 'boolean' } } as const;

export const fsckCommand = defineCommand(
  { name: 'fsck', summary: 'Check the storage root (and repair it with --repair)', usage: USAGE, options: OPTIONS },
  async ({ values }, globals) => {
    // Opened without open's own clean-up, so that what crashed processes left is seen and reported.
    const report = await withStore(globals, (store) => store.fsck({ repair: values.repair === true }), { repair: false });
    process.stdout.write(formatReport(report));
    return report.problems.length > 0 ? 1 : 0;
  },
);

export function formatReport(report: FsckReport): string {
  const lines = report.problems.map((p) => `${p.kind}: ${p.message}${p.repair ? `\n  repair: ${p.repair}` : ''}`);
  for (const n of report.notes) lines.push(`note: ${n}`);
  const c = report.checked;
  const what = `${c.blobs} blobs, ${c.layerBlobs} compressed layer blobs, ${c.images} images, ${c.layers} layers, ${c.mounts} mounts`;
  const n = report.problems.length;
  lines.push(n === 0 ? `checked ${what}: no problems` : `checked ${what}: ${n} problem${n === 1 ? '' : 's'}`);
  return `${lines.join('\n')}\n`;
}
