// Image references with docker's grammar (distribution/reference): [domain/]path[:tag][@digest].
// Names are normalized like docker: `app` → `docker.io/library/app:latest`; the familiar form strips
// `docker.io/` and `library/` again (`app:latest`), and is what users see and what the store writes
// into `org.opencontainers.image.ref.name`.
import { parseDigest, type Digest } from '../digest';
import { TsbuildError, shortName } from '../errors';

export const DEFAULT_DOMAIN = 'docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const NAME_TOTAL_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PORT = /^[0-9]+$/;

export interface ImageReference {
  /** Registry host[:port], e.g. `docker.io`, `localhost:5000`. */
  domain: string;
  /** Repository path, e.g. `library/app`. */
  path: string;
  tag?: string;
  digest?: Digest;
}

export class InvalidReferenceError extends TsbuildError {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super('EINVALIDREF', `invalid reference "${shortName(input)}": ${reason}`);
  }
}

function validDomain(domain: string): boolean {
  let host = domain;
  const portAt = domain.startsWith('[') ? domain.indexOf(']:') + 1 : domain.lastIndexOf(':');
  if (portAt > 0) {
    if (!PORT.test(domain.slice(portAt + 1))) return false;
    host = domain.slice(0, portAt);
  }
  if (host.startsWith('[') && host.endsWith(']')) return /^[0-9a-fA-F:.]+$/.test(host.slice(1, -1));
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/**
 * Parses and normalizes a reference. Without tag and digest, `latest` is implied unless
 * `defaultTag` is false.
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): ImageReference {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidReferenceError(String(input), 'empty name');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (err) {
      throw new InvalidReferenceError(input, (err as Error).message);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) {
      throw new InvalidReferenceError(input, `invalid tag "${tag}" (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')`);
    }
  }
  if (rest.length === 0) throw new InvalidReferenceError(input, 'empty repository name');
  if (/^[a-f0-9]{64}$/.test(rest)) {
    throw new InvalidReferenceError(input, 'a repository name cannot be a 64-character hexadecimal string (that is an image ID)');
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) {
      domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
      path = rest.slice(slash + 1);
      if (!validDomain(domain)) throw new InvalidReferenceError(input, `invalid registry host "${first}"`);
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  if (path.toLowerCase() !== path) throw new InvalidReferenceError(input, 'repository name must be lowercase');
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new InvalidReferenceError(
        input,
        component === ''
          ? 'empty path component'
          : `invalid path component "${component}" (lowercase letters and digits, separated by '.', '_', '__' or '-')`,
      );
    }
  }
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) {
    throw new InvalidReferenceError(input, `repository name longer than ${NAME_TOTAL_MAX} characters`);
  }
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = DEFAULT_TAG;
  const ref: ImageReference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `domain/path` (the repository). */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The fully qualified string: `docker.io/library/app:latest`. */
export function formatReference(ref: ImageReference): string {
  return repositoryName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '');
}

/** The repository as users type it: `app`, `myorg/app`, `quay.io/x/y`. */
export function familiarRepository(ref: ImageReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repositoryName(ref);
  const p = ref.path;
  return p.startsWith(OFFICIAL_REPO_PREFIX) && !p.slice(OFFICIAL_REPO_PREFIX.length).includes('/')
    ? p.slice(OFFICIAL_REPO_PREFIX.length)
    : p;
}

/** The familiar string: `app:latest`, `localhost:5000/app:v1`. */
export function familiarString(ref: ImageReference): string {
  return familiarRepository(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '');
}

/** Normalizes a user-typed name to the store's key form (`docker.io/library/app:latest`). */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}
