// RUN --mount=<csv> (bk:instructions/commands_runmount.go plus the defaults
// applied in dockerfile2llb): bind, cache, tmpfs, secret and ssh mounts.

import { goQuote, parseGoBool, parseGoUint32, withSuggestion } from './gostr';
import { ramInBytes } from './units';
import { cleanPath } from '../context/paths';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING_MODES: readonly CacheSharing[] = ['shared', 'private', 'locked'];

/** `value` lowercased when it is one of `allowed`; else BuildKit's "unsupported WHAT" with the closest. */
function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  const v = value.toLowerCase() as T;
  if (!allowed.includes(v)) throw new Error(withSuggestion(`unsupported ${what} ${goQuote(value)}`, value, allowed, true));
  return v;
}
const ALL_KEYS = [
  'type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid',
  'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env',
];

/** BuildKit's instructions.Mount: the fields as written (after expansion). */
export interface MountSpec {
  type: MountType;
  from: string;
  source: string;
  target: string;
  readOnly: boolean;
  /** tmpfs size in bytes; 0 = no limit. */
  sizeLimit: number;
  /** `id=` (cache id, secret id, ssh id). */
  id: string;
  sharing?: CacheSharing;
  required: boolean;
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface BindMount {
  type: 'bind';
  /** As written; relative targets resolve against the working directory. */
  target: string;
  source: string;
  /** Stage name/index or image; '' = the build context. */
  from: string;
  /** Default true; writes are discarded either way. */
  readOnly: boolean;
}

export interface CacheMount {
  type: 'cache';
  target: string;
  /** Defaults to the cleaned target. */
  id: string;
  sharing: CacheSharing;
  /** '' = an empty directory. */
  from: string;
  source: string;
  readOnly: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export interface TmpfsMount {
  type: 'tmpfs';
  target: string;
  /** Bytes; 0 = no limit. */
  size: number;
  readOnly: boolean;
}

export interface SecretMount {
  type: 'secret';
  id: string;
  /** File path of the secret; undefined when only exposed as `env`. Default /run/secrets/<id>. */
  target?: string;
  env?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export interface SshMount {
  type: 'ssh';
  id: string;
  /** Socket path; default /run/buildkit/ssh_agent.<n> (n counts ssh mounts). */
  target: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export type RunMount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount;

/** encoding/csv rules for one record (tonistiigi/go-csvvalue). */
export function parseCsvFields(line: string): string[] {
  let rest = line;
  if (rest.endsWith('\n')) rest = rest.slice(0, rest.endsWith('\r\n') ? -2 : -1);
  if (rest === '') throw new Error('EOF');
  const fields: string[] = [];
  let pos = 0;
  for (;;) {
    if (rest === '' || rest[0] !== '"') {
      const comma = rest.indexOf(',');
      const field = comma >= 0 ? rest.slice(0, comma) : rest;
      const quote = field.indexOf('"');
      if (quote >= 0) throw new Error(`parse error on line 1, column ${pos + quote + 1}: bare " in non-quoted-field`);
      fields.push(field);
      if (comma < 0) return fields;
      rest = rest.slice(comma + 1);
      pos += comma + 1;
      continue;
    }
    // Quoted field: "" is a literal quote; the closing quote must end the field.
    rest = rest.slice(1);
    pos++;
    let field = '';
    for (;;) {
      const q = rest.indexOf('"');
      if (q < 0) throw new Error(`parse error on line 1, column ${pos + 1}: extraneous or missing " in quoted-field`);
      field += rest.slice(0, q);
      rest = rest.slice(q + 1);
      pos += q + 1;
      if (rest[0] === '"') {
        field += '"';
        rest = rest.slice(1);
        pos++;
        continue;
      }
      if (rest[0] === ',') {
        fields.push(field);
        rest = rest.slice(1);
        pos++;
        break;
      }
      if (rest === '') {
        fields.push(field);
        return fields;
      }
      throw new Error(`parse error on line 1, column ${pos}: extraneous or missing " in quoted-field`);
    }
  }
}

/**
 * Parses one `--mount` value. With `expand`, every value is expanded first
 * (BuildKit does this per step with the live env); without it only the
 * static checks run and unexpanded values are taken as written.
 */
export function parseMountSpec(spec: string, expand?: (value: string) => string): MountSpec {
  let fields: string[];
  try {
    fields = parseCsvFields(spec);
  } catch (err) {
    throw new Error(`failed to parse csv mounts: ${(err as Error).message}`);
  }
  const m: MountSpec = { type: 'bind', from: '', source: '', target: '', readOnly: false, sizeLimit: 0, id: '', required: false };
  let roAuto = true;
  const bool = (key: string, value: string): boolean => {
    const b = parseGoBool(value);
    if (b === undefined) throw new Error(`invalid value for ${key}: ${value}`);
    return b;
  };

  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') {
            m.required = true;
            continue;
          }
          throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        default:
          throw new Error(`invalid field '${field}' must be a key=value pair`);
      }
    }
    if (expand) {
      value = expand(value);
    } else if (key === 'from') {
      const dollar = value.indexOf('$');
      if (dollar !== -1 && dollar !== value.length - 1) {
        throw new Error(`'${key}' doesn't support variable expansion, define alias stage instead`);
      }
    }

    switch (key) {
      case 'type':
        m.type = oneOf(value, MOUNT_TYPES, 'mount type');
        break;
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = bool(key, value);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readOnly = !bool(key, value);
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = bool(key, value);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        try {
          m.sizeLimit = ramInBytes(value);
        } catch {
          throw new Error(`invalid value for ${key}: ${value}`);
        }
        break;
      case 'id':
        m.id = value;
        break;
      case 'sharing':
        m.sharing = oneOf(value, SHARING_MODES, 'sharing value');
        break;
      case 'mode': {
        const mode = parseGoUint32(value, 8);
        if (mode === undefined) throw new Error(`invalid value ${value} for mode`);
        m.mode = mode;
        break;
      }
      case 'uid':
      case 'gid': {
        const id = parseGoUint32(value, 10);
        if (id === undefined) throw new Error(`invalid value ${value} for ${key}`);
        m[key] = id;
        break;
      }
      case 'env':
        m.env = value;
        break;
      default:
        throw new Error(withSuggestion(`unexpected key '${key}' in '${field}'`, key, ALL_KEYS, true));
    }
  }

  if (m.type !== 'secret' && m.type !== 'ssh' && m.type !== 'cache') {
    for (const k of ['mode', 'uid', 'gid'] as const) {
      if (m[k] !== undefined) throw new Error(`${k} not allowed for ${goQuote(m.type)} type mounts`);
    }
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret') {
    if (m.from !== '') throw new Error('secret mount should not have a from');
    if (m.sharing !== undefined) throw new Error('secret mount should not define sharing');
    if (m.source === '' && m.target === '' && m.id === '') throw new Error('invalid secret mount. one of source, target required');
    if (m.source !== '' && m.id !== '') throw new Error("both source and id can't be set");
  }
  if (m.sharing !== undefined && m.type !== 'cache') throw new Error(`invalid cache sharing set for ${m.type} mount`);
  return m;
}

/**
 * The checks BuildKit makes before any expansion: the CSV must parse and
 * `from=` must not use a variable.
 */
export function checkMountSpecStatic(spec: string): void {
  let fields: string[];
  try {
    fields = parseCsvFields(spec);
  } catch (err) {
    throw new Error(`failed to parse csv mounts: ${(err as Error).message}`);
  }
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq < 0 || field.slice(0, eq).toLowerCase() !== 'from') continue;
    const value = field.slice(eq + 1);
    const dollar = value.indexOf('$');
    if (dollar !== -1 && dollar !== value.length - 1) {
      throw new Error("'from' doesn't support variable expansion, define alias stage instead");
    }
  }
}

export { cleanPath };

function baseName(p: string): string {
  if (p === '') return '.';
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Applies BuildKit's per-type defaults (cache id, secret path, ssh socket, modes). */
export function resolveMounts(specs: readonly MountSpec[]): RunMount[] {
  let sshIndex = 0;
  return specs.map((m): RunMount => {
    switch (m.type) {
      case 'bind':
        return { type: 'bind', target: m.target, source: m.source, from: m.from, readOnly: m.readOnly };
      case 'cache':
        return {
          type: 'cache',
          target: m.target,
          id: m.id !== '' ? m.id : cleanPath(m.target),
          sharing: m.sharing ?? 'shared',
          from: m.from,
          source: m.source,
          readOnly: m.readOnly,
          mode: m.mode ?? 0o755,
          uid: m.uid ?? 0,
          gid: m.gid ?? 0,
        };
      case 'tmpfs':
        return { type: 'tmpfs', target: m.target, size: m.sizeLimit, readOnly: m.readOnly };
      case 'secret': {
        let id = m.source !== '' ? m.source : m.id;
        if (id === '') {
          if (m.target === '') throw new Error('one of source, target required');
          id = baseName(m.target);
        }
        let target: string | undefined = m.target !== '' ? m.target : undefined;
        if (m.env === undefined && target === undefined) target = '/run/secrets/' + baseName(id);
        const secret: SecretMount = { type: 'secret', id, required: m.required, mode: m.mode ?? 0o400, uid: m.uid ?? 0, gid: m.gid ?? 0 };
        if (target !== undefined) secret.target = target;
        if (m.env !== undefined) secret.env = m.env;
        return secret;
      }
      case 'ssh': {
        if (m.source !== '') throw new Error('ssh does not support source');
        const index = sshIndex++;
        return {
          type: 'ssh',
          id: m.id !== '' ? m.id : 'default',
          target: m.target !== '' ? m.target : `/run/buildkit/ssh_agent.${index}`,
          required: m.required,
          mode: m.mode ?? 0o600,
          uid: m.uid ?? 0,
          gid: m.gid ?? 0,
        };
      }
    }
  });
}
