/**
 * The Dockerfile front end, build context, the build orchestrator and the CLI.
 *
 * @packageDocumentation
 * @module @tsbuild/builder
 */
export * from './dockerfile';
export * from './context';
export * from './progress';
export * from './engine';
