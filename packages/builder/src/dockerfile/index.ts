// The Dockerfile front end: parse → typed instructions → per-step expansion.
export type { Directives, Heredoc, Node, ParseResult } from './ast';
export { parse, parse as parseDockerfile, MAX_LINE_BYTES } from './parser';
export { dump } from './dump';
export { DockerfileParseError, DockerfileExpansionError } from './errors';
export {
  ShellLexer,
  ShellExpansionError,
  envLookup,
  processWord,
  processWords,
  processWordWithMatches,
  type EnvSource,
  type ProcessWordResult,
  type ShellLexOptions,
} from './shell';
export {
  detectSyntax,
  findDirective,
  parseCheckDirective,
  type CheckConfig,
  type SyntaxDirective,
} from './directives';
export { parseHeredoc, chompHeredocContent } from './heredoc';
export {
  parseMountSpec,
  resolveMounts,
  type MountSpec,
  type MountType,
  type CacheSharing,
  type RunMount,
  type BindMount,
  type CacheMount,
  type TmpfsMount,
  type SecretMount,
  type SshMount,
} from './mounts';
export { parseGoDuration, ramInBytes } from './units';
export * from './instructions';
export { expandInstruction, planRun, EXPANDED_INSTRUCTIONS, type ExpansionUsage, type RunPlan } from './expand';
