// A throwaway `docker-registry` (Debian's build of the CNCF distribution server) on 127.0.0.1 for
// tests: its own temp dir (config, filesystem storage, certificates), a free port, plain HTTP or TLS
// with a self-signed certificate, and optionally authentication:
// - htpasswd: Basic auth against bcrypt hashes. apache2-utils' htpasswd is not installed here; the
//   hashes come from perl's crypt(), which on Debian 12 is libxcrypt and does bcrypt ($2b$).
// - token: Bearer tokens from a small token server in this process (the distribution token spec:
//   Basic credentials in, an ES256 JWT with the granted `access` out, its certificate in the x5c
//   header, trusted through the registry's rootcertbundle).
// The registry's access log is kept, so tests can count the requests it served.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RegistryPeerOptions {
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1. */
  tls?: boolean;
  auth?: { htpasswd: Record<string, string> } | { token: { users: Record<string, string>; refreshTokens?: Record<string, string> } };
}

export interface AccessEntry {
  method: string;
  path: string;
  status: number;
}

export interface RegistryPeer {
  /** `127.0.0.1:<port>`, as image references name it. */
  host: string;
  port: number;
  dir: string;
  /** The registry's output so far (access log and errors). */
  output(): string;
  /** Requests served so far, in order. */
  requests(): AccessEntry[];
  /** Waits (up to 10 s) until a served request satisfies `pred`; the access log line comes after the response. */
  waitFor(pred: (e: AccessEntry) => boolean, from?: number): Promise<void>;
  /**
   * The requests served so far, once the log holds every request answered before the call: a marker
   * request is sent and awaited in the log (lines come after responses), so counts are complete.
   */
  settledRequests(): Promise<AccessEntry[]>;
  /** Requests the token server was asked for (token auth only): the scopes of each. */
  tokenRequests: string[][];
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A bcrypt hash (cost 5: fast, and the registry accepts any cost) through perl's crypt(). */
export function bcrypt(password: string): string {
  const bytes = crypto.randomBytes(22);
  // 22 salt characters; the last one carries only 2 bits, so it is one of ".Oeu".
  let salt = '';
  for (let i = 0; i < 21; i++) salt += BCRYPT_ALPHABET[bytes[i]! % 64];
  salt += '.Oeu'[bytes[21]! % 4];
  const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`], { encoding: 'utf8' });
  if (!hash.startsWith('$2b$05$') || hash.length !== 60) throw new Error(`perl crypt() did not produce a bcrypt hash (got ${JSON.stringify(hash)}); libxcrypt is needed`);
  return hash;
}

/** A self-signed P-256 certificate for 127.0.0.1 (TLS and token signing). */
function makeCert(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=tsbuild-test-${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'pipe' });
  return { cert, key };
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** The token server: grants every requested action to a user with the right password. */
function startTokenServer(
  opts: { users: Record<string, string>; refreshTokens?: Record<string, string> },
  signer: { cert: string; key: string },
  service: string,
  issuer: string,
  log: string[][],
): Promise<{ server: http.Server; port: number }> {
  const der = new crypto.X509Certificate(fs.readFileSync(signer.cert)).raw.toString('base64');
  const key = crypto.createPrivateKey(fs.readFileSync(signer.key));
  const issue = (subject: string, scopes: string[]) => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map((s) => {
      const parts = s.split(':');
      return { type: parts[0], name: parts.slice(1, -1).join(':'), actions: parts[parts.length - 1]!.split(',') };
    });
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [der] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: subject, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomBytes(8).toString('hex'), access }));
    const sig = crypto.sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
    return `${header}.${claims}.${b64url(sig)}`;
  };
  const deny = (res: http.ServerResponse, message: string) => {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message }] }));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST') {
        // OAuth2 refresh-token grant (docker's identitytoken).
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const user = Object.entries(opts.refreshTokens ?? {}).find(([, t]) => t === form.get('refresh_token'))?.[0];
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        log.push(scopes);
        if (!user || form.get('grant_type') !== 'refresh_token') return deny(res, 'invalid refresh token');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: issue(user, scopes), expires_in: 300 }));
        return;
      }
      const scopes = url.searchParams.getAll('scope');
      log.push(scopes);
      const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
      if (!m) return deny(res, 'authentication required');
      const text = Buffer.from(m[1]!, 'base64').toString('utf8');
      const colon = text.indexOf(':');
      const user = text.slice(0, colon);
      if (colon < 0 || opts.users[user] === undefined || opts.users[user] !== text.slice(colon + 1)) return deny(res, 'incorrect username or password');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: issue(user, scopes), expires_in: 300 }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port }));
  });
}

function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`));
        return;
      }
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`docker-registry did not listen on 127.0.0.1:${port} within 15 s:\n${output()}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startRegistry(opts: RegistryPeerOptions = {}): Promise<RegistryPeer> {
  if (!fs.existsSync(REGISTRY_BIN)) throw new Error(`registry tests need ${REGISTRY_BIN}: apt-get install docker-registry`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-registry-'));
  let child: ChildProcess | undefined;
  let tokenServer: http.Server | undefined;
  const tokenRequests: string[][] = [];
  let out = '';
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child!.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (tokenServer) await new Promise((r) => tokenServer!.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const lines = [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
    ];
    if (opts.tls) {
      const { cert, key } = makeCert(dir, 'tls');
      lines.push('  tls:', `    certificate: ${cert}`, `    key: ${key}`);
    }
    if (opts.auth && 'htpasswd' in opts.auth) {
      const file = path.join(dir, 'htpasswd');
      fs.writeFileSync(file, Object.entries(opts.auth.htpasswd).map(([u, p]) => `${u}:${bcrypt(p)}\n`).join(''));
      lines.push('auth:', '  htpasswd:', '    realm: tsbuild-test', `    path: ${file}`);
    } else if (opts.auth && 'token' in opts.auth) {
      const signer = makeCert(dir, 'token');
      const service = 'tsbuild-test-registry';
      const issuer = 'tsbuild-test-issuer';
      const started = await startTokenServer(opts.auth.token, signer, service, issuer, tokenRequests);
      tokenServer = started.server;
      lines.push('auth:', '  token:', `    realm: http://127.0.0.1:${started.port}/token`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${signer.cert}`);
    }
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(config, `${lines.join('\n')}\n`);
    child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    await waitForPort(port, child, () => out);
    let settles = 0;
    const waitFor = async (pred: (e: AccessEntry) => boolean, from = 0) => {
      const deadline = Date.now() + 10_000;
      while (!requests().slice(from).some(pred)) {
        if (Date.now() > deadline) throw new Error(`the registry did not log the expected request; its log:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const requests = (): AccessEntry[] => {
      const entries: AccessEntry[] = [];
      for (const m of out.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) /g)) entries.push({ method: m[1]!, path: m[2]!, status: Number(m[3]) });
      return entries;
    };
    return {
      host: `127.0.0.1:${port}`,
      port,
      dir,
      output: () => out,
      requests,
      tokenRequests,
      waitFor,
      async settledRequests() {
        const marker = `/v2/?settle=${++settles}`;
        await (await fetch(`http://127.0.0.1:${port}${marker}`)).arrayBuffer();
        await waitFor((e) => e.path === marker);
        return requests().filter((e) => !e.path.startsWith('/v2/?settle='));
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
