// A build failure with a clear, user-facing message (the CLI prints it in one line, exit 1).
export class BuildError extends Error {
  override name = 'BuildError';
  readonly userFacing = true;
  constructor(
    message: string,
    /** The failing RUN's exit status, when there is one (docker build still exits 1). */
    readonly runExitCode?: number,
  ) {
    super(message);
  }
  get exitCode(): number {
    return 1;
  }
}
