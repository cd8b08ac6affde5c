import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { binding, INIT_BINARY, nativeBinaries } from '@tsbuild/native';

describe('addon', () => {
  it('loads', () => {
    expect(typeof binding).toBe('object');
  });

  it('prefers the local build of a source checkout, with the init and the userns helper built alongside', () => {
    const release = path.resolve(__dirname, '..', 'build', 'Release');
    expect(nativeBinaries).toEqual({
      addon: path.join(release, 'tsbuild_native.node'),
      init: path.join(release, 'tsbuild-init'),
      userns: path.join(release, 'tsbuild-userns'),
      origin: 'local-build',
    });
    expect(INIT_BINARY).toBe(nativeBinaries.init);
    for (const helper of [INIT_BINARY, nativeBinaries.userns]) expect(fs.statSync(helper).mode & 0o111).not.toBe(0);
  });
});
