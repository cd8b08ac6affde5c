// `--cache-from` / `--cache-to` in buildx's syntax: `type=local,src=DIR`, `type=local,dest=DIR`,
// `type=registry,ref=REF` (a bare value is a registry ref), `mode=min|max` on exports, and
// `--cache-to type=inline` (records in the image config; read back with `--cache-from IMAGE`).
import * as path from 'node:path';
import { InvalidReferenceError, parseReference } from '@tsbuild/storage';
import type { CacheExportSpec, CacheImportSpec } from '../engine';
import { UsageError } from './errors';
import { parseCsv } from './parse';

export function parseCacheFrom(spec: string): CacheImportSpec {
  const fields = cacheFields(spec, '--cache-from');
  if (fields.type === 'inline') throw new UsageError(`--cache-from ${spec}: an inline cache is read from its image: --cache-from type=registry,ref=IMAGE`);
  if (fields.type === 'registry') {
    checkKeys(fields, ['type', 'ref'], '--cache-from', spec);
    return { type: 'registry', ref: registryRef(fields, '--cache-from', spec) };
  }
  checkKeys(fields, ['type', 'src'], '--cache-from', spec);
  if (!fields.src) throw new UsageError(`--cache-from ${spec}: src=DIR is required`);
  return { type: 'local', src: path.resolve(fields.src) };
}

export function parseCacheTo(spec: string): CacheExportSpec {
  const fields = cacheFields(spec, '--cache-to');
  const mode = fields.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`--cache-to ${spec}: unknown mode "${mode}": use min or max`);
  const ignore = fields['ignore-error'] ?? 'false';
  if (ignore !== 'true' && ignore !== 'false') throw new UsageError(`--cache-to ${spec}: ignore-error must be true or false`);
  const common = { mode: mode as 'min' | 'max', ...(ignore === 'true' ? { ignoreError: true } : {}) };
  if (fields.type === 'inline') {
    checkKeys(fields, ['type', 'mode'], '--cache-to', spec);
    if (mode !== 'min') throw new UsageError(`--cache-to ${spec}: type=inline holds the final image's steps only (mode=min); use type=registry for mode=max`);
    return { type: 'inline' };
  }
  if (fields.type === 'registry') {
    checkKeys(fields, ['type', 'ref', 'mode', 'ignore-error'], '--cache-to', spec);
    return { type: 'registry', ref: registryRef(fields, '--cache-to', spec), ...common };
  }
  checkKeys(fields, ['type', 'dest', 'mode', 'ignore-error'], '--cache-to', spec);
  if (!fields.dest) throw new UsageError(`--cache-to ${spec}: dest=DIR is required`);
  return { type: 'local', dest: path.resolve(fields.dest), ...common };
}

/** The spec's fields with its type checked; buildx takes a bare value as a registry ref. */
function cacheFields(spec: string, flag: string): Record<string, string> {
  const fields = spec.includes('=') ? parseCsv(spec, flag) : { type: 'registry', ref: spec };
  const type = (fields.type ??= 'registry');
  if (type !== 'local' && type !== 'registry' && type !== 'inline') throw new UsageError(`${flag} ${spec}: unknown cache type "${type}": use registry, local or inline`);
  return fields;
}

function registryRef(fields: Record<string, string>, flag: string, spec: string): string {
  if (!fields.ref) throw new UsageError(`${flag} ${spec}: ref=REGISTRY/REPOSITORY:TAG is required`);
  try {
    parseReference(fields.ref);
  } catch (err) {
    if (err instanceof InvalidReferenceError) throw new UsageError(`${flag} ${spec}: invalid reference "${fields.ref}": ${err.reason}`);
    throw err;
  }
  return fields.ref;
}

function checkKeys(fields: Record<string, string>, known: string[], flag: string, spec: string): void {
  const unknown = Object.keys(fields).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new UsageError(`${flag} ${spec}: unknown option ${unknown.map((k) => `"${k}"`).join(', ')} for type=${fields.type} (known: ${known.slice(1).join(', ')})`);
  }
}
