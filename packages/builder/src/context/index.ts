// The build context: .dockerignore, COPY/ADD source resolution, content hashes, --chown/--chmod, USER.
export { BuildContext } from './context';
export type { CopyItem, OpenOptions, ResolveOptions, SourceEntry, WalkOptions } from './context';
export type { ContextEntry, EntryType } from './entry';
export { ContextError } from './errors';
export type { ContextErrorCode } from './errors';
export { BadPatternError, filepathMatch, hasMeta, validatePattern } from './filepath-match';
export { matchesOrParentMatches, Pattern, PatternMatcher, readDockerignore } from './patternmatcher';
export type { MatchType } from './patternmatcher';
export { hashSources, sha256File } from './hash';
export type { HashOptions, HashResult } from './hash';
export { RACY_WINDOW_NS, StatCache } from './statcache';
export type { StatTuple } from './statcache';
export { defaultXattrReader, xattrCounts } from './xattrs';
export type { XattrReader } from './xattrs';
export { parseChmod, parseChown } from './chown';
export type { ChmodFn, Owner } from './chown';
export { SYNC_IO_MAX, timeSlicer } from './slices';
