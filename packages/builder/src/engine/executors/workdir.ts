// WORKDIR creates its directory, and any missing parents, when it does not exist yet: 0755, owned by
// the stage's USER as BuildKit does (llb.Mkdir with WithUser; the classic builder used root), root when
// there is no USER. Components are resolved inside the rootfs, so a symlink in the image is followed
// as the container would follow it.
import * as fsp from 'node:fs/promises';
import { resolveInRoot } from '@tsbuild/storage';
import { parseChown, type Owner } from '../../context';
import { atLine } from '../errors';
import type { LayerExecutor } from './executor';

export const workdirExecutor: LayerExecutor<'workdir', void> = {
  layer: true,
  plan(instr, ctx) {
    atLine(instr.startLine, () => ctx.state.setWorkdir(instr.path));
  },
  keyParts(step) {
    return { workdir: step.configAfter.config.WorkingDir ?? '' };
  },
  execute(step, rootfs) {
    return workdirStep(rootfs, step.configAfter.config.WorkingDir || '/', step.configBefore.config.User);
  },
  history({ instr }) {
    return `WORKDIR ${instr.path}`;
  },
};

async function workdirStep(rootfs: string, workdir: string, user?: string): Promise<void> {
  const created: string[] = [];
  const host = await resolveInRoot(rootfs, workdir, { createParents: true, followFinal: true, onCreate: (dir) => created.push(dir) });
  const st = await fsp.stat(host).catch(() => undefined);
  if (st && !st.isDirectory()) throw new Error(`cannot create the working directory ${workdir}: it exists and is not a directory`);
  if (!st) {
    await fsp.mkdir(host);
    created.push(host);
  }
  const owner = user ? await ownerOf(rootfs, user) : undefined;
  for (const dir of created) {
    if (owner) await fsp.lchown(dir, owner.uid, owner.gid);
    await fsp.chmod(dir, 0o755);
  }
}

/** USER resolved like BuildKit's file op reads it: names in the rootfs's passwd/group; unknown: root. */
async function ownerOf(rootfs: string, user: string): Promise<Owner | undefined> {
  const read = async (p: string) => fsp.readFile(await resolveInRoot(rootfs, p, { followFinal: true }), 'utf8').catch(() => undefined);
  try {
    return parseChown(user, await read('/etc/passwd'), await read('/etc/group'));
  } catch {
    return undefined;
  }
}
