// Running binaries of another architecture (a RUN for linux/arm64 on an amd64 host) through the
// kernel's binfmt_misc and qemu-user-static. A handler must carry the F flag: the kernel then opens
// the interpreter when the handler is registered, so it works inside a container's rootfs where
// /usr/bin/qemu-*-static does not exist. Handlers are host-wide (one kernel table), so tsbuild only
// reads the table, except for `tsbuild binfmt --install/--uninstall`, which the user asks for.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mount } from '@tsbuild/native';
import type { Platform } from '../content/types';
import { TsbuildError, userError } from '../errors';
import { formatPlatform, hostPlatform, isHostPlatform } from '../image/platform';

export const BINFMT_DIR = '/proc/sys/fs/binfmt_misc';

/** Names of the handlers `installBinfmt` registers (so `uninstallBinfmt` removes only those). */
const HANDLER_PREFIX = 'tsbuild-qemu-';

interface ElfArch {
  /** qemu's name for the architecture (qemu-<name>-static). */
  qemu: string;
  magic: string;
  mask: string;
}

// ELF header magic and mask per architecture, as qemu's binfmt configuration registers them
// (executables and shared objects of that machine, any OS ABI).
const ELF64 = 'ffffffffffffff00fffffffffffffffffeffffff';
const ELF: Record<string, ElfArch> = {
  amd64: { qemu: 'x86_64', magic: '7f454c4602010100000000000000000002003e00', mask: 'fffffffffffefe00fffffffffffffffffeffffff' },
  '386': { qemu: 'i386', magic: '7f454c4601010100000000000000000002000300', mask: 'fffffffffffefe00fffffffffffffffffeffffff' },
  arm64: { qemu: 'aarch64', magic: '7f454c460201010000000000000000000200b700', mask: ELF64 },
  arm: { qemu: 'arm', magic: '7f454c4601010100000000000000000002002800', mask: ELF64 },
  riscv64: { qemu: 'riscv64', magic: '7f454c460201010000000000000000000200f300', mask: ELF64 },
  ppc64le: { qemu: 'ppc64le', magic: '7f454c4602010100000000000000000002001500', mask: 'ffffffffffffff00fffffffffffffffffeffff00' },
  s390x: { qemu: 's390x', magic: '7f454c4602020100000000000000000000020016', mask: 'ffffffffffffff00fffffffffffffffffffeffff' },
};

export interface BinfmtHandler {
  name: string;
  enabled: boolean;
  interpreter: string;
  flags: string;
  offset: number;
  magic: Buffer;
  mask: Buffer;
}

/** How `platform`'s binaries run here: natively, through a handler, or not at all (with why). */
export type Emulation = { kind: 'native' } | { kind: 'binfmt'; handler: BinfmtHandler } | { kind: 'none'; reason: string };

/** The registered handlers (none when binfmt_misc is not mounted). */
export function binfmtHandlers(dir = BINFMT_DIR): BinfmtHandler[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: BinfmtHandler[] = [];
  for (const name of names) {
    if (name === 'register' || name === 'status') continue;
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, name), 'utf8');
    } catch {
      continue; // removed meanwhile
    }
    const field = (key: string) => text.split('\n').find((l) => l.startsWith(`${key} `))?.slice(key.length + 1).trim() ?? '';
    const flags = text.split('\n').find((l) => l.startsWith('flags:'))?.slice(6).trim() ?? '';
    out.push({
      name,
      enabled: text.startsWith('enabled'),
      interpreter: field('interpreter'),
      flags,
      offset: Number(field('offset') || '0'),
      magic: Buffer.from(field('magic'), 'hex'),
      mask: Buffer.from(field('mask'), 'hex'),
    });
  }
  return out;
}

/** Whether binfmt_misc is enabled as a whole (its status file says so). */
function binfmtEnabled(dir: string): boolean {
  try {
    return fs.readFileSync(path.join(dir, 'status'), 'utf8').trim() === 'enabled';
  } catch {
    return false;
  }
}

/** Whether a handler's magic (under its mask) matches an ELF header of `arch`. */
function handles(h: BinfmtHandler, arch: ElfArch): boolean {
  if (h.magic.length === 0) return false; // an extension handler (E), not a magic one
  const header = Buffer.from(arch.magic, 'hex');
  for (let i = 0; i < h.magic.length; i++) {
    const byte = header[h.offset + i];
    if (byte === undefined) return false;
    const m = h.mask.length > i ? h.mask[i]! : 0xff;
    if ((byte & m) !== (h.magic[i]! & m)) return false;
  }
  return true;
}

/** The enabled handlers that take `platform`'s ELF executables (with or without the F flag). */
export function binfmtHandlersFor(platform: Platform, dir = BINFMT_DIR): BinfmtHandler[] {
  const arch = ELF[platform.architecture];
  return arch ? binfmtHandlers(dir).filter((h) => h.enabled && handles(h, arch)) : [];
}

/** How this host can run `platform`'s binaries. */
export function emulationFor(platform: Platform, dir = BINFMT_DIR): Emulation {
  if (isHostPlatform(platform)) return { kind: 'native' };
  const name = formatPlatform(platform);
  if (!ELF[platform.architecture]) return { kind: 'none', reason: `tsbuild knows no emulator for ${name}` };
  if (!binfmtEnabled(dir)) return { kind: 'none', reason: `no binfmt_misc handler for ${name} (binfmt_misc is not mounted or disabled)` };
  const matching = binfmtHandlersFor(platform, dir);
  const usable = matching.find((h) => h.flags.includes('F'));
  if (usable) return { kind: 'binfmt', handler: usable };
  if (matching.length > 0) {
    return { kind: 'none', reason: `the binfmt_misc handler ${matching[0]!.name} for ${name} lacks the F flag, so its interpreter cannot be found inside a container` };
  }
  return { kind: 'none', reason: `no binfmt_misc handler for ${name} is registered` };
}

/**
 * Throws the one-line error a RUN (or `run --platform`) gets when `platform`'s binaries cannot run
 * here, naming the two ways out. `where` prefixes it (a Dockerfile line).
 */
export function requireEmulation(platform: Platform, where = '', dir = BINFMT_DIR): void {
  const e = emulationFor(platform, dir);
  if (e.kind !== 'none') return;
  throw new TsbuildError(
    'ENOEMULATION',
    `${where}cannot run ${formatPlatform(platform)} binaries on this ${formatPlatform(hostPlatform())} host: ${e.reason}; ` +
      `install emulation (apt-get install qemu-user-static, then tsbuild binfmt --install as root) ` +
      `or cross-compile in a FROM --platform=$BUILDPLATFORM stage`,
  );
}

/** Mounts binfmt_misc at its usual place when it is not mounted (root). */
async function mountBinfmt(dir: string): Promise<void> {
  if (fs.existsSync(path.join(dir, 'register'))) return;
  await mount({ source: 'binfmt_misc', target: dir, type: 'binfmt_misc', flags: ['nosuid', 'nodev', 'noexec'] });
}

/** Where qemu-user-static keeps the static emulator for an architecture, if it is installed. */
function qemuStatic(arch: ElfArch): string | undefined {
  return ['/usr/bin', '/usr/local/bin', '/usr/libexec/qemu-binfmt']
    .map((d) => path.join(d, `qemu-${arch.qemu}-static`))
    .find((p) => fs.existsSync(p));
}

export interface BinfmtInstallResult {
  /** Platforms registered now. */
  registered: string[];
  /** Platforms that already had a usable handler. */
  present: string[];
  /** Platforms with no qemu-*-static installed. */
  missing: string[];
}

/**
 * Registers an F-flag handler (`tsbuild-qemu-<arch>`) for every foreign architecture whose
 * qemu-*-static is installed and which has no usable handler yet. Host-wide, until reboot or
 * `uninstallBinfmt`. `only` limits it to some platforms.
 */
export async function installBinfmt(opts: { only?: Platform[]; dir?: string } = {}): Promise<BinfmtInstallResult> {
  const dir = opts.dir ?? BINFMT_DIR;
  await mountBinfmt(dir);
  const result: BinfmtInstallResult = { registered: [], present: [], missing: [] };
  const archs = opts.only ? opts.only.map((p) => p.architecture) : Object.keys(ELF);
  for (const architecture of archs) {
    const platform = { os: 'linux', architecture };
    const arch = ELF[architecture];
    if (isHostPlatform(platform)) continue;
    const name = formatPlatform(platform);
    if (!arch) throw userError(`tsbuild knows no emulator for ${name}`);
    if (emulationFor(platform, dir).kind === 'binfmt') {
      result.present.push(name);
      continue;
    }
    const interpreter = qemuStatic(arch);
    if (!interpreter) {
      result.missing.push(name);
      continue;
    }
    const esc = (hex: string) => hex.replace(/../g, '\\x$&');
    const line = `:${HANDLER_PREFIX}${arch.qemu}:M::${esc(arch.magic)}:${esc(arch.mask)}:${interpreter}:F`;
    fs.writeFileSync(path.join(dir, 'register'), line);
    result.registered.push(name);
  }
  return result;
}

/** Removes the handlers `installBinfmt` registered; returns their names. */
export function uninstallBinfmt(dir = BINFMT_DIR): string[] {
  const removed: string[] = [];
  for (const h of binfmtHandlers(dir)) {
    if (!h.name.startsWith(HANDLER_PREFIX)) continue;
    fs.writeFileSync(path.join(dir, h.name), '-1');
    removed.push(h.name);
  }
  return removed;
}
