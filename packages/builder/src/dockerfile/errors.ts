import { TsbuildError } from '@tsbuild/storage';

/**
 * A Dockerfile the user wrote cannot be parsed or typed. The message reads
 * `dockerfile parse error on line N: <detail>` with N the 1-based first line
 * of the offending instruction (or the offending line).
 */
export class DockerfileParseError extends TsbuildError {
  constructor(
    /** The 1-based line the error is reported on. */
    readonly line: number,
    /** The message without the location prefix. */
    readonly detail: string,
    /** The 1-based last line of the offending instruction, when known. */
    readonly endLine: number = line,
  ) {
    super('EDOCKERFILE', `dockerfile parse error on line ${line}: ${detail}`);
  }
}

/**
 * Expanding an instruction with the live build environment failed, e.g.
 * `${VAR:?}` on an unset VAR or a bad `--mount` value after expansion.
 */
export class DockerfileExpansionError extends TsbuildError {
  constructor(
    readonly startLine: number,
    readonly endLine: number,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super('EDOCKERFILE', detail, options);
  }
}
