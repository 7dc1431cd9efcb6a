import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InterruptedError, UnavailableError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/progress.js';
import { applyMirror, downloadFile, type DownloadOptions } from '../../src/models/download.js';
import { fixtureBytes, sha256, startTestServer, type TestServer } from '../helpers/models-server.js';
import { tempCacheDir } from '../helpers/models-config.js';

const SIZE = 300_000;
const body = fixtureBytes(SIZE);
const SHA = sha256(body);
// Short timeouts and no retry pauses keep the suite fast; these are loopback transfers.
const fast: DownloadOptions = { connectTimeoutMs: 2000, idleTimeoutMs: 2000, retries: 0, retryDelayMs: 1 };

let server: TestServer;
let dir: string;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  dir = tempCacheDir();
  server.requests.length = 0;
});

async function failure(p: Promise<unknown>): Promise<UnavailableError> {
  try {
    await p;
  } catch (e) {
    return e as UnavailableError;
  }
  throw new Error('expected a failure');
}

/** A download left no file that looks complete: only the part file (or nothing). */
function assertNoCorruptEntry(dest: string): void {
  expect(existsSync(dest)).toBe(false);
}

// A hang (a lost 'close' event) must fail fast rather than at the global 120 s limit.
describe('downloadFile against a loopback server', { timeout: 20_000 }, () => {
  it('downloads, verifies and renames into place with monotonic byte progress', async () => {
    server.route('/good.bin', { kind: 'file', body });
    const events: ProgressEvent[] = [];
    const dest = join(dir, 'good.bin');
    const r = await downloadFile(
      { url: `${server.url}/good.bin`, dest, size: SIZE, sha256: SHA, label: 'm/good.bin' },
      { ...fast, onProgress: (e) => events.push(e) },
    );
    expect(r).toEqual({ size: SIZE, sha256: SHA, checksum: 'registry', finalUrl: `${server.url}/good.bin`, resumedFrom: 0 });
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(events[0]).toMatchObject({ stage: 'download', status: 'start', file: 'm/good.bin', unit: 'bytes', total: SIZE });
    expect(events.at(-1)).toMatchObject({ status: 'done', done: SIZE, total: SIZE });
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.done).toBeGreaterThanOrEqual(events[i - 1]!.done);
      expect(events[i]!.total).toBe(SIZE);
    }
  });

  it('keeps a resumable part after a cut connection and resumes it with Range', async () => {
    server.route('/cut.bin', { kind: 'cut', body, after: 100_000, times: 1 });
    const dest = join(dir, 'cut.bin');
    const req = { url: `${server.url}/cut.bin`, dest, size: SIZE, sha256: SHA, importCommand: 'stemkit models import x <file>' };
    const e = await failure(downloadFile(req, fast));
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.exitCode).toBe(69);
    assertNoCorruptEntry(dest);
    expect(statSync(`${dest}.part`).size).toBe(100_000);
    const r = await downloadFile(req, fast);
    expect(r.resumedFrom).toBe(100_000);
    expect(server.requests.map((q) => q.range)).toEqual([undefined, 'bytes=100000-']);
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(existsSync(`${dest}.part.json`)).toBe(false);
  });

  it('sends If-Range with the validator of the first response, and does not continue bytes from another URL', async () => {
    server.route('/etag.bin', { kind: 'cut', body, after: 30_000, times: 1, etag: '"v1"' });
    const dest = join(dir, 'etag.bin');
    await failure(downloadFile({ url: `${server.url}/etag.bin`, dest }, fast));
    expect(JSON.parse(readFileSync(`${dest}.part.json`, 'utf8'))).toEqual({ url: `${server.url}/etag.bin`, etag: '"v1"' });
    // The same file name from another URL (a mirror switched on) starts over instead of appending.
    server.route('/elsewhere/etag.bin', { kind: 'file', body });
    await downloadFile({ url: `${server.url}/elsewhere/etag.bin`, dest, sha256: SHA }, fast);
    expect(server.requests.map((q) => [q.path, q.range, q.ifRange])).toEqual([
      ['/etag.bin', undefined, undefined],
      ['/elsewhere/etag.bin', undefined, undefined],
    ]);
    expect(readFileSync(dest).equals(body)).toBe(true);

    server.requests.length = 0;
    const dest2 = join(dir, 'etag2.bin');
    server.route('/etag2.bin', { kind: 'cut', body, after: 30_000, times: 1, etag: '"v1"' });
    await downloadFile({ url: `${server.url}/etag2.bin`, dest: dest2, sha256: SHA }, { ...fast, retries: 1 });
    expect(server.requests.map((q) => [q.range, q.ifRange])).toEqual([
      [undefined, undefined],
      ['bytes=30000-', '"v1"'],
    ]);
  });

  it('restarts from 0 when the file changed upstream (If-Range answered with 200)', async () => {
    const v2 = fixtureBytes(SIZE, 'v2');
    const dest = join(dir, 'changed.bin');
    server.route('/changed.bin', { kind: 'cut', body, after: 30_000, times: 1, etag: '"v1"' });
    await failure(downloadFile({ url: `${server.url}/changed.bin`, dest }, fast));
    // The server now has a new version: its If-Range check fails and it sends the whole new file.
    server.route('/changed.bin', { kind: 'file', body: v2, etag: '"v2"' });
    const r = await downloadFile({ url: `${server.url}/changed.bin`, dest }, fast);
    expect(server.requests.at(-1)).toMatchObject({ range: 'bytes=30000-', ifRange: '"v1"' });
    expect(r.sha256).toBe(sha256(v2));
    expect(readFileSync(dest).equals(v2)).toBe(true);
  });

  it('retries a cut connection by itself, resuming from the part file', async () => {
    server.route('/cut2.bin', { kind: 'cut', body, after: 50_000, times: 1 });
    const dest = join(dir, 'cut2.bin');
    const logs: string[] = [];
    await downloadFile({ url: `${server.url}/cut2.bin`, dest, sha256: SHA }, { ...fast, retries: 2, onLog: (l) => logs.push(l.message) });
    expect(server.requests.map((q) => q.range)).toEqual([undefined, 'bytes=50000-']);
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/retrying \(1\/2\)$/);
  });

  it('restarts from 0, truncating the part, when the server ignores Range', async () => {
    server.route('/norange.bin', { kind: 'file', body, range: false });
    const dest = join(dir, 'norange.bin');
    // A stale part with the wrong bytes: appending to it would corrupt the file.
    writeFileSync(`${dest}.part`, Buffer.alloc(120_000, 7));
    writeFileSync(`${dest}.part.json`, JSON.stringify({ url: `${server.url}/norange.bin` }));
    const r = await downloadFile({ url: `${server.url}/norange.bin`, dest, size: SIZE, sha256: SHA }, fast);
    expect(server.requests.map((q) => q.range)).toEqual(['bytes=120000-']);
    expect(r.sha256).toBe(SHA);
    expect(readFileSync(dest).equals(body)).toBe(true);
  });

  it('turns 404 into UnavailableError naming the URL, the cache and the import command', async () => {
    const dest = join(dir, 'missing.bin');
    const e = await failure(downloadFile({ url: `${server.url}/nothing.bin`, dest, importCommand: 'stemkit models import gtcrn <file>' }, fast));
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.exitCode).toBe(69);
    expect(e.code).toBe('E_NOT_FOUND');
    expect(e.message).toBe(`cannot download missing.bin: HTTP 404 Not Found (${server.url}/nothing.bin)`);
    expect(e.hint).toContain(`cache: ${dir}/`);
    expect(e.hint).toContain('`stemkit models import gtcrn <file>`');
    assertNoCorruptEntry(dest);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('retries HTTP 500 and then fails with exit 69', async () => {
    server.route('/err.bin', { kind: 'status', code: 500 });
    const dest = join(dir, 'err.bin');
    const e = await failure(downloadFile({ url: `${server.url}/err.bin`, dest }, { ...fast, retries: 2 }));
    expect(e.exitCode).toBe(69);
    expect(e.message).toBe(`cannot download err.bin: HTTP 500 Internal Server Error (${server.url}/err.bin)`);
    expect(e.details).toMatchObject({ status: 500 });
    expect(server.requests).toHaveLength(3);
    assertNoCorruptEntry(dest);
  });

  it('never installs a body shorter than announced', async () => {
    server.route('/short.bin', { kind: 'short', body, missing: 1000 });
    const dest = join(dir, 'short.bin');
    // No registry size: only Content-Length tells the body is short.
    const e = await failure(downloadFile({ url: `${server.url}/short.bin`, dest }, fast));
    expect(e.exitCode).toBe(69);
    assertNoCorruptEntry(dest);
    // Every byte that arrived is kept, and they are a true prefix of the file.
    const part = readFileSync(`${dest}.part`);
    expect(part.length).toBe(SIZE - 1000);
    expect(part.equals(body.subarray(0, part.length))).toBe(true);
    // Once the server behaves, the run resumes from there.
    server.route('/short.bin', { kind: 'file', body });
    const r = await downloadFile({ url: `${server.url}/short.bin`, dest, sha256: SHA }, fast);
    expect(r.resumedFrom).toBe(part.length);
    expect(server.requests.at(-1)!.range).toBe(`bytes=${part.length}-`);
    expect(readFileSync(dest).equals(body)).toBe(true);
  });

  it('rejects a wrong checksum and drops the bad bytes', async () => {
    const wrong = fixtureBytes(SIZE, 'other');
    server.route('/wrong.bin', { kind: 'file', body: wrong });
    const dest = join(dir, 'wrong.bin');
    const e = await failure(downloadFile({ url: `${server.url}/wrong.bin`, dest, size: SIZE, sha256: SHA }, fast));
    expect(e.code).toBe('E_CHECKSUM');
    expect(e.exitCode).toBe(69);
    expect(e.message).toContain(`got sha256 ${sha256(wrong)}, expected ${SHA}`);
    assertNoCorruptEntry(dest);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('rejects a server that announces a size other than the registry pins', async () => {
    server.route('/size.bin', { kind: 'file', body, announce: SIZE - 5 });
    const dest = join(dir, 'size.bin');
    const e = await failure(downloadFile({ url: `${server.url}/size.bin`, dest, size: SIZE }, fast));
    expect(e.message).toContain(`the server announces ${SIZE - 5} bytes but the registry expects ${SIZE}`);
    assertNoCorruptEntry(dest);
  });

  it('times out a stalled body (idle timeout) and keeps what arrived', async () => {
    server.route('/stall.bin', { kind: 'stall', body, after: 64_000 });
    const dest = join(dir, 'stall.bin');
    const e = await failure(downloadFile({ url: `${server.url}/stall.bin`, dest }, { ...fast, idleTimeoutMs: 300 }));
    expect(e.message).toBe(`cannot download stall.bin: no data for 0.3 s (${server.url}/stall.bin)`);
    assertNoCorruptEntry(dest);
    expect(statSync(`${dest}.part`).size).toBe(64_000);
  });

  it('times out a server that never answers (connect timeout)', async () => {
    server.route('/hang.bin', { kind: 'hang' });
    const dest = join(dir, 'hang.bin');
    const e = await failure(downloadFile({ url: `${server.url}/hang.bin`, dest }, { ...fast, connectTimeoutMs: 300 }));
    expect(e.message).toBe(`cannot download hang.bin: no response within 0.3 s (${server.url}/hang.bin)`);
    assertNoCorruptEntry(dest);
  });

  it('follows redirects (relative and absolute) and stops at the limit', async () => {
    server.route('/file.bin', { kind: 'file', body });
    server.route('/r1', { kind: 'redirect', to: '/r2', code: 301 });
    server.route('/r2', { kind: 'redirect', to: `${server.url}/file.bin`, code: 307 });
    const dest = join(dir, 'redirected.bin');
    const r = await downloadFile({ url: `${server.url}/r1`, dest, sha256: SHA }, fast);
    expect(r.finalUrl).toBe(`${server.url}/file.bin`);
    expect(server.requests.map((q) => q.path)).toEqual(['/r1', '/r2', '/file.bin']);
    expect(readFileSync(dest).equals(body)).toBe(true);

    server.route('/loop', { kind: 'redirect', to: '/loop' });
    const e = await failure(downloadFile({ url: `${server.url}/loop`, dest: join(dir, 'loop.bin') }, { ...fast, maxRedirects: 3 }));
    expect(e.message).toContain('too many redirects (more than 3)');
    expect(server.requests.filter((q) => q.path === '/loop')).toHaveLength(4);
  });

  it('stops on abort with InterruptedError and keeps the part for resuming', async () => {
    server.route('/abort.bin', { kind: 'stall', body, after: 10_000 });
    const dest = join(dir, 'abort.bin');
    const ac = new AbortController();
    const p = downloadFile({ url: `${server.url}/abort.bin`, dest }, {
      ...fast,
      signal: ac.signal,
      onProgress: (ev) => {
        // The server stalls after 10 kB; abort once those bytes have surely arrived.
        if (ev.status === 'start') setTimeout(() => ac.abort(), 150);
      },
    });
    const e = await failure(p);
    expect(e).toBeInstanceOf(InterruptedError);
    assertNoCorruptEntry(dest);
    expect(statSync(`${dest}.part`).size).toBe(10_000);
  });
});

describe('applyMirror', () => {
  it('replaces scheme and host, keeping the original path', () => {
    expect(applyMirror('https://github.com/a/b/releases/download/v1/x.onnx', 'http://10.0.0.5:8080/models/')).toBe(
      'http://10.0.0.5:8080/models/a/b/releases/download/v1/x.onnx',
    );
    expect(applyMirror('https://h.example/x?y=1', undefined)).toBe('https://h.example/x?y=1');
  });
});

describe('downloadFile with a damaged part file', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });
  it('a complete but corrupt part is dropped and fetched again from the start', async () => {
    const dir = tempCacheDir();
    server.route('/whole.bin', { kind: 'file', body });
    const dest = join(dir, 'whole.bin');
    // Full length, wrong bytes, same source URL (e.g. a disk error after a download was killed before its rename).
    writeFileSync(`${dest}.part`, Buffer.alloc(SIZE, 1));
    writeFileSync(`${dest}.part.json`, JSON.stringify({ url: `${server.url}/whole.bin` }));
    const logs: string[] = [];
    const r = await downloadFile({ url: `${server.url}/whole.bin`, dest, size: SIZE, sha256: SHA }, { ...fast, retries: 1, onLog: (l) => logs.push(l.message) });
    expect(r.sha256).toBe(SHA);
    expect(server.requests.map((q) => q.range)).toEqual([undefined]);
    expect(logs).toEqual(['checksum mismatch after resuming; downloading again from the start; retrying (1/1)']);
  });
});
