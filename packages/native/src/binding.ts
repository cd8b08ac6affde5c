// Loads the compiled addon once and explains what to do when it cannot load.
import * as path from 'node:path';

const addonPath = path.join(__dirname, '..', 'build', 'Release', 'tsbuild_native.node');

function load(): Record<string, unknown> {
  const mod = { exports: {} as Record<string, unknown> };
  try {
    process.dlopen(mod, addonPath);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `tsbuild: cannot load the native addon at ${addonPath} (${reason}); ` +
        `rebuild it with "npm rebuild @tsbuild/native" (needs python3, make and g++)`,
    );
  }
  return mod.exports;
}

export const binding: any = load();
