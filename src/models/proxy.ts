/**
 * HTTP(S) proxies for model downloads, from the usual environment variables (node:http ignores them):
 * `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http URLs (lower-case forms too), `NO_PROXY` for exceptions.
 * https goes through a CONNECT tunnel, so the proxy never sees the content; http uses absolute-form requests.
 */
import http, { type ClientRequest, type RequestOptions } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/** Hosts that never go through a proxy unless NO_PROXY is set explicitly. */
const DEFAULT_NO_PROXY = 'localhost,127.0.0.1,::1';

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name.toLowerCase()] ?? env[name.toUpperCase()];
}

/** Whether `host` matches a NO_PROXY list: `*`, exact names, `.suffix` / `suffix` domain matches, optional `:port`. */
export function bypassesProxy(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.replace(/^\[|\](?=:|$)/g, ''));
    const name = (m?.[1] ?? entry).replace(/^\*?\./, '');
    if (m?.[2] && m[2] !== port) continue;
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The proxy URL to use for `url`, or undefined for a direct connection. */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv): URL | undefined {
  const noProxy = envValue(env, 'no_proxy') ?? DEFAULT_NO_PROXY;
  if (bypassesProxy(url, noProxy)) return undefined;
  const raw = url.protocol === 'https:' ? envValue(env, 'https_proxy') : envValue(env, 'http_proxy');
  if (!raw) return undefined;
  try {
    return new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    return undefined;
  }
}

function proxyAuth(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(cred).toString('base64')}` };
}

export interface GetOptions {
  headers: Record<string, string>;
  env: NodeJS.ProcessEnv;
  /** Extra trusted CA certificates (PEM), added to Node's built-in list. */
  ca?: string | undefined;
}

/**
 * Starts a GET for `url`, directly or through the proxy the environment names. The caller handles 'response',
 * 'error' and timeouts on the returned request.
 */
export function startGet(url: URL, opts: GetOptions): ClientRequest {
  const proxy = proxyFor(url, opts.env);
  const ca = opts.ca ? [...tls.rootCertificates, opts.ca] : undefined;
  if (!proxy) {
    if (url.protocol === 'https:') return https.get(url, { headers: opts.headers, ...(ca ? { ca } : {}) });
    return http.get(url, { headers: opts.headers });
  }
  const proxyPort = Number(proxy.port) || (proxy.protocol === 'https:' ? 443 : 80);
  if (url.protocol === 'http:') {
    // Absolute-form request to the proxy (RFC 9112 §3.2.2).
    return http.get({
      host: proxy.hostname,
      port: proxyPort,
      path: url.href,
      headers: { ...opts.headers, host: url.host, ...proxyAuth(proxy) },
    });
  }
  const targetPort = Number(url.port) || 443;
  const options: RequestOptions & { createConnection: NonNullable<RequestOptions['createConnection']> } = {
    host: url.hostname,
    port: targetPort,
    path: `${url.pathname}${url.search}`,
    headers: { ...opts.headers, host: url.host },
    // node:http accepts an asynchronous createConnection through its callback.
    createConnection: (_o, done) => {
      const connect = http.request({
        host: proxy.hostname,
        port: proxyPort,
        method: 'CONNECT',
        path: `${url.hostname}:${targetPort}`,
        headers: { host: `${url.hostname}:${targetPort}`, ...proxyAuth(proxy) },
      });
      connect.on('connect', (res, socket) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          done(new Error(`the proxy ${proxy.host} refused the tunnel (HTTP ${res.statusCode})`), undefined as unknown as Duplex);
          return;
        }
        done(null, tls.connect({ socket, servername: url.hostname, ...(ca ? { ca } : {}) }));
      });
      connect.on('error', (e) => done(new Error(`proxy ${proxy.host}: ${e.message}`), undefined as unknown as Duplex));
      connect.end();
      return undefined;
    },
  };
  return https.get(options);
}
