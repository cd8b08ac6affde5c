// COPY/ADD --chown and --chmod. --chown follows BuildKit (client/llb WithUser + the file op's readUser):
// `user[:group]` where each part is numeric, `root`, or a name looked up in the destination rootfs's
// /etc/passwd or /etc/group (parsed by us). A numeric user alone gives gid = uid; a named user alone
// gives that user's primary gid from passwd. Unlike BuildKit (which silently uses 0 for an unknown
// name), an unknown name is an error. --chmod accepts octal (up to 07777) or symbolic chmod(1) clauses.
import { parseGroup, parsePasswd } from '@tsbuild/storage';

export interface Owner {
  uid: number;
  gid: number;
}

const MAX_ID = 0xfffffffe; // uid_t, without (uid_t)-1 which means "unchanged"

/** A numeric id or `root`, else null (a name to look up). */
function parseId(s: string): number | null {
  if (s === 'root') return 0;
  if (!/^\+?\d+$/.test(s)) return null;
  const n = Number(s);
  return n <= MAX_ID ? n : null;
}

/**
 * Resolves a --chown value against the destination's passwd and group text (undefined when absent).
 * `''` (or `:group`) gives uid 0; `user:` gives gid 0, as BuildKit does.
 */
export function parseChown(spec: string, rootfsPasswd: string | undefined, rootfsGroup: string | undefined): Owner {
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  const owner: Owner = { uid: 0, gid: 0 };
  if (userPart !== '') {
    const id = parseId(userPart);
    if (id !== null) {
      owner.uid = id;
      owner.gid = id;
    } else {
      const u = parsePasswd(rootfsPasswd).find((e) => e.name === userPart);
      if (!u) throw new Error(`unable to find user ${userPart}: no matching entries in passwd file`);
      owner.uid = u.uid;
      owner.gid = u.gid;
    }
  }
  if (groupPart !== undefined) {
    if (groupPart === '') {
      owner.gid = 0;
    } else {
      const id = parseId(groupPart);
      if (id !== null) {
        owner.gid = id;
      } else {
        const g = parseGroup(rootfsGroup).find((e) => e.name === groupPart);
        if (!g) throw new Error(`unable to find group ${groupPart}: no matching entries in group file`);
        owner.gid = g.gid;
      }
    }
  }
  return owner;
}

/**
 * Applies a parsed --chmod to a mode. `mode` may carry file type bits (kept); `isDir` (default: from
 * the type bits) decides what `X` does.
 */
export type ChmodFn = (mode: number, isDir?: boolean) => number;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/** Parses a --chmod value: octal (replaces all 12 permission bits) or symbolic (`u+x,g-w,o=r`, `+X`). */
export function parseChmod(spec: string): ChmodFn {
  if (/^[0-9]/.test(spec)) {
    if (!/^[0-7]+$/.test(spec) || parseInt(spec, 8) > 0o7777) {
      throw new Error(`invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777`);
    }
    const bits = parseInt(spec, 8);
    return (mode) => (mode & ~0o7777) | bits;
  }
  const cmds = parseSymbolic(spec);
  return (mode, isDir) => applySymbolic(cmds, mode, isDir ?? (mode & S_IFMT) === S_IFDIR);
}

// ---- symbolic modes (chmod(1), with a umask of 0 as BuildKit applies them) ----

type Op = '+' | '-' | '=';
type Cmd =
  | { kind: '+' | '-' | 'X'; bits: number }
  | { kind: 'copy'; from: 'u' | 'g' | 'o'; op: Op; shifts: number[] };

const WHO_BITS: Readonly<Record<string, number>> = { u: 0o4700, g: 0o2070, o: 0o0007, a: 0o6777 };
const STANDARD_BITS = 0o6777;
const STICKY = 0o1000;

function syntaxError(spec: string): Error {
  return new Error(`invalid chmod parameter: '${spec}': invalid symbolic mode (expected e.g. u+x,g-w,o=r)`);
}

function parseSymbolic(spec: string): Cmd[] {
  const cmds: Cmd[] = [];
  // The effective bits for an empty "who" are everything (no umask).
  const scope = (who: number, bits: number): number => (who !== 0 ? who & bits : bits);
  const push = (op: Op, who: number, perm: number): void => {
    if (op === '=') {
      cmds.push({ kind: '-', bits: who !== 0 ? who : STANDARD_BITS });
      cmds.push({ kind: '+', bits: scope(who, perm) });
    } else {
      cmds.push({ kind: op, bits: scope(who, perm) });
    }
  };
  let i = 0;
  for (;;) {
    let who = 0;
    for (;;) {
      if (i >= spec.length) throw syntaxError(spec);
      const bits = WHO_BITS[spec[i]!];
      if (bits === undefined) break;
      who |= bits;
      i++;
    }
    // One or more actions share this clause's "who".
    for (;;) {
      const op = spec[i++];
      if (op !== '+' && op !== '-' && op !== '=') throw syntaxError(spec);
      let w = who & ~STICKY;
      let perm = 0;
      let permX = 0;
      let equalDone = false;
      const notOnlyOther = (): boolean => w === 0 || (w & ~0o007) !== 0;
      for (; i < spec.length; i++) {
        const c = spec[i];
        if (c === 'r') perm |= 0o444;
        else if (c === 'w') perm |= 0o222;
        else if (c === 'x') perm |= 0o111;
        else if (c === 'X') {
          if (op === '-') perm |= 0o111;
          else permX = 0o111;
        } else if (c === 's') {
          if (notOnlyOther()) perm |= 0o6000;
        } else if (c === 't') {
          if (notOnlyOther()) {
            w |= STICKY;
            perm |= STICKY;
          }
        } else if (c === 'u' || c === 'g' || c === 'o') {
          if (perm !== 0) {
            push(op, w, perm);
            perm = 0;
          }
          if (op === '=') equalDone = true;
          if (permX !== 0) {
            cmds.push({ kind: 'X', bits: scope(w, permX) });
            permX = 0;
          }
          const shifts = w === 0 ? [6, 3, 0] : [w & 0o400 ? 6 : -1, w & 0o040 ? 3 : -1, w & 0o004 ? 0 : -1].filter((s) => s >= 0);
          cmds.push({ kind: 'copy', from: c, op, shifts });
        } else {
          break;
        }
      }
      if (perm !== 0 || (op === '=' && !equalDone)) push(op, w, perm);
      if (permX !== 0) cmds.push({ kind: 'X', bits: scope(w, permX) });
      if (i >= spec.length) return cmds;
      if (spec[i] === ',') {
        i++;
        break;
      }
    }
  }
}

function applySymbolic(cmds: Cmd[], mode: number, isDir: boolean): number {
  const original = mode & 0o7777;
  let m = original;
  for (const c of cmds) {
    if (c.kind === '+') m |= c.bits;
    else if (c.kind === '-') m &= ~c.bits;
    else if (c.kind === 'X') {
      // X: execute only for directories or files already executable by someone.
      if ((original & 0o111) !== 0 || isDir) m |= c.bits;
    } else if (c.kind === 'copy') {
      const value = c.from === 'u' ? (m >> 6) & 7 : c.from === 'g' ? (m >> 3) & 7 : m & 7;
      const clear = c.op === '=' ? 7 : c.op === '-' ? value : 0;
      const set = c.op === '-' ? 0 : value;
      for (const shift of c.shifts) m = (m & ~(clear << shift)) | (set << shift);
    }
  }
  return (mode & ~0o7777) | (m & 0o7777);
}
