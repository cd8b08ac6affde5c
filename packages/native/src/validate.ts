// Argument checks shared by the native wrappers: every bad argument becomes a TypeError naming the
// function and the argument, before any syscall runs, so C++ only ever sees clean values.

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

export function fail(fn: string, what: string, expected: string, value: unknown): never {
  throw new TypeError(`${fn}: ${what} must be ${expected} (got ${describe(value)})`);
}

/** A non-empty string without NUL bytes (paths, names, fs types). */
export function checkString(fn: string, what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    fail(fn, what, 'a non-empty string without NUL bytes', value);
  }
  return value;
}

export const checkPath = checkString;

/** A path as a string or as its bytes (a Buffer: Linux names need not be UTF-8), non-empty, without NUL. */
export function checkFsPath(fn: string, what: string, value: unknown): string | Buffer {
  if (Buffer.isBuffer(value)) {
    if (value.length === 0 || value.includes(0)) fail(fn, what, 'a non-empty path without NUL bytes', `${value.length} bytes`);
    return value;
  }
  return checkString(fn, what, value);
}

/** Like checkString, but undefined passes through (optional syscall arguments become null). */
export function checkOptionalString(fn: string, what: string, value: unknown): string | null {
  return value === undefined ? null : checkString(fn, what, value);
}

/** A string of at most `max` UTF-8 bytes (kernel name limits). */
export function checkMaxBytes(fn: string, what: string, value: string, max: number): string {
  const bytes = Buffer.byteLength(value);
  if (bytes > max) fail(fn, what, `at most ${max} bytes long (it is ${bytes} bytes)`, value);
  return value;
}

export function checkInteger(fn: string, what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(fn, what, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** A file descriptor number. */
export function checkFd(fn: string, what: string, value: unknown): number {
  return checkInteger(fn, what, value, 0, 0x7fffffff);
}

export function checkObject(fn: string, what: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(fn, what, 'an object', value);
  return value as Record<string, unknown>;
}

export function checkOptionalObject(fn: string, what: string, value: unknown): Record<string, unknown> {
  return value === undefined ? {} : checkObject(fn, what, value);
}

export function checkArray(fn: string, what: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) fail(fn, what, 'an array', value);
  return value;
}

export function checkOptionalBoolean(fn: string, what: string, value: unknown): boolean {
  if (value !== undefined && typeof value !== 'boolean') fail(fn, what, 'a boolean', value);
  return value === true;
}

/** One name out of a table; returns the table's value for it. */
export function checkName<T>(fn: string, what: string, value: unknown, table: Readonly<Record<string, T>>): T {
  if (typeof value !== 'string' || !Object.hasOwn(table, value)) {
    fail(fn, what, `one of ${Object.keys(table).map((k) => `'${k}'`).join(', ')}`, value);
  }
  return table[value] as T; // hasOwn checked above
}

/** An optional array of flag names, OR-ed into one number through `table`. */
export function flagBits(fn: string, what: string, value: unknown, table: Readonly<Record<string, number>>): number {
  if (value === undefined) return 0;
  let bits = 0;
  for (const name of checkArray(fn, what, value)) bits |= checkName(fn, `each of ${what}`, name, table);
  return bits >>> 0;
}
