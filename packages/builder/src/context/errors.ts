// Errors a user causes through the build context: each names the source or file at fault.
import { TsbuildError } from '@tsbuild/storage';

export type ContextErrorCode =
  /** The context directory or the Dockerfile is missing. */
  | 'CONTEXT_NOT_FOUND'
  /** A .dockerignore file cannot be parsed. */
  | 'BAD_IGNORE_FILE'
  /** A COPY/ADD source does not exist or is excluded by .dockerignore. */
  | 'SOURCE_NOT_FOUND'
  /** A source (or a symlink it follows) leads outside the context. */
  | 'OUTSIDE_CONTEXT'
  /** Too many symlinks while resolving a source. */
  | 'SYMLINK_LOOP'
  /** A malformed wildcard in a source or --exclude pattern. */
  | 'BAD_PATTERN'
  /** A wildcard source matched nothing and empty matches are not allowed. */
  | 'NO_MATCH'
  /** A file changed while it was being hashed. */
  | 'CHANGED_DURING_HASH';

export class ContextError extends TsbuildError {
  constructor(
    override readonly code: ContextErrorCode,
    message: string,
    /** The COPY/ADD source as written, when the error is about one. */
    readonly source?: string,
    /** The host path involved, when there is one. */
    readonly path?: string,
  ) {
    super(code, message);
  }
}
