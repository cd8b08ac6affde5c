// Size limits on what a registry sends, enforced while the body streams (issue 9, defect 6): a
// hostile server on 127.0.0.1 answers with endless chunked bodies (no Content-Length) and counts
// what it managed to send before the client hung up.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256OfBuffer } from '../src/digest';
import { TsbuildError } from '../src/errors';
import { ImageStore } from '../src/image';
import { pullImage } from '../src/transport';
import { recordingImporter } from '../../../test/helpers/images';

/** Far more than any limit, far less than the 600 MiB of the report: the server gives up here. */
const ENDLESS = 256 << 20;
/** What a limit of a few MiB may let through: the limit plus socket and stream buffers. */
const BOUND = 32 << 20;

type Route = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

interface Hostile {
  host: string;
  /** Bytes the server wrote into each endless body, by request path. */
  sent: Map<string, number>;
  requested: string[];
  close(): Promise<void>;
}

/** Streams `ENDLESS` bytes of JSON-ish filler, chunked, until the client goes away. */
function endless(req: http.IncomingMessage, res: http.ServerResponse, status: number, sent: Map<string, number>, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  const chunk = Buffer.alloc(64 << 10, 0x20);
  let n = 0;
  sent.set(req.url!, 0);
  const pump = () => {
    while (!res.destroyed && n < ENDLESS) {
      n += chunk.length;
      sent.set(req.url!, n);
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

async function hostile(route: Route): Promise<Hostile> {
  const sent = new Map<string, number>();
  const requested: string[] = [];
  const server = http.createServer((req, res) => {
    requested.push(req.url!);
    if (route(req, res)) return;
    if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    res.writeHead(404).end();
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    sent,
    requested,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('registry size limits while streaming', () => {
  let tmp: string;
  let store: ImageStore;
  let server: Hostile | undefined;
  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbuild-limits-'));
    store = await ImageStore.open(path.join(tmp, 'store'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const pull = (ref: string) => pullImage(store, ref, { importer: recordingImporter().importer });

  it('a manifest without Content-Length is cut at the limit', async () => {
    server = await hostile((req, res) => {
      if (req.url !== '/v2/app/manifests/latest') return false;
      endless(req, res, 200, server!.sent, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      return true;
    });
    await expect(pull(`${server.host}/app:latest`)).rejects.toThrow(`manifest is too large (over ${4 << 20} bytes): ${server.host}/app:latest`);
    expect(server.sent.get('/v2/app/manifests/latest')).toBeGreaterThan(0);
    expect(server.sent.get('/v2/app/manifests/latest')).toBeLessThan(BOUND);
  });

  it('an endless error body is not read whole; the status still makes the message', async () => {
    server = await hostile((req, res) => {
      if (req.url !== '/v2/app/manifests/latest') return false;
      endless(req, res, 404, server!.sent);
      return true;
    });
    await expect(pull(`${server.host}/app:latest`)).rejects.toThrow(`manifest unknown: ${server.host}/app:latest (HTTP 404)`);
    expect(server.sent.get('/v2/app/manifests/latest')).toBeLessThan(BOUND);
  });

  it('an endless token response is cut at the limit', async () => {
    server = await hostile((req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${server!.host}/token",service="hostile"` }).end();
        return true;
      }
      if (!req.url!.startsWith('/token')) return false;
      endless(req, res, 200, server!.sent);
      return true;
    });
    await expect(pull(`${server.host}/app:latest`)).rejects.toThrow(/the token server of 127\.0\.0\.1:\d+ answered with more than 1048576 bytes/);
    const tokenPath = [...server.sent.keys()].find((k) => k.startsWith('/token'))!;
    expect(server.sent.get(tokenPath)).toBeLessThan(BOUND);
  });

  it('a manifest that names a huge config is refused before the config is fetched', async () => {
    const configDigest = sha256OfBuffer('x');
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 2 ** 31 },
        layers: [],
      }),
    );
    server = await hostile((req, res) => {
      if (req.url === '/v2/app/manifests/latest') {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
        return true;
      }
      if (req.url!.startsWith('/v2/app/blobs/')) {
        endless(req, res, 200, server!.sent);
        return true;
      }
      return false;
    });
    await expect(pull(`${server.host}/app:latest`)).rejects.toThrow(`config ${configDigest} of ${2 ** 31} bytes is too large`);
    expect(server.requested.filter((u) => u.startsWith('/v2/app/blobs/'))).toEqual([]);
  });

  // Decoded by image/decode.ts like archives and the store: a one-line error naming the reference
  // (a null layer descriptor was a TypeError).
  it('a malformed manifest or index is refused in one line naming the reference', async () => {
    const docs: Record<string, [string, string]> = {
      '/v2/app/manifests/nulls': ['application/vnd.oci.image.manifest.v1+json', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: sha256OfBuffer('c'), size: 1 }, layers: [null] })],
      '/v2/app/manifests/index': ['application/vnd.oci.image.index.v1+json', JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'x', digest: 'nope', size: 1 }] })],
    };
    server = await hostile((req, res) => {
      const doc = docs[req.url!];
      if (!doc) return false;
      res.writeHead(200, { 'content-type': doc[0] }).end(doc[1]);
      return true;
    });
    const nulls = await pull(`${server.host}/app:nulls`).catch((err: unknown) => err);
    expect(nulls).toBeInstanceOf(TsbuildError);
    expect((nulls as Error).message).toMatch(/^the manifest: layers\[0\] is malformed: a descriptor must be an object: 127\.0\.0\.1:\d+\/app@sha256:[0-9a-f]{64}$/);
    await expect(pull(`${server.host}/app:index`)).rejects.toThrow(`the image index: manifests[0] is malformed: invalid digest "nope": ${server.host}/app:index`);
  });
});
