// Errors the CLI reports in one line, with the exit code tsbuild promises: 1 build/run failure,
// 2 usage, 125 internal. Anything else that escapes is an internal error.

export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure with a clear message and an exit code (e.g. a failing build, a container's own status). */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 125;
