// The one error type that separates "the input or the machine is at fault" from "tsbuild has a bug".
// Anything thrown as (or converted to) a TsbuildError is reported to users in one line with exit 1 (or
// its own exitCode); anything else that escapes is an internal error (exit 125).

/** A failure caused by the user's input or the environment, with a one-line message naming the cause. */
export class TsbuildError extends Error {
  constructor(
    /** A stable code (`ENOIMAGE`, `ETARFORMAT`, an errno code such as `ENOSPC`, …). */
    readonly code: string,
    message: string,
    options?: { cause?: unknown; exitCode?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.exitCode !== undefined) this.exitCode = options.exitCode;
  }

  /** The exit code the CLI uses (1 unless a command says otherwise, e.g. 125 for `run`'s own failures as docker). */
  exitCode = 1;
}

/** A TsbuildError for a mistake in what the user asked (a bad name, a missing container, …). */
export function userError(message: string): TsbuildError {
  return new TsbuildError('EUSER', message);
}

/** errno codes that describe the machine (a full disk, a read-only mount), never a tsbuild bug. */
const ENVIRONMENT_ERRNOS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EFBIG: 'file too large',
};

/** errno codes that describe a path the user named or an archive entry (when the failing call names one). */
const PATH_ERRNOS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many levels of symbolic links',
  EACCES: 'permission denied',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
};

/** The longest name a one-line message quotes; longer ones keep their head and tail. */
const MAX_NAME_CHARS = 120;

/** `name` cut to a length that fits a one-line message: head … tail. */
export function shortName(name: string, max = MAX_NAME_CHARS): string {
  if (name.length <= max) return name;
  const keep = Math.floor((max - 1) / 2);
  return `${name.slice(0, keep)}…${name.slice(name.length - keep)}`;
}

/** A system error's one-line description: the errno's text and (unless withPath is false) the path it names, shortened. */
export function describeSystemError(err: NodeJS.ErrnoException, withPath = true): string {
  const code = err.code ?? '';
  const text = ENVIRONMENT_ERRNOS[code] ?? PATH_ERRNOS[code];
  if (!text) return shortName(err.message, 4 * MAX_NAME_CHARS);
  return withPath && err.path ? `${text}: ${shortName(String(err.path))}` : text;
}

/**
 * `err` as a TsbuildError when it is one or when it is a system error that the machine or a named path
 * explains (ENOSPC, EROFS, ENAMETOOLONG, …); undefined for anything else, which is a tsbuild bug.
 */
export function asTsbuildError(err: unknown): TsbuildError | undefined {
  if (err instanceof TsbuildError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string') return undefined;
  if (e.code in ENVIRONMENT_ERRNOS || (e.code in PATH_ERRNOS && e.path !== undefined)) {
    return new TsbuildError(e.code, describeSystemError(e), { cause: err });
  }
  // zlib's inflate errors: the compressed input is corrupt or cut short.
  if (/^Z_(DATA|BUF|NEED_DICT)_ERROR$/.test(e.code)) {
    return new TsbuildError('ECORRUPT', `corrupt or truncated compressed data (${e.message})`, { cause: err });
  }
  return undefined;
}

/** A name from the input, quoted and shortened for a one-line message. */
export function quoteName(name: string): string {
  return JSON.stringify(shortName(name));
}

/** A refused archive: its file name (shortened) and what is wrong with it. */
export function archiveError(file: string, message: string): TsbuildError {
  return new TsbuildError('EARCHIVE', `${shortName(file)}: ${message}`);
}

/**
 * `err` with a prefix naming where it happened. A TsbuildError (or an environment error) stays one,
 * with its code and exit code; anything else stays a bug, so a prefix never hides one.
 */
export function withContext(prefix: string, err: unknown): Error {
  const known = asTsbuildError(err);
  if (known) return new TsbuildError(known.code, `${prefix}: ${known.message}`, { cause: err, exitCode: known.exitCode });
  return new Error(`${prefix}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
