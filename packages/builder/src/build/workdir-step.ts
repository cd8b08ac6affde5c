// WORKDIR creates its directory (0755, root-owned, as BuildKit does) when it does not exist yet;
// components are resolved inside the rootfs, so a symlink in the image is followed as the container
// would follow it.
import * as fsp from 'node:fs/promises';
import { resolveInRoot } from '@tsbuild/storage';

export async function workdirStep(rootfs: string, workdir: string): Promise<void> {
  const host = await resolveInRoot(rootfs, workdir, { createParents: true, followFinal: true });
  const st = await fsp.stat(host).catch(() => undefined);
  if (st?.isDirectory()) return;
  if (st) throw new Error(`cannot create the working directory ${workdir}: it exists and is not a directory`);
  await fsp.mkdir(host);
  await fsp.chmod(host, 0o755);
}
