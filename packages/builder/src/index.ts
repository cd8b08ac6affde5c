// @tsbuild/builder: the Dockerfile front end, build context, the build orchestrator and the CLI.
export * from './dockerfile';
export * from './context';
export * from './progress';
export * from './build';
