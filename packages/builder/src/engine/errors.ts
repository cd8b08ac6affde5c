// A build failure with a clear, user-facing message (the CLI prints it in one line, exit 1).
import { TsbuildError } from '@tsbuild/storage';

export class BuildError extends TsbuildError {
  constructor(
    message: string,
    /** The failing RUN's exit status, when there is one (docker build still exits 1). */
    readonly runExitCode?: number,
  ) {
    super('EBUILD', message);
  }
}
