// Opening the storage root for a command: checks root first (one line instead of an EPERM deep in a
// syscall) and prints the driver notice once.
import { ROOT_REQUIRED_MESSAGE, Store } from '@tsbuild/storage';
import { CommandError } from './errors';
import type { GlobalOptions } from './globals';

export function requireRoot(): void {
  if (typeof process.geteuid === 'function' && process.geteuid() !== 0) throw new CommandError(ROOT_REQUIRED_MESSAGE);
}

export async function openStore(globals: GlobalOptions, opts: { repair?: boolean } = {}): Promise<Store> {
  requireRoot();
  return Store.open(globals.root, {
    ...(globals.storageDriver ? { driver: globals.storageDriver } : {}),
    ...(opts.repair === false ? { repair: false } : {}),
    onNotice: (message) => process.stderr.write(`tsbuild: ${message}\n`),
  });
}

/** Runs `fn` with an open store and always closes it (unmounting what this process mounted). */
export async function withStore<T>(globals: GlobalOptions, fn: (store: Store) => Promise<T>, opts: { repair?: boolean } = {}): Promise<T> {
  const store = await openStore(globals, opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
