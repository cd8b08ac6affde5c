// An OCI distribution API client over Node's fetch: one registry host, its endpoint (https, or http
// for insecure registries), its authentication (Basic, or Bearer tokens per scope set) and the
// manifest and blob requests push and pull need. Errors are RegistryErrors: one line naming the
// registry, repository (and tag or digest) and the HTTP status.
import { Readable, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { sha256OfBuffer, type Digest } from '../digest';
import { MediaTypes } from '../content/types';
import { basicHeader, findCredentials, parseChallenge, type Challenge, type CredentialLookup, type Credentials } from './registry-auth';
import { TsbuildError } from '../errors';
import type { ImageReference } from '../image/reference';

export interface RegistryClientOptions extends CredentialLookup {
  /**
   * true: always verify TLS; false: HTTPS without verification, falling back to plain HTTP; unset:
   * verify, except for loopback registries (localhost, 127.0.0.0/8, ::1), which are treated as
   * insecure like docker's default.
   */
  tlsVerify?: boolean;
  /** Use these instead of looking in the auth files. */
  credentials?: Credentials;
  userAgent?: string;
}

/** A registry said no, or could not be reached. The message is one line for users. */
export class RegistryError extends TsbuildError {
  constructor(
    message: string,
    readonly status?: number,
    readonly registryCode?: string,
  ) {
    super('EREGISTRY', message);
  }
}

export const MANIFEST_ACCEPT = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList].join(', ');
/** Manifests and indexes larger than this are refused (containerd's limit). */
export const MANIFEST_MAX = 4 << 20;
/** Token responses (a JWT or two and their lifetimes) larger than this are refused. */
const TOKEN_MAX = 1 << 20;
/** Error bodies are read up to this size for their message; a larger one is ignored. */
const ERROR_BODY_MAX = 64 << 10;
const USER_AGENT = 'tsbuild';

/** The API host of a registry name: docker.io is served by registry-1.docker.io. */
export function apiHost(host: string): string {
  return host === 'docker.io' ? 'registry-1.docker.io' : host;
}

function hostname(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

export function isLoopback(host: string): boolean {
  const h = hostname(host).toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * An undici Agent that skips certificate verification. Node 20 bundles undici without exporting it;
 * the global dispatcher (created by the first fetch) is an Agent, whose class we reuse.
 */
let insecureAgent: Promise<unknown> | undefined;
function getInsecureAgent(): Promise<unknown> {
  insecureAgent ??= (async () => {
    const key = Symbol.for('undici.globalDispatcher.1');
    await fetch('data:,').then((r) => r.arrayBuffer());
    const global = (globalThis as Record<symbol, { constructor: new (opts: unknown) => unknown } | undefined>)[key];
    if (!global) throw new RegistryError('this Node has no undici dispatcher: HTTPS without certificate verification is unavailable');
    return new global.constructor({ connect: { rejectUnauthorized: false } });
  })();
  return insecureAgent;
}

interface RequestOptions {
  /** Token scopes the request needs, e.g. `repository:app:pull,push`. */
  scopes: string[];
  /** What the request is about, for errors: `host/repo:tag`. */
  subject: string;
  headers?: Record<string, string>;
  /** A Buffer can be re-sent after an authentication retry; a stream cannot. */
  body?: Buffer | Readable;
}

/** How messages name a reference: `host/path:tag` or `host/path@digest`. */
export function subjectOf(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}

export class RegistryClient {
  private endpoint: URL | undefined;
  private pinging: Promise<void> | undefined;
  private challenge: Challenge | undefined;
  private creds: Promise<Credentials | undefined> | undefined;
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(
    /** The registry as references name it: `localhost:5000`, `docker.io`. */
    readonly host: string,
    /** The repository whose credentials to use (auth files may hold per-namespace entries). */
    private readonly repository: string,
    private readonly opts: RegistryClientOptions = {},
  ) {}

  private insecureFor(url: URL): boolean {
    if (this.opts.tlsVerify === false) return true;
    return this.opts.tlsVerify === undefined && isLoopback(url.host);
  }

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.opts.credentials ? Promise.resolve(this.opts.credentials) : findCredentials(this.host, this.repository, this.opts);
    return this.creds;
  }

  /** fetch with the right TLS setting, network failures turned into one-line errors. */
  private async send(url: URL, init: RequestInit, subject: string): Promise<Response> {
    const extra: Record<string, unknown> = {};
    if (url.protocol === 'https:' && this.insecureFor(url)) extra.dispatcher = await getInsecureAgent();
    if (init.body && !Buffer.isBuffer(init.body) && typeof init.body !== 'string') extra.duplex = 'half';
    try {
      return await fetch(url, { ...init, ...extra, headers: { 'user-agent': this.opts.userAgent ?? USER_AGENT, ...(init.headers as Record<string, string>) } });
    } catch (err) {
      throw networkError(err, subject, url);
    }
  }

  /** Finds the endpoint (https, or http when insecure) and the registry's challenge, once. */
  ping(subject = `${this.host}/${this.repository}`): Promise<void> {
    this.pinging ??= this.doPing(subject).catch((err) => {
      this.pinging = undefined;
      throw err;
    });
    return this.pinging;
  }

  private async doPing(subject: string): Promise<void> {
    const host = apiHost(this.host);
    const https = new URL(`https://${host}/v2/`);
    const candidates = [https];
    if (this.insecureFor(https)) candidates.push(new URL(`http://${host}/v2/`));
    let lastError: unknown;
    for (const url of candidates) {
      let res: Response;
      try {
        res = await this.send(url, { method: 'GET' }, subject);
      } catch (err) {
        lastError = err;
        continue;
      }
      await discardBody(res);
      if (res.status === 401) {
        const ch = parseChallenge(res.headers.get('www-authenticate'));
        if (ch) {
          const { scope: _scope, ...params } = ch.params;
          this.challenge = { scheme: ch.scheme, params };
        }
      }
      else if (!res.ok) throw new RegistryError(`${this.host} is not an OCI registry: GET ${url.pathname} answered HTTP ${res.status}: ${subject}`, res.status);
      this.endpoint = new URL('/', url);
      return;
    }
    throw lastError;
  }

  private url(pathOrUrl: string): URL {
    return new URL(pathOrUrl, this.endpoint);
  }

  private async authorization(scopes: string[]): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const creds = await this.credentials();
      return creds?.username !== undefined ? basicHeader(creds) : undefined;
    }
    return `Bearer ${await this.token(scopes)}`;
  }

  private token(scopes: string[]): Promise<string> {
    const key = scopeKey(scopes);
    let t = this.tokens.get(key);
    if (!t) {
      t = this.fetchToken(key === '' ? [] : key.split(' '));
      this.tokens.set(key, t);
      t.catch(() => this.tokens.delete(key));
    }
    return t;
  }

  /** Trades credentials (or nothing, for anonymous access) for a token at the challenge's realm. */
  private async fetchToken(scopes: string[]): Promise<string> {
    const params = this.challenge!.params;
    if (!params.realm) throw new RegistryError(`${this.host} asked for a bearer token without saying where to get one (no realm)`);
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch {
      throw new RegistryError(`${this.host} named an invalid token realm ${JSON.stringify(params.realm)}`);
    }
    const creds = await this.credentials();
    let res: Response;
    const subject = `${this.host}/${this.repository}`;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: USER_AGENT });
      if (params.service) form.set('service', params.service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      res = await this.send(realm, { method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } }, subject);
    } else {
      if (params.service) realm.searchParams.set('service', params.service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (creds?.username !== undefined) headers.authorization = basicHeader(creds);
      res = await this.send(realm, { method: 'GET', headers }, subject);
    }
    if (!res.ok) {
      const detail = await errorDetail(res);
      const why =
        res.status === 401 || res.status === 403
          ? creds
            ? `the credentials for ${this.host} were rejected`
            : `authentication required and no credentials for ${this.host} are configured (~/.docker/config.json or containers auth.json)`
          : `token request to ${realm.origin}${realm.pathname} failed`;
      throw new RegistryError(`unauthorized: ${why}${detail ? ` (${detail})` : ''}: ${subject} (HTTP ${res.status})`, res.status);
    }
    const raw = await readBody(res, TOKEN_MAX);
    if (raw === null) throw new RegistryError(`the token server of ${this.host} answered with more than ${TOKEN_MAX} bytes: ${subject}`);
    let body: { token?: string; access_token?: string } = {};
    try {
      body = JSON.parse(raw.toString('utf8')) as typeof body;
    } catch {
      // not JSON: no token, said below
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`the token server of ${this.host} answered without a token: ${subject}`);
    return token;
  }

  /**
   * One API request, authenticated for `scopes`. A 401 whose challenge differs (a new scheme, more
   * scope) is retried once with fresh credentials when the body can be sent again.
   */
  async request(method: string, pathOrUrl: string, opts: RequestOptions): Promise<Response> {
    await this.ping(opts.subject);
    const url = this.url(pathOrUrl);
    let scopes = opts.scopes;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const auth = await this.authorization(scopes);
      if (auth) headers.authorization = auth;
      const res = await this.send(url, { method, headers, ...(opts.body ? { body: opts.body as unknown as NonNullable<RequestInit["body"]> } : {}), redirect: 'follow' }, opts.subject);
      const replayable = !opts.body || Buffer.isBuffer(opts.body);
      if (res.status !== 401 || attempt > 0 || !replayable) return res;
      const ch = parseChallenge(res.headers.get('www-authenticate'));
      if (!ch) return res;
      const before = this.challenge;
      // The realm and service are the registry's; a scope in the challenge is this request's.
      const { scope, ...params } = ch.params;
      this.challenge = { scheme: ch.scheme, params };
      if (ch.scheme === 'bearer') {
        if (scope) scopes = [...new Set([...scopes, ...scope.split(' ')])];
        this.tokens.delete(scopeKey(scopes)); // expired, or short of the scope: ask again
      } else if (before?.scheme === 'basic' || !(await this.credentials())) {
        return res; // Basic again, or nothing to send: the 401 stands
      }
      await discardBody(res);
    }
  }

  /** Throws the registry's answer as a RegistryError about `subject`. */
  async fail(res: Response, subject: string, what?: string): Promise<never> {
    const { code, message } = await registryErrorBody(res);
    const text = message ?? what ?? defaultStatusText(res.status);
    throw new RegistryError(`${text}: ${subject} (HTTP ${res.status})`, res.status, code);
  }

  // ---- manifests ----

  /** GETs a manifest or index by tag or digest, verified against the digest the answer claims. */
  async getManifest(repo: string, reference: string, subject: string): Promise<{ bytes: Buffer; mediaType: string; digest: Digest }> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${reference}`, {
      scopes: [`repository:${repo}:pull`],
      subject,
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!res.ok) await this.fail(res, subject, res.status === 404 ? 'manifest unknown' : undefined);
    const bytes = await readBody(res, MANIFEST_MAX);
    if (bytes === null) throw new RegistryError(`manifest is too large (over ${MANIFEST_MAX} bytes): ${subject}`);
    const digest = sha256OfBuffer(bytes);
    const claimed = reference.startsWith('sha256:') ? reference : res.headers.get('docker-content-digest');
    if (claimed && claimed !== digest) {
      throw new RegistryError(`manifest ${claimed} is corrupt: its bytes hash to ${digest}: ${subject}`);
    }
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    let mediaType = contentType;
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; schemaVersion?: number };
      if (doc.schemaVersion === 1) throw new RegistryError(`docker schema 1 manifests are not supported (push the image again with a current client): ${subject}`);
      if (doc.mediaType) mediaType = doc.mediaType;
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`the manifest is not valid JSON: ${subject}`);
    }
    return { bytes, mediaType, digest };
  }

  /** PUTs a manifest under a tag (or its digest); returns the digest the registry reports. */
  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string, subject: string): Promise<Digest> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      scopes: [`repository:${repo}:pull,push`],
      subject,
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (res.status !== 201 && !res.ok) await this.fail(res, subject);
    await discardBody(res);
    const digest = sha256OfBuffer(bytes);
    const reported = res.headers.get('docker-content-digest');
    if (reported && reported !== digest) throw new RegistryError(`the registry stored manifest ${reported}, expected ${digest}: ${subject}`);
    return digest;
  }

  // ---- blobs ----

  /** The blob's size if the repository has it, else undefined. */
  async headBlob(repo: string, digest: Digest, subject: string): Promise<number | undefined> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scopes: [`repository:${repo}:pull,push`], subject });
    if (res.status === 404) return undefined;
    if (!res.ok) await this.fail(res, subject);
    return Number(res.headers.get('content-length') ?? '0');
  }

  /** Streams a blob (follows the registry's redirects to storage). Verification is the caller's. */
  async getBlob(repo: string, digest: Digest, subject: string): Promise<Readable> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scopes: [`repository:${repo}:pull`], subject });
    if (!res.ok) await this.fail(res, subject, res.status === 404 ? 'blob unknown' : undefined);
    if (!res.body) throw new RegistryError(`empty answer for blob: ${subject}`);
    return Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>);
  }

  /**
   * Asks the registry to link a blob from another repository. Returns 'mounted', or the upload
   * location the registry opened instead (it may not support mounting or not see the source).
   */
  async mountBlob(repo: string, digest: Digest, from: string, subject: string): Promise<'mounted' | URL> {
    const q = new URLSearchParams({ mount: digest, from });
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/?${q}`, {
      scopes: [`repository:${repo}:pull,push`, `repository:${from}:pull`],
      subject,
    });
    await discardBody(res);
    if (res.status === 201) return 'mounted';
    if (res.status === 202) return this.location(res, subject);
    return this.fail(res, subject);
  }

  /** Opens an upload session. */
  async startUpload(repo: string, subject: string): Promise<URL> {
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { scopes: [`repository:${repo}:pull,push`], subject });
    await discardBody(res);
    if (res.status !== 202) await this.fail(res, subject);
    return this.location(res, subject);
  }

  private location(res: Response, subject: string): URL {
    const loc = res.headers.get('location');
    if (!loc) throw new RegistryError(`the registry opened an upload without a Location: ${subject}`);
    return this.url(loc);
  }

  /**
   * Uploads a blob into an open session: monolithic (one streamed PUT ?digest=) or, with `chunkSize`,
   * PATCHes of that many bytes and a closing PUT. `open` must yield exactly `size` bytes hashing to
   * `digest` (a verifying stream). The session is cancelled on failure.
   */
  async uploadBlob(
    repo: string,
    session: URL,
    blob: { digest: Digest; size: number; open: () => Promise<Readable> },
    opts: { chunkSize?: number; onBytes?: (n: number) => void; subject: string },
  ): Promise<void> {
    const scopes = [`repository:${repo}:pull,push`];
    let location = session;
    // A local read failure (a corrupt blob fails its digest check at the end) aborts the request;
    // that failure, not fetch's "network error", is what to report.
    let sourceError: Error | undefined;
    let source: Readable | undefined;
    let sent = 0;
    try {
      source = await blob.open();
      source.on('error', (err) => (sourceError ??= err));
      const counted = countBytes(source, (n) => {
        sent += n;
        opts.onBytes?.(n);
      });
      if (opts.chunkSize && opts.chunkSize > 0) {
        let offset = 0;
        for await (const chunk of chunks(counted, opts.chunkSize)) {
          const res = await this.request('PATCH', location.href, {
            scopes,
            subject: opts.subject,
            headers: {
              'content-type': 'application/octet-stream',
              'content-range': `${offset}-${offset + chunk.length - 1}`,
              'content-length': String(chunk.length),
            },
            body: chunk,
          });
          await discardBody(res);
          if (res.status !== 202) await this.fail(res, opts.subject);
          location = this.location(res, opts.subject);
          offset += chunk.length;
        }
        const done = new URL(location);
        done.searchParams.set('digest', blob.digest);
        const res = await this.request('PUT', done.href, { scopes, subject: opts.subject, headers: { 'content-length': '0' } });
        await discardBody(res);
        if (res.status !== 201) await this.fail(res, opts.subject);
      } else {
        const done = new URL(location);
        done.searchParams.set('digest', blob.digest);
        const res = await this.request('PUT', done.href, {
          scopes,
          subject: opts.subject,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
          body: counted,
        });
        await discardBody(res);
        if (res.status !== 201) await this.fail(res, opts.subject);
      }
    } catch (err) {
      // Every byte went out, so the registry may have answered (400, digest invalid) before the source's
      // own check at its end reported: let the source finish, so that its verdict is what we report.
      if (!sourceError && source && sent === blob.size) {
        source.resume();
        await finished(source).catch(() => undefined);
      }
      await this.request('DELETE', location.href, { scopes, subject: opts.subject }).then(discardBody, () => undefined);
      if (sourceError) throw new RegistryError(`upload aborted: ${sourceError.message}: ${opts.subject}`);
      throw err;
    }
  }
}

/**
 * A response body, read while counting: null (and the rest of the body cancelled) as soon as it
 * passes `max` bytes, so a body without Content-Length cannot make us buffer it whole.
 */
export async function readBody(res: Response, max: number): Promise<Buffer | null> {
  if (!res.body) return Buffer.alloc(0);
  const announced = Number(res.headers.get('content-length') ?? '0');
  if (announced > max) {
    await res.body.cancel().catch(() => undefined);
    return null;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks, n);
    n += value.length;
    if (n > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.length));
  }
}

/** Reads and drops a body we do not need (a small one keeps the connection reusable; a big one is cut). */
async function discardBody(res: Response): Promise<void> {
  await readBody(res, ERROR_BODY_MAX).catch(() => undefined);
}

function scopeKey(scopes: string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}

/** Passes a stream through, reporting byte counts; errors of the source propagate. */
export function countBytes(source: Readable, onBytes?: (n: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  source.on('error', (err) => counter.destroy(err));
  return source.pipe(counter);
}

/** Re-chunks a stream into Buffers of `size` bytes (the last may be shorter). */
async function* chunks(source: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const c of source as AsyncIterable<Buffer>) {
    let chunk = c;
    while (pendingBytes + chunk.length >= size) {
      const take = size - pendingBytes;
      pending.push(chunk.subarray(0, take));
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      chunk = chunk.subarray(take);
    }
    if (chunk.length > 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

async function registryErrorBody(res: Response): Promise<{ code?: string; message?: string }> {
  let text = '';
  try {
    const bytes = await readBody(res, ERROR_BODY_MAX);
    if (bytes === null) return {}; // not an error document of the API: the status says enough
    text = bytes.toString('utf8');
  } catch {
    return {};
  }
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    const e = body.errors?.[0];
    if (!e) return {};
    const words = e.code ? e.code.toLowerCase().replace(/_/g, ' ') : undefined;
    const msg = e.message?.trim();
    let message = msg || words;
    // "UNAUTHORIZED" + "authentication required" → "unauthorized: authentication required";
    // "MANIFEST_UNKNOWN" + "manifest unknown" → "manifest unknown".
    if (words && msg && !msg.toLowerCase().startsWith(words)) message = `${words}: ${msg}`;
    return { ...(e.code ? { code: e.code } : {}), ...(message ? { message } : {}) };
  } catch {
    return {};
  }
}

async function errorDetail(res: Response): Promise<string | undefined> {
  const { message } = await registryErrorBody(res);
  return message;
}

function defaultStatusText(status: number): string {
  switch (status) {
    case 401:
      return 'unauthorized: authentication required';
    case 403:
      return 'denied: requested access to the resource is denied';
    case 404:
      return 'not found';
    case 405:
      return 'unsupported: the registry does not allow this operation';
    case 429:
      return 'too many requests';
    default:
      return status >= 500 ? 'registry error' : `unexpected answer`;
  }
}

function networkError(err: unknown, subject: string, url: URL): RegistryError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? '';
  const detail = cause?.message ?? (err as Error).message;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return new RegistryError(
      `cannot reach registry ${url.host}: TLS certificate not trusted (${detail}); for a registry with a self-signed certificate use --tls-verify=false: ${subject}`,
    );
  }
  return new RegistryError(`cannot reach registry ${url.host} (${url.protocol.slice(0, -1)}): ${detail}: ${subject}`);
}
