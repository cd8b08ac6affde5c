// A build failure with a clear, user-facing message (the CLI prints it in one line, exit 1).
import { TsbuildError } from '@tsbuild/storage';
import { DockerfileExpansionError, DockerfileParseError } from '../dockerfile';

export class BuildError extends TsbuildError {
  constructor(
    message: string,
    /** The failing RUN's exit status, when there is one (docker build still exits 1). */
    readonly runExitCode?: number,
  ) {
    super('EBUILD', message);
  }
}

export function lineMessage(line: number, message: string): string {
  return `Dockerfile:${line}: ${message}`;
}

/** Runs `fn`; an error it throws becomes a build error naming the Dockerfile line. */
export function atLine<T>(line: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BuildError) throw err;
    if (err instanceof DockerfileParseError || err instanceof DockerfileExpansionError) throw new BuildError(`Dockerfile: ${err.message}`);
    throw new BuildError(lineMessage(line, (err as Error).message));
  }
}
