// The Debian base fixture's choice of apt sources: the machine's Debian stanzas for bookworm and its
// update/security suites, never a third-party repository (the image's apt must reach what the host's
// reaches, and nothing else).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostDebianSources } from '../fixtures/debian';

let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function sourcesDir(files: Record<string, string>): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-sources-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

const KEYRING = 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg';

describe('Debian base fixture: apt sources', () => {
  it('keeps the Debian stanzas for bookworm and bookworm-*, and takes the mirror from the bookworm one', () => {
    const d = sourcesDir({
      'debian.sources': [
        `Types: deb\n# a snapshot comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n${KEYRING}\n`,
        `Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main contrib\n${KEYRING}\n`,
        `Types: deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm\nComponents: main\n${KEYRING}\n`,
        `Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie\nComponents: main\n${KEYRING}\n`,
        `Enabled: no\nTypes: deb\nURIs: http://disabled.invalid/debian\nSuites: bookworm\nComponents: main\n${KEYRING}\n`,
      ].join('\n'),
      'docker.sources': 'Types: deb\nURIs: https://download.invalid/linux/debian\nSuites: bookworm\nComponents: stable\nSigned-By: /etc/apt/keyrings/docker.asc\n',
      'vendor.sources': 'Types: deb\nURIs: https://vendor.invalid/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/vendor.gpg\n',
      'nodesource.sources.disabled-by-farm': 'Types: deb\nURIs: https://node.invalid/node_20.x\nSuites: nodistro\nComponents: main\n',
    });
    const { stanzas, mirror } = hostDebianSources(d);
    expect(mirror).toBe('http://mirror.invalid/debian');
    expect(stanzas).toEqual([
      `Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n${KEYRING}`,
      `Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main contrib\n${KEYRING}`,
    ]);
  });

  it('without a bookworm stanza it says what it needs', () => {
    const d = sourcesDir({ 'other.sources': 'Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie\nComponents: main\n' });
    expect(() => hostDebianSources(d)).toThrow(/no deb822 source for bookworm in .*\*\.sources: the Debian base fixture needs the machine's apt mirror/);
  });
});
