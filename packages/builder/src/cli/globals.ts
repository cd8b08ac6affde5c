// Global options shared by every command: where the store lives and which driver assembles layers.
import { defaultStorageRoot } from '@tsbuild/storage';

export interface GlobalOptions {
  root: string;
  /** undefined means "overlay2 where it works, otherwise vfs with a notice". */
  storageDriver: 'overlay2' | 'vfs' | 'aufs' | undefined;
  debug: boolean;
}

export const DEFAULT_ROOT = '/var/lib/tsbuild';

export const GLOBAL_USAGE = [
  'Global options:',
  `  --root DIR               storage root (env TSBUILD_ROOT, default ${DEFAULT_ROOT}; as a user $XDG_DATA_HOME/tsbuild or ~/.local/share/tsbuild)`,
  '  --storage-driver NAME    overlay2 | vfs | aufs (env TSBUILD_STORAGE_DRIVER; default overlay2 where it works)',
  '  --debug                  print stack traces of internal errors',
].join('\n');

export function resolveGlobals(opts: { root?: string | undefined; storageDriver?: string | undefined; debug: boolean }): GlobalOptions {
  const root = opts.root ?? process.env.TSBUILD_ROOT ?? defaultStorageRoot();
  const driver = opts.storageDriver ?? process.env.TSBUILD_STORAGE_DRIVER ?? undefined;
  if (driver !== undefined && driver !== 'overlay2' && driver !== 'vfs' && driver !== 'aufs') {
    const { UsageError } = require('./errors') as typeof import('./errors');
    throw new UsageError(`unknown storage driver "${driver}": use overlay2, vfs or aufs`);
  }
  return { root, storageDriver: driver, debug: opts.debug };
}
