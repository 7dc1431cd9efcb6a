/**
 * A real HTTP server on 127.0.0.1 (ephemeral port) for download tests. Each path has a behaviour; the server
 * records every request (path and Range header) so tests can assert what the client asked for.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  | { kind: 'file'; body: Buffer; range?: boolean /* default true */; announce?: number /* Content-Length lie */; etag?: string; headers?: Record<string, string> }
  | { kind: 'cut'; body: Buffer; after: number; times: number /* cut the first N responses */; etag?: string }
  | { kind: 'short'; body: Buffer; missing: number }
  | { kind: 'stall'; body: Buffer; after: number /* bytes sent before stalling */ }
  | { kind: 'hang' /* never answers */ }
  | { kind: 'gate'; body: Buffer; after: number; release: Promise<void> /* sends `after` bytes, the rest once released */ }
  | { kind: 'status'; code: number }
  | { kind: 'redirect'; to: string; code?: number; headers?: Record<string, string> };

export interface RequestLog {
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
}

export interface TestServer {
  url: string;
  requests: RequestLog[];
  route(path: string, b: Behaviour): void;
  close(): Promise<void>;
}

/** Deterministic pseudo-random bytes (sha256 counter stream), so fixtures need no files. */
export function fixtureBytes(n: number, seed = 'stemkit'): Buffer {
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function parseRange(h: string | undefined, size: number): number | undefined {
  const m = h ? /^bytes=(\d+)-$/.exec(h) : null;
  if (!m) return undefined;
  const start = Number(m[1]);
  return start < size ? start : undefined;
}

/** Writes `data` and then destroys the socket once it is flushed, so the client gets exactly these bytes. */
function writeThenCut(res: ServerResponse, data: Buffer): void {
  res.write(data, () => res.socket?.destroy());
}

export async function startTestServer(): Promise<TestServer> {
  const routes = new Map<string, Behaviour>();
  const cutCount = new Map<string, number>();
  const requests: RequestLog[] = [];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ path, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    const b = routes.get(path);
    if (!b) {
      res.writeHead(404).end('not found');
      return;
    }
    switch (b.kind) {
      case 'status':
        res.writeHead(b.code).end(`status ${b.code}`);
        return;
      case 'redirect':
        res.writeHead(b.code ?? 302, { location: b.to, ...b.headers }).end();
        return;
      case 'hang':
        return;
      case 'gate':
        res.writeHead(200, { 'content-length': b.body.length });
        res.write(b.body.subarray(0, b.after));
        void b.release.then(() => res.end(b.body.subarray(b.after)));
        return;
      case 'stall':
        res.writeHead(200, { 'content-length': b.body.length });
        res.write(b.body.subarray(0, b.after));
        return;
      case 'short':
        res.writeHead(200, { 'content-length': b.body.length });
        writeThenCut(res, b.body.subarray(0, b.body.length - b.missing));
        return;
      case 'cut': {
        const n = cutCount.get(path) ?? 0;
        const start = rangeStart(req, b.body.length, b.etag);
        if (n < b.times) {
          cutCount.set(path, n + 1);
          res.writeHead(200, { 'content-length': b.body.length, 'accept-ranges': 'bytes', ...(b.etag ? { etag: b.etag } : {}) });
          writeThenCut(res, b.body.subarray(0, b.after));
          return;
        }
        serve(res, b.body, start, b.etag);
        return;
      }
      case 'file': {
        const start = b.range === false ? undefined : rangeStart(req, b.body.length, b.etag);
        if (b.announce !== undefined) {
          res.writeHead(200, { 'content-length': b.announce, ...b.headers });
          res.end(b.body.subarray(0, Math.min(b.announce, b.body.length)));
          return;
        }
        serve(res, b.body, start, b.etag, b.headers);
        return;
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    route: (path, b) => {
      routes.set(path, b);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The Range start to honour: none when If-Range names another version (RFC 9110 §13.1.5). */
function rangeStart(req: IncomingMessage, size: number, etag: string | undefined): number | undefined {
  const ifRange = req.headers['if-range'];
  if (ifRange !== undefined && ifRange !== etag) return undefined;
  return parseRange(req.headers.range, size);
}

function serve(res: ServerResponse, body: Buffer, start: number | undefined, etag?: string, headers: Record<string, string> = {}): void {
  const tag = { ...(etag ? { etag } : {}), ...headers };
  if (start !== undefined && start > 0) {
    res.writeHead(206, {
      ...tag,
      'content-length': body.length - start,
      'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      'accept-ranges': 'bytes',
    });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes', ...tag });
  res.end(body);
}
