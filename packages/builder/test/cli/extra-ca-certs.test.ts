// cli/extra-ca-certs.ts: the environment of the tsbuild processes the CLI starts itself. The launcher
// and the trust from the first fetch are tested end to end in test/cli-extra-ca.test.ts.
import { describe, expect, it } from 'vitest';
import { envForOwnCli, MOVED_EXTRA_CA_CERTS } from '../../src/cli/extra-ca-certs';

describe('envForOwnCli', () => {
  it('moves NODE_EXTRA_CA_CERTS aside as the launcher does, leaving the caller its environment', () => {
    const env = { PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/site-ca.pem' };
    expect(envForOwnCli(env)).toEqual({ PATH: '/bin', [MOVED_EXTRA_CA_CERTS]: '/etc/site-ca.pem' });
    expect(env).toEqual({ PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/site-ca.pem' });
  });

  it('moves nothing when it is unset or empty, or when NODE_OPTIONS makes Node use OpenSSL store', () => {
    for (const env of [
      { PATH: '/bin' },
      { PATH: '/bin', NODE_EXTRA_CA_CERTS: '' },
      { NODE_EXTRA_CA_CERTS: '/ca.pem', NODE_OPTIONS: '--use-openssl-ca' },
      { NODE_EXTRA_CA_CERTS: '/ca.pem', NODE_OPTIONS: '--max-old-space-size=100 --use_openssl_ca' },
      { NODE_EXTRA_CA_CERTS: '/ca.pem', NODE_OPTIONS: '--use-system-ca --trace-warnings' },
    ]) {
      expect(envForOwnCli(env)).toBe(env);
    }
    expect(envForOwnCli({ NODE_EXTRA_CA_CERTS: '/ca.pem', NODE_OPTIONS: '--use-openssl-ca-not' })).toEqual({ NODE_OPTIONS: '--use-openssl-ca-not', [MOVED_EXTRA_CA_CERTS]: '/ca.pem' });
  });
});
