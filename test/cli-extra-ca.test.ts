// NODE_EXTRA_CA_CERTS with the CLI run as users run it: the bin file as a program, whose sh lines start
// node without the variable (Node 20 would build its whole root store at start-up for it), while the
// registry connections still trust the file and the programs tsbuild starts still see the variable.
// The registry is docker-registry over TLS with a self-signed certificate, the file naming it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliRootWithBusybox } from './helpers/roots';
import { startRegistry, type RegistryPeer } from './peers/registry';

const { top, root } = cliRootWithBusybox('tsbuild-extra-ca-');
let registry: RegistryPeer;
let certificate: string;
let home: string;

beforeAll(async () => {
  registry = await startRegistry({ tls: true, auth: { htpasswd: { ci: 'secret' } } });
  certificate = path.join(registry.dir, 'tls.crt');
  expect(fs.existsSync(certificate)).toBe(true);
  // Credentials come from a helper, which records the environment it was started with and the one its
  // parent (tsbuild's node) was started with.
  home = path.join(top, 'home');
  const bin = path.join(home, 'bin');
  fs.mkdirSync(path.join(home, '.docker'), { recursive: true });
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ credsStore: 'tsbtest' }));
  fs.writeFileSync(
    path.join(bin, 'docker-credential-tsbtest'),
    [
      '#!/bin/sh',
      'env > "$HOME/helper.env"',
      'tr "\\0" "\\n" < /proc/$PPID/environ > "$HOME/tsbuild.env"',
      'echo \'{"Username":"ci","Secret":"secret"}\'',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
});

afterAll(async () => {
  await registry?.stop();
});

/** The CLI as a program (its sh lines), as `tsbuild` on PATH runs, with HOME and PATH for the helper. */
function tsbuild(args: string[], env: NodeJS.ProcessEnv, opts: { viaNode?: boolean } = {}) {
  const base: NodeJS.ProcessEnv = { ...process.env, HOME: home, PATH: `${path.join(home, 'bin')}:${process.env.PATH}`, ...env };
  for (const [k, v] of Object.entries(base)) if (v === undefined) delete base[k];
  const [cmd, argv] = opts.viaNode ? [process.execPath, [CLI, '--root', root, ...args]] : [CLI, ['--root', root, ...args]];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: base, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const envFile = (name: string) =>
  Object.fromEntries(
    fs
      .readFileSync(path.join(home, name), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );

describe('NODE_EXTRA_CA_CERTS', () => {
  it('trusts the file from the first connection though node started without it; programs tsbuild starts see it', () => {
    const pushed = tsbuild(['push', '--tls-verify=true', 'busybox', `${registry.host}/extra-ca:v1`], { NODE_EXTRA_CA_CERTS: certificate });
    expect(pushed.stderr).toBe('');
    expect(pushed.status).toBe(0);
    const node = envFile('tsbuild.env');
    expect(node.NODE_EXTRA_CA_CERTS).toBeUndefined();
    expect(node.TSBUILD_NODE_EXTRA_CA_CERTS).toBe(certificate);
    const helper = envFile('helper.env');
    expect(helper.NODE_EXTRA_CA_CERTS).toBe(certificate);
    expect(helper.TSBUILD_NODE_EXTRA_CA_CERTS).toBeUndefined();

    const pulled = tsbuild(['pull', '--tls-verify=true', `${registry.host}/extra-ca:v1`], { NODE_EXTRA_CA_CERTS: certificate });
    expect(pulled.stderr).toBe('');
    expect(pulled.status).toBe(0);
    // `node tsbuild.js` (no sh lines): Node loads the file itself, as before.
    const viaNode = tsbuild(['pull', '--tls-verify=true', `${registry.host}/extra-ca:v1`], { NODE_EXTRA_CA_CERTS: certificate }, { viaNode: true });
    expect(viaNode.stderr).toBe('');
    expect(viaNode.status).toBe(0);
    expect(envFile('tsbuild.env').NODE_EXTRA_CA_CERTS).toBe(certificate);
  });

  it('trusts nothing more without it, or with a file it cannot read (with Node warning)', () => {
    const untrusted = new RegExp(`^tsbuild: cannot reach registry ${registry.host}: TLS certificate not trusted .*--tls-verify=false`);
    const without = tsbuild(['pull', '--tls-verify=true', `${registry.host}/extra-ca:v1`], { NODE_EXTRA_CA_CERTS: undefined });
    expect(without.status).toBe(1);
    expect(without.stderr).toMatch(untrusted);
    const missing = path.join(top, 'no-such.crt');
    const unreadable = tsbuild(['pull', '--tls-verify=true', `${registry.host}/extra-ca:v1`], { NODE_EXTRA_CA_CERTS: missing });
    expect(unreadable.status).toBe(1);
    const [warning, error] = unreadable.stderr.split('\n');
    expect(warning).toMatch(new RegExp(`^Warning: Ignoring extra certs from \`${missing}\`, load failed: .*no such file or directory`));
    expect(error).toMatch(untrusted);
  });

  it('is left to Node when NODE_OPTIONS makes it verify with OpenSSL store', () => {
    const pulled = tsbuild(['pull', '--tls-verify=true', `${registry.host}/extra-ca:v1`], { NODE_EXTRA_CA_CERTS: certificate, NODE_OPTIONS: '--use-openssl-ca' });
    expect(pulled.stderr).toBe('');
    expect(pulled.status).toBe(0);
    const node = envFile('tsbuild.env');
    expect(node.NODE_EXTRA_CA_CERTS).toBe(certificate);
    expect(node.TSBUILD_NODE_EXTRA_CA_CERTS).toBeUndefined();
  });
});
