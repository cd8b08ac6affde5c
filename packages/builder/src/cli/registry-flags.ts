// Registry flags as podman spells them (--tls-verify, --authfile, --creds), shared by the commands that
// reach a registry: push and pull, and those that may fetch a lazy layer from a shared build cache
// (run, save, build). Also the one stderr line a command prints per lazy layer it fetches.
import type { Credentials, LayerFetch, RegistryClientOptions, RemoteAccess } from '@tsbuild/storage';
import { UsageError } from './errors';
import { humanSize } from './parse';

export const REGISTRY_OPTIONS = {
  'tls-verify': { type: 'string' },
  authfile: { type: 'string' },
  creds: { type: 'string' },
} as const;

export const REGISTRY_USAGE = `      --tls-verify[=BOOL]  verify the registry's TLS certificate (default: true, except for localhost
                           and 127.0.0.0/8, which may also use plain HTTP); false allows plain HTTP
      --authfile FILE      credentials file (auth.json / config.json format) to consult first
      --creds USER[:PASS]  credentials to use instead of the auth files`;

/** `--tls-verify` alone means true (podman's boolean flag); parseArgs wants a value. */
export function normalizeRegistryArgs(args: string[]): string[] {
  return args.map((a) => (a === '--tls-verify' ? '--tls-verify=true' : a));
}

export function registryOptions(values: { 'tls-verify'?: string | undefined; authfile?: string | undefined; creds?: string | undefined }): RegistryClientOptions {
  const out: { tlsVerify?: boolean; authFile?: string; credentials?: Credentials } = {};
  const tls = values['tls-verify'];
  if (tls !== undefined) {
    if (tls !== 'true' && tls !== 'false') throw new UsageError(`invalid --tls-verify value "${tls}": use true or false`);
    out.tlsVerify = tls === 'true';
  }
  if (values.authfile) out.authFile = values.authfile;
  if (values.creds !== undefined) {
    const colon = values.creds.indexOf(':');
    if (colon === 0 || values.creds === '') throw new UsageError('invalid --creds: expected USER[:PASSWORD]');
    out.credentials = colon < 0 ? { username: values.creds, password: '' } : { username: values.creds.slice(0, colon), password: values.creds.slice(colon + 1) };
  }
  return out;
}

/** `fetching layer sha256:0123456789ab… (1.2MB) from REF`: what a command says when a lazy layer moves. */
export function fetchLine(f: LayerFetch): string {
  return `fetching layer ${f.digest.slice(0, 'sha256:'.length + 12)}… (${humanSize(f.size)}) from ${f.from}`;
}

/** A command's RemoteAccess: its registry flags, and one stderr line per fetched layer unless quiet. */
export function remoteAccessOf(values: Parameters<typeof registryOptions>[0], quiet = false): RemoteAccess {
  return {
    registry: registryOptions(values),
    ...(quiet ? {} : { onFetch: (f: LayerFetch) => void process.stderr.write(`${fetchLine(f)}\n`) }),
  };
}
