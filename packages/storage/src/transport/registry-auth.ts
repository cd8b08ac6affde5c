// Registry credentials and authentication challenges.
//
// Credentials come, like podman and docker find them, from (first match wins): an explicit auth file,
// $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, $XDG_CONFIG_HOME/containers/auth.json
// (~/.config/containers/auth.json), then $DOCKER_CONFIG/config.json (~/.docker/config.json). Each is
// `{"auths": {"<host>[/<namespace>]": {"auth": base64("user:pass")}}}`; docker's config.json may also
// name a credential helper (`credHelpers` per host, `credsStore` for all), run as
// `docker-credential-<name> get` with the host on stdin.
//
// Challenges are the WWW-Authenticate header of a 401: `Basic realm=...` (send the credentials), or
// `Bearer realm=...,service=...,scope=...` (trade them at the realm for a token for those scopes).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeSystemError, userError } from '../errors';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker's `identitytoken`), traded at the token realm with a POST. */
  identityToken?: string;
}

export interface CredentialLookup {
  /** An auth.json/config.json to consult before the default locations. */
  authFile?: string;
  /** The environment to read HOME, XDG_*, DOCKER_CONFIG and REGISTRY_AUTH_FILE from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The auth files to consult, in order. */
export function authFilePaths(opts: CredentialLookup = {}): string[] {
  const env = opts.env ?? process.env;
  const home = env.HOME || os.homedir();
  const out: string[] = [];
  if (opts.authFile) out.push(opts.authFile);
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) out.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'containers', 'auth.json'));
  out.push(path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json'));
  return out;
}

/** The host names a registry is known by in auth files (docker.io has several). */
function hostAliases(host: string): string[] {
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') {
    return ['docker.io', 'index.docker.io', 'registry-1.docker.io'];
  }
  return [host];
}

/**
 * How well an auths key matches `host/repository`: the key's length for a match (a longer
 * `host/namespace` key is more specific), -1 otherwise. Keys with a scheme (`https://host/v1/`) name
 * the host only.
 */
function keyMatch(key: string, hosts: string[], repository: string): number {
  let k = key;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(k);
  if (scheme) {
    k = k.slice(scheme[0].length);
    const slash = k.indexOf('/');
    if (slash >= 0) k = k.slice(0, slash);
  }
  k = k.replace(/\/+$/, '');
  for (const h of hosts) {
    if (k === h) return k.length;
    const full = `${h}/${repository}`;
    if (full === k || full.startsWith(`${k}/`)) return k.length;
  }
  return -1;
}

function decodeEntry(entry: AuthEntry, file: string, key: string): Credentials | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken, ...(entry.username ? { username: entry.username } : {}) };
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) throw userError(`${file}: the "auth" of ${key} is not base64 of "user:password"`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

function readAuthFile(file: string): AuthFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw userError(`cannot read ${file}: ${describeSystemError(err as NodeJS.ErrnoException)}`);
  }
  try {
    const parsed = JSON.parse(text) as AuthFile;
    return parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch (err) {
    throw userError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The credentials for `host` (`localhost:5000`, `docker.io`) and repository path, if any are configured. */
export async function findCredentials(host: string, repository: string, opts: CredentialLookup = {}): Promise<Credentials | undefined> {
  const hosts = hostAliases(host);
  for (const file of authFilePaths(opts)) {
    const parsed = readAuthFile(file);
    if (!parsed) continue;
    let best: { score: number; key: string; entry: AuthEntry } | undefined;
    for (const [key, entry] of Object.entries(parsed.auths ?? {})) {
      const score = keyMatch(key, hosts, repository);
      if (score >= 0 && entry && (!best || score > best.score)) best = { score, key, entry };
    }
    if (best) {
      const creds = decodeEntry(best.entry, file, best.key);
      if (creds) return creds;
    }
    const helper = hosts.map((h) => parsed.credHelpers?.[h]).find(Boolean) ?? parsed.credsStore;
    if (helper) {
      const creds = await fromHelper(helper, host, opts.env ?? process.env);
      if (creds) return creds;
    }
  }
  return undefined;
}

/** Runs `docker-credential-<helper> get`; "credentials not found" is not an error. */
function fromHelper(helper: string, host: string, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = execFile(program, ['get'], { env, timeout: 30_000 }, (err, stdout) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(userError(`credential helper ${program} (configured for ${host}) is not installed`));
        } else if (/credentials not found/i.test(stdout) || /credentials not found/i.test(String((err as { stderr?: string }).stderr ?? ''))) {
          resolve(undefined);
        } else {
          reject(userError(`credential helper ${program} failed for ${host}: ${stdout.trim() || err.message}`));
        }
        return;
      }
      try {
        const r = JSON.parse(stdout) as { Username?: string; Secret?: string };
        if (!r.Secret) resolve(undefined);
        else if (r.Username === '<token>') resolve({ identityToken: r.Secret });
        else resolve({ username: r.Username ?? '', password: r.Secret });
      } catch {
        reject(userError(`credential helper ${program} printed something that is not JSON for ${host}`));
      }
    });
    child.stdin?.end(host === 'docker.io' ? 'https://index.docker.io/v1/' : host);
  });
}

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header; the first Bearer or Basic challenge wins. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const re = /\s*([A-Za-z][\w-]*)\s*/y;
  const challenges: Challenge[] = [];
  let pos = 0;
  let current: { scheme: string; params: Record<string, string> } | undefined;
  while (pos < header.length) {
    re.lastIndex = pos;
    const word = re.exec(header);
    if (!word) break;
    pos = re.lastIndex;
    if (header[pos] === '=') {
      // A parameter of the current challenge: token or quoted-string.
      pos++;
      let value = '';
      if (header[pos] === '"') {
        pos++;
        while (pos < header.length && header[pos] !== '"') {
          if (header[pos] === '\\' && pos + 1 < header.length) pos++;
          value += header[pos++];
        }
        pos++;
      } else {
        const end = header.indexOf(',', pos);
        value = (end < 0 ? header.slice(pos) : header.slice(pos, end)).trim();
        pos = end < 0 ? header.length : end;
      }
      if (current) current.params[word[1]!.toLowerCase()] = value;
    } else {
      current = { scheme: word[1]!.toLowerCase(), params: {} };
      challenges.push(current as Challenge);
    }
    while (pos < header.length && /[\s,]/.test(header[pos]!)) pos++;
  }
  return challenges.find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
}

export function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username ?? ''}:${creds.password ?? ''}`).toString('base64')}`;
}

export { userError } from '../errors';
