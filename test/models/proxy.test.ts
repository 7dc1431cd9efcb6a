import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { downloadFile } from '../../src/models/download.js';
import { bypassesProxy, proxyFor } from '../../src/models/proxy.js';
import { fixtureBytes, sha256, startTestServer, type TestServer } from '../helpers/models-server.js';
import { tempCacheDir } from '../helpers/models-config.js';

describe('proxy selection', () => {
  it.each([
    ['https://github.com/x', { HTTPS_PROXY: 'http://p:3128' }, 'http://p:3128/'],
    ['https://github.com/x', { https_proxy: 'p:3128' }, 'http://p:3128/'],
    ['http://h.example/x', { HTTPS_PROXY: 'http://p:3128' }, undefined],
    ['http://h.example/x', { HTTP_PROXY: 'http://p:8080' }, 'http://p:8080/'],
    ['https://github.com/x', { HTTPS_PROXY: 'http://p:3128', NO_PROXY: 'github.com' }, undefined],
    ['https://objects.github.com/x', { HTTPS_PROXY: 'http://p:3128', NO_PROXY: '.github.com' }, undefined],
    ['https://notgithub.com/x', { HTTPS_PROXY: 'http://p:3128', NO_PROXY: 'github.com' }, 'http://p:3128/'],
    ['https://github.com/x', { HTTPS_PROXY: 'http://p:3128', NO_PROXY: '*' }, undefined],
    // Loopback is direct by default, but an explicit NO_PROXY (even empty) decides alone.
    ['http://127.0.0.1:9/x', { HTTP_PROXY: 'http://p:8080' }, undefined],
    ['http://127.0.0.1:9/x', { HTTP_PROXY: 'http://p:8080', NO_PROXY: '' }, 'http://p:8080/'],
  ] as const)('%s with %j → %s', (url, env, want) => {
    expect(proxyFor(new URL(url), env)?.href).toBe(want);
  });
  it('matches NO_PROXY ports', () => {
    expect(bypassesProxy(new URL('https://h.example/x'), 'h.example:443')).toBe(true);
    expect(bypassesProxy(new URL('https://h.example:8443/x'), 'h.example:443')).toBe(false);
  });
});

/** A minimal forward proxy: absolute-form GET for http, CONNECT tunnels for https; records what it was asked. */
async function startProxy(opts: { refuse?: number } = {}): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const up = http.get(req.url!, { headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket) => {
    seen.push(`CONNECT ${req.url} ${req.headers['proxy-authorization'] ?? ''}`.trim());
    sockets.add(client);
    if (opts.refuse) {
      client.end(`HTTP/1.1 ${opts.refuse} Refused\r\n\r\n`);
      return;
    }
    const [host, port] = req.url!.split(':');
    const target = net.connect(Number(port), host === 'localhost' ? '127.0.0.1' : host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      target.pipe(client);
      client.pipe(target);
    });
    sockets.add(target);
    target.on('error', () => client.destroy());
    client.on('error', () => target.destroy());
  });
  server.on('connection', (s: net.Socket) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const body = fixtureBytes(120_000, 'proxy');
const fast = { connectTimeoutMs: 5000, idleTimeoutMs: 5000, retries: 0, retryDelayMs: 1 };

describe('downloads through a proxy', () => {
  let origin: TestServer;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  beforeAll(async () => {
    origin = await startTestServer();
    origin.route('/m/file.bin', { kind: 'file', body });
    proxy = await startProxy();
  });
  afterAll(async () => {
    await proxy.close();
    await origin.close();
  });

  it('sends http downloads to HTTP_PROXY in absolute form', async () => {
    const dest = join(tempCacheDir(), 'file.bin');
    const r = await downloadFile({ url: `${origin.url}/m/file.bin`, dest }, { ...fast, env: { HTTP_PROXY: proxy.url, NO_PROXY: '' } });
    expect(r.sha256).toBe(sha256(body));
    expect(proxy.seen).toEqual([`GET ${origin.url}/m/file.bin`]);
  });

  let openssl = true;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    openssl = false;
  }
  describe.skipIf(!openssl)('https through a CONNECT tunnel', () => {
    let server: https.Server;
    let cert: string;
    let port: number;
    beforeAll(async () => {
      const dir = tempCacheDir('stemkit-tls-');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
        '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
      cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
      server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (_req, res) => {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('tunnels https via HTTPS_PROXY (with credentials) and verifies the certificate', async () => {
      proxy.seen.length = 0;
      const authed = proxy.url.replace('http://', 'http://user:p%40ss@');
      const dest = join(tempCacheDir(), 'tls.bin');
      const r = await downloadFile({ url: `https://localhost:${port}/x/tls.bin`, dest, sha256: sha256(body) }, { ...fast, env: { HTTPS_PROXY: authed, NO_PROXY: '' }, ca: cert });
      expect(r.size).toBe(body.length);
      expect(proxy.seen).toEqual([`CONNECT localhost:${port} Basic ${Buffer.from('user:p@ss').toString('base64')}`]);

      // Without trusting the test CA the TLS handshake inside the tunnel fails: exit 69, nothing installed.
      const dest2 = join(tempCacheDir(), 'tls.bin');
      await expect(downloadFile({ url: `https://localhost:${port}/x/tls.bin`, dest: dest2 }, { ...fast, env: { HTTPS_PROXY: proxy.url, NO_PROXY: '' } })).rejects.toThrow(
        /self-signed certificate/,
      );
    });

    it('reports a proxy that refuses the tunnel', async () => {
      const refusing = await startProxy({ refuse: 407 });
      try {
        const dest = join(tempCacheDir(), 'tls.bin');
        await expect(downloadFile({ url: `https://localhost:${port}/x/tls.bin`, dest }, { ...fast, env: { HTTPS_PROXY: refusing.url, NO_PROXY: '' } })).rejects.toThrow(
          `the proxy ${refusing.url.slice('http://'.length)} refused the tunnel (HTTP 407)`,
        );
      } finally {
        await refusing.close();
      }
    });
  });
});
