// Errors the CLI reports in one line, with the exit code tsbuild promises: 1 build/run failure,
// 2 usage, 125 internal. Both are TsbuildErrors (the user's or the machine's fault); anything else that
// escapes is an internal error.
import { TsbuildError } from '@tsbuild/storage';

export class UsageError extends TsbuildError {
  constructor(message: string) {
    super('EUSAGE', message, { exitCode: EXIT_USAGE });
  }
}

/** A failure with a clear message and an exit code (e.g. a failing build, a container's own status). */
export class CommandError extends TsbuildError {
  constructor(message: string, exitCode = EXIT_FAILURE, options?: { cause?: unknown }) {
    super('ECOMMAND', message, { exitCode, cause: options?.cause });
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 125;
