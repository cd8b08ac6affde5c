// `--cache-from` / `--cache-to` in buildx's syntax (`type=local,src=DIR`, `type=local,dest=DIR,mode=max`).
// Only type=local is built so far; registry and inline are named in the error until they land.
import * as path from 'node:path';
import type { CacheExportSpec, CacheImportSpec } from '../engine';
import { UsageError } from './errors';
import { parseCsv } from './parse';

const NOT_YET = 'type=registry and type=inline are not supported yet: use type=local';

export function parseCacheFrom(spec: string): CacheImportSpec {
  // buildx takes a bare value as a registry ref.
  const fields = spec.includes('=') ? parseCsv(spec, '--cache-from') : { type: 'registry', ref: spec };
  const type = fields.type ?? 'registry';
  if (type !== 'local') throw new UsageError(`--cache-from ${spec}: ${type === 'registry' || type === 'inline' ? NOT_YET : `unknown cache type "${type}": use local`}`);
  checkKeys(fields, ['type', 'src'], '--cache-from', spec);
  if (!fields.src) throw new UsageError(`--cache-from ${spec}: src=DIR is required`);
  return { type: 'local', src: path.resolve(fields.src) };
}

export function parseCacheTo(spec: string): CacheExportSpec {
  const fields = spec.includes('=') ? parseCsv(spec, '--cache-to') : { type: 'registry', ref: spec };
  const type = fields.type ?? 'registry';
  if (type !== 'local') throw new UsageError(`--cache-to ${spec}: ${type === 'registry' || type === 'inline' ? NOT_YET : `unknown cache type "${type}": use local`}`);
  checkKeys(fields, ['type', 'dest', 'mode'], '--cache-to', spec);
  if (!fields.dest) throw new UsageError(`--cache-to ${spec}: dest=DIR is required`);
  const mode = fields.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`--cache-to ${spec}: unknown mode "${mode}": use min or max`);
  return { type: 'local', dest: path.resolve(fields.dest), mode };
}

function checkKeys(fields: Record<string, string>, known: string[], flag: string, spec: string): void {
  const unknown = Object.keys(fields).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new UsageError(`${flag} ${spec}: unknown option ${unknown.map((k) => `"${k}"`).join(', ')} for type=local (known: ${known.slice(1).join(', ')})`);
}
