// Process identity that survives pid reuse: "<pid>.<start time in clock ticks since boot>". Used to tell
// whether the owner of a staged directory or of a mount reference is still alive.
import * as fs from 'node:fs';

/** The process's start time, or null when it is gone (a zombie has exited: it only waits to be reaped). */
function startTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return null; // field 3: the state
    return rest[19] ?? null; // field 22 overall
  } catch {
    return null;
  }
}

let self: string | undefined;

/** This process's token. */
export function processToken(): string {
  self ??= `${process.pid}.${startTime(process.pid) ?? '0'}`;
  return self;
}

const TOKEN_RE = /^(\d+)\.(\d+)$/;

export function isProcessToken(s: string): boolean {
  return TOKEN_RE.test(s);
}

/** The token of another process, or null when it does not exist. */
export function tokenOf(pid: number): string | null {
  const start = startTime(pid);
  return start === null ? null : `${pid}.${start}`;
}

/** Whether the process a token names still runs (false for malformed tokens). */
export function isAlive(token: string): boolean {
  const m = TOKEN_RE.exec(token);
  if (!m) return false;
  return startTime(Number(m[1])) === m[2];
}

/** Name prefix for temporary entries owned by this process: `<token>-`. */
export function ownedName(suffix: string): string {
  return `${processToken()}-${suffix}`;
}

/** The owner token of a name made by ownedName, or null. */
export function ownerOf(name: string): string | null {
  const dash = name.indexOf('-');
  const token = dash < 0 ? name : name.slice(0, dash);
  return isProcessToken(token) ? token : null;
}

/** Whether a name made by ownedName belongs to a process that is gone (true for a name without owner). */
export function ownerIsGone(name: string): boolean {
  const owner = ownerOf(name);
  return !owner || !isAlive(owner);
}
