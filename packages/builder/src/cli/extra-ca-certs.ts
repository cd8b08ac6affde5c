// NODE_EXTRA_CA_CERTS without its start-up cost. Node 20 builds a certificate store from its bundled root
// certificates and that file as it starts, when the variable is set (nodejs/node#40524): 40 to 60 ms of
// every command here, where the site CA is named there, though most commands never open a TLS connection.
// The CLI's launcher (bin/tsbuild.js, its sh lines) starts node with the variable moved to
// TSBUILD_NODE_EXTRA_CA_CERTS; takeMovedExtraCaCerts puts it back for the programs tsbuild starts, and
// from the first fetch on, connections trust the bundled roots and the file, as Node would have: the
// global fetch dispatcher verifies with one secure context made of both (Node's rule: an explicit `ca`
// replaces the default roots, so both are named).
import * as fs from 'node:fs';
import type * as tls from 'node:tls';

/** Where the launcher leaves NODE_EXTRA_CA_CERTS. */
export const MOVED_EXTRA_CA_CERTS = 'TSBUILD_NODE_EXTRA_CA_CERTS';

/** NODE_OPTIONS flags that make Node verify with OpenSSL's store: the launcher moves nothing then. */
const OTHER_CA_STORE = /(^|\s)--use[-_](openssl|system)[-_]ca(\s|$)/;

/**
 * Takes the variable the launcher moved (once, before a command runs): NODE_EXTRA_CA_CERTS is set back
 * in `env` for every program tsbuild starts, and the global fetch trusts its certificates from its first
 * call on. Does nothing when the launcher moved nothing, or when Node loaded a NODE_EXTRA_CA_CERTS itself.
 */
export function takeMovedExtraCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[MOVED_EXTRA_CA_CERTS];
  if (file === undefined) return;
  delete env[MOVED_EXTRA_CA_CERTS];
  if (!file || env.NODE_EXTRA_CA_CERTS) return;
  env.NODE_EXTRA_CA_CERTS = file;
  const nodeFetch = globalThis.fetch;
  let trusted: Promise<void> | undefined;
  globalThis.fetch = function fetch(input: Parameters<typeof nodeFetch>[0], init?: Parameters<typeof nodeFetch>[1]) {
    trusted ??= trustForFetch(nodeFetch, file);
    return trusted.then(() => nodeFetch(input, init));
  } as typeof nodeFetch;
}

/**
 * The environment for another tsbuild CLI process this one starts (a `run -d` supervisor, the rootless
 * re-exec): NODE_EXTRA_CA_CERTS moved as the launcher moves it, so that node starts without the cost too.
 */
export function envForOwnCli(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const file = env.NODE_EXTRA_CA_CERTS;
  if (!file || OTHER_CA_STORE.test(env.NODE_OPTIONS ?? '')) return env;
  const moved: NodeJS.ProcessEnv = { ...env, [MOVED_EXTRA_CA_CERTS]: file };
  delete moved.NODE_EXTRA_CA_CERTS;
  return moved;
}

/** What we use of undici's Agent: its class. */
interface Dispatcher {
  constructor: new (opts: unknown) => Dispatcher;
}
type Dispatchers = Record<symbol, Dispatcher | undefined>;

/**
 * Makes the global fetch dispatcher (undici's Agent, which Node 20 does not export: the one the first fetch
 * creates gives its class) verify servers against the bundled roots and `file`. A file that cannot be
 * read or parsed is ignored with Node's warning, as Node ignores it at start-up.
 */
async function trustForFetch(nodeFetch: typeof fetch, file: string): Promise<void> {
  const key = Symbol.for('undici.globalDispatcher.1');
  const dispatchers = globalThis as unknown as Dispatchers;
  if (!dispatchers[key]) await nodeFetch('data:,').then((r) => r.arrayBuffer());
  const agent = dispatchers[key];
  if (!agent) return;
  const { rootCertificates, createSecureContext } = require('node:tls') as typeof tls;
  let secureContext: tls.SecureContext;
  try {
    secureContext = createSecureContext({ ca: [...rootCertificates, fs.readFileSync(file, 'latin1')] });
  } catch (err) {
    process.stderr.write(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}\n`);
    return;
  }
  dispatchers[key] = new agent.constructor({ connect: { secureContext } });
}
