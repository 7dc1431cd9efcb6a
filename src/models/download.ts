/**
 * Resumable, verified HTTP(S) downloads with node:http/node:https (no dependency).
 *
 * Bytes go to `<dest>.part`; an interrupted transfer resumes from there with an HTTP Range request, a server
 * that ignores Range restarts from 0 (the part file is truncated, never appended to), and only a body whose
 * size and sha256 check out is renamed to `<dest>`. So a file under its final name is always complete, and a
 * cut connection leaves a `.part` the next run continues. The caller holds the model lock (see lock.ts).
 */
import { formatBytes } from '../util/format.js';
import { writeFileSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { basename, dirname } from 'node:path';
import { InterruptedError, UnavailableError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';
import { PART_SUFFIX, sha256File } from './cache.js';
import { cacheWriteError } from './lock.js';
import { startGet } from './proxy.js';

/** Network behaviour; the defaults suit real hosts, tests shorten them. */
export interface DownloadOptions extends Observer {
  /** Time allowed from sending a request to its response headers (default 30 s). */
  connectTimeoutMs?: number;
  /** Time allowed without a single body byte (default 60 s). */
  idleTimeoutMs?: number;
  /** Redirects followed per request (default 5). */
  maxRedirects?: number;
  /** Automatic retries, resuming from the part file, after a cut connection, timeout or HTTP 5xx (default 2). */
  retries?: number;
  /** Pause before a retry (default 1000 ms, doubled each time). */
  retryDelayMs?: number;
  /** Where HTTPS_PROXY / HTTP_PROXY / NO_PROXY are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Extra trusted CA certificates (PEM), e.g. a company's TLS-inspecting proxy; added to Node's list. */
  ca?: string;
  /** Refuse a file larger than this many bytes (announced or received); unset: no limit. */
  maxBytes?: number;
}

export interface DownloadRequest {
  url: string;
  /** Final path; bytes are written to `<dest>.part` first. */
  dest: string;
  /** Expected bytes, when known. */
  size?: number;
  /** Expected sha256 (lower-case hex), when known. */
  sha256?: string;
  /** The `file` of progress events (e.g. `kokoro/voices-v1.0.bin`). */
  label?: string;
  /** Appended to error hints: the offline alternative, e.g. "stemkit models import kokoro <file>". */
  importCommand?: string;
}

export interface DownloadResult {
  size: number;
  sha256: string;
  /**
   * Who vouched for `sha256`: the registry's pin, the server's declaration (Hugging Face's X-Linked-Etag of an LFS
   * file is its sha256), or nobody (recorded now, trust on first use).
   */
  checksum: 'registry' | 'server' | 'recorded';
  /** The URL the bytes finally came from (after redirects). */
  finalUrl: string;
  /** Bytes that were already in the part file when this call started. */
  resumedFrom: number;
}

/** Beside each part file: where its bytes came from, for If-Range and to avoid mixing sources. */
interface PartMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  /** The sha256 the server declared for the whole file when the part was started (X-Linked-Etag). */
  linkedSha256?: string;
}

/** What the server declares about the whole file, beside the body (Hugging Face: on the redirect to its CDN). */
export interface LinkedInfo {
  sha256?: string;
  size?: number;
}

/**
 * Reads Hugging Face's `X-Linked-Etag` / `X-Linked-Size` (huggingface_hub's file metadata reads the same two headers:
 * for a file stored with LFS the etag is the file's sha256 and the size its byte count). Quotes and a weak `W/`
 * prefix are dropped; an etag that is not 64 hex digits (a git blob id, say) is not a checksum and is ignored.
 */
export function readLinkedHeaders(headers: IncomingMessage['headers']): LinkedInfo {
  const out: LinkedInfo = {};
  const etag = headers['x-linked-etag'];
  if (typeof etag === 'string') {
    const v = etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
    if (/^[0-9a-f]{64}$/.test(v)) out.sha256 = v;
  }
  const size = headers['x-linked-size'];
  if (typeof size === 'string' && /^\d+$/.test(size.trim())) out.size = Number(size.trim());
  return out;
}

/**
 * True when `head` (the first bytes of a download) is an HTML document: a login wall, a "file not found" page or a
 * captive portal answered with 200. No model, voice table or JSON config starts like that.
 */
export function looksLikeHtml(head: Uint8Array): boolean {
  let text = new TextDecoder('utf-8', { fatal: false }).decode(head.subarray(0, 512));
  text = text.replace(/^\uFEFF/, '').trimStart().toLowerCase();
  return /^<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>]|!--)/.test(text);
}
const META_SUFFIX = '.json';

async function readPartMeta(part: string): Promise<PartMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(part + META_SUFFIX, 'utf8')) as PartMeta;
    return typeof m.url === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

async function dropPart(part: string): Promise<void> {
  await rm(part, { force: true });
  await rm(part + META_SUFFIX, { force: true });
}

/** Writing the part file failed (a local problem, never retried as if it were the network). */
class LocalWriteError extends Error {
  constructor(cause: unknown) {
    super('write failed', { cause });
  }
}

/** A failure worth retrying (the part file is kept). */
class TransientError extends Error {}
/** A failure that retrying will not fix. */
class PermanentError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

const USER_AGENT = 'stemkit (+https://www.npmjs.com/package/stemkit)';

/**
 * Replaces the scheme and host of `url` with the mirror base URL: `<mirror>/<original path>`, e.g.
 * `https://github.com/a/b/x.onnx` with mirror `http://m.local/models` → `http://m.local/models/a/b/x.onnx`.
 */
export function applyMirror(url: string, mirror: string | undefined): string {
  if (!mirror) return url;
  const u = new URL(url);
  return `${mirror.replace(/\/+$/, '')}${u.pathname}${u.search}`;
}

function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code && !err.message.includes(err.code) ? `${err.message} (${err.code})` : err.message;
}

/** One GET, following redirects; resolves at the final response's headers. */
async function get(
  url: string,
  headers: Record<string, string>,
  opts: Required<Pick<DownloadOptions, 'connectTimeoutMs' | 'maxRedirects'>> & { env: NodeJS.ProcessEnv; ca: string | undefined } & Observer,
): Promise<{ res: IncomingMessage; url: string; linked: LinkedInfo }> {
  let current = url;
  const linked: LinkedInfo = {};
  for (let hop = 0; ; hop++) {
    const u = new URL(current);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PermanentError(`unsupported URL scheme ${u.protocol} in ${current}`);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = startGet(u, { headers: { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...headers }, env: opts.env, ca: opts.ca });
      const timer = setTimeout(() => {
        req.destroy(new TransientError(`no response within ${opts.connectTimeoutMs / 1000} s`));
      }, opts.connectTimeoutMs);
      const onAbort = (): void => {
        req.destroy(new InterruptedError());
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('response', (r) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        resolve(r);
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        reject(e instanceof TransientError || e instanceof InterruptedError ? e : new TransientError(errorText(e)));
      });
    });
    const status = res.statusCode ?? 0;
    // The first response that declares them wins: the origin's (Hugging Face sets them on its redirect to the CDN).
    const here = readLinkedHeaders(res.headers);
    if (linked.sha256 === undefined && here.sha256 !== undefined) linked.sha256 = here.sha256;
    if (linked.size === undefined && here.size !== undefined) linked.size = here.size;
    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume();
      if (hop >= opts.maxRedirects) throw new PermanentError(`too many redirects (more than ${opts.maxRedirects})`);
      const next = new URL(res.headers.location, u);
      if (u.protocol === 'https:' && next.protocol === 'http:') throw new PermanentError(`refusing a redirect from https to http (${next.href})`);
      current = next.href;
      continue;
    }
    return { res, url: current, linked };
  }
}

/** Parses `Content-Range: bytes a-b/total` (total may be `*`). */
function parseContentRange(v: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = v ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * Downloads `req.url` to `req.dest`, resuming `<dest>.part` when present, verifying size and sha256, and
 * renaming into place. Emits 'download' progress in bytes.
 * @throws UnavailableError (69) naming the URL, the HTTP status or network error, and `req.importCommand`;
 *   InterruptedError when the signal aborts (the part file is kept for resuming).
 */
export async function downloadFile(req: DownloadRequest, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const part = req.dest + PART_SUFFIX;
  const label = req.label ?? basename(req.dest);
  const retries = opts.retries ?? 2;
  const cfg = {
    connectTimeoutMs: opts.connectTimeoutMs ?? 30_000,
    maxRedirects: opts.maxRedirects ?? 5,
    env: opts.env ?? process.env,
    ca: opts.ca,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  let delay = opts.retryDelayMs ?? 1000;
  const resumedFrom = await fileSize(part);
  // Progress: `done` must never decrease within the stage, so a restart from 0 keeps reporting the high-water mark.
  let reported = -1;
  let started = false;
  let total = req.size ?? 0;
  let lastEmit = 0;
  const emit = (done: number, force = false): void => {
    const now = Date.now();
    if (!force && now - lastEmit < 100) return;
    lastEmit = now;
    const d = Math.min(Math.max(done, reported), total > 0 ? total : Number.MAX_SAFE_INTEGER);
    reported = d;
    if (!started) {
      started = true;
      opts.onProgress?.({ stage: 'download', status: 'start', file: label, done: d, total, unit: 'bytes', message: req.url });
    } else {
      opts.onProgress?.({ stage: 'download', status: 'progress', file: label, done: d, total, unit: 'bytes' });
    }
  };

  const fail = (why: string, finalUrl: string, code = 'E_DOWNLOAD', status?: number): UnavailableError => {
    const alt = req.importCommand ? ` Offline: download it elsewhere, then run \`${req.importCommand}\`.` : '';
    return new UnavailableError(`cannot download ${basename(req.dest)}: ${why} (${finalUrl})`, {
      code,
      hint: `${code === 'E_CHECKSUM' || code === 'E_DOWNLOAD_HTML' ? 'the server did not send the file it declares; nothing was installed. Try again later or use another mirror' : 'check the network or set a mirror'} (STEMKIT_MODEL_MIRROR); cache: ${part.slice(0, -basename(part).length)}.${alt}`,
      details: { url: req.url, finalUrl, dest: req.dest, partial: part, ...(status !== undefined ? { status } : {}) },
    });
  };

  let finalUrl = req.url;
  // What the body must be: the registry's pins, else what the server declares about the file (X-Linked-*).
  let expectSize = req.size;
  let expectSha = req.sha256;
  let checksum: DownloadResult['checksum'] = req.sha256 !== undefined ? 'registry' : 'recorded';
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(opts.signal);
    try {
      let have = await fileSize(part);
      const resumed = have > 0;
      if (expectSize !== undefined && have > expectSize) {
        // Longer than the file can be: not resumable.
        await dropPart(part);
        have = 0;
      }
      if (expectSize === undefined || have < expectSize) {
        const headers: Record<string, string> = {};
        let partMeta: PartMeta | undefined;
        if (have > 0) {
          const meta = await readPartMeta(part);
          partMeta = meta;
          if (meta?.url !== req.url) {
            // Bytes from another URL (a mirror switched on or off, a changed registry) must not be continued.
            await dropPart(part);
            have = 0;
          } else {
            headers['range'] = `bytes=${have}-`;
            // If-Range: a server whose file changed since the part was started sends the whole new file (200).
            const validator = meta.etag && !meta.etag.startsWith('W/') ? meta.etag : meta.lastModified;
            if (validator) headers['if-range'] = validator;
          }
        }
        const { res, url, linked } = await get(req.url, headers, cfg);
        finalUrl = url;
        const status = res.statusCode ?? 0;
        if (linked.size !== undefined) {
          if (req.size !== undefined && linked.size !== req.size) {
            res.destroy();
            throw new PermanentError(`the server declares ${linked.size} bytes (X-Linked-Size) but the registry expects ${req.size}`, undefined, 'E_CHECKSUM');
          }
          expectSize = linked.size;
          total = linked.size;
        }
        if (linked.sha256 !== undefined) {
          if (req.sha256 !== undefined && linked.sha256 !== req.sha256) {
            res.destroy();
            throw new PermanentError(`the server declares sha256 ${linked.sha256} (X-Linked-Etag) but the registry pins ${req.sha256}`, undefined, 'E_CHECKSUM');
          }
          if (req.sha256 === undefined) {
            expectSha = linked.sha256;
            checksum = 'server';
          }
        }
        if (status === 206 && have > 0 && partMeta?.linkedSha256 !== linked.sha256) {
          // The file behind the URL changed since the part was started (a new upload): its old bytes are useless.
          res.destroy();
          await dropPart(part);
          throw new TransientError('the file changed on the server since the download started; starting again');
        }
        if ((status === 200 || status === 206) && /^\s*text\/html\b/i.test(res.headers['content-type'] ?? '')) {
          // A login wall or an error page served with 200: never the model, whatever its size.
          res.destroy();
          throw new PermanentError('the server sent an HTML page (Content-Type: text/html), not the file', status, 'E_DOWNLOAD_HTML');
        }
        if (status === 200 || (status === 206 && have === 0)) {
          const meta: PartMeta = { url: req.url };
          if (linked.sha256 !== undefined) meta.linkedSha256 = linked.sha256;
          const etag = res.headers.etag;
          const lastModified = res.headers['last-modified'];
          if (etag) meta.etag = etag;
          if (lastModified) meta.lastModified = lastModified;
          // Synchronous on purpose: no await may separate the response from receive() attaching its listeners.
          try {
            writeFileSync(part + META_SUFFIX, JSON.stringify(meta));
          } catch (e) {
            res.destroy();
            throw e;
          }
        }
        let start: number;
        let announced: number | undefined;
        if (status === 206) {
          const cr = parseContentRange(res.headers['content-range']);
          if (!cr || cr.start !== have) {
            // The server answered a different range than asked: start over cleanly.
            res.destroy();
            await dropPart(part);
            throw new TransientError(`server sent an unexpected range (${res.headers['content-range'] ?? 'none'})`);
          }
          start = have;
          announced = cr.total;
        } else if (status === 200) {
          start = 0; // Range ignored (or not asked): the body is the whole file.
          const len = res.headers['content-length'];
          announced = len !== undefined ? Number(len) : undefined;
        } else if (status === 416 && have > 0) {
          res.resume();
          // The part file does not fit the server's file (changed upstream?): restart from 0.
          await dropPart(part);
          throw new TransientError('the server rejected the resume range (HTTP 416)');
        } else {
          res.resume();
          const text = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
          if (status >= 500 || status === 408 || status === 429) throw new TransientError(text, { cause: status });
          throw new PermanentError(text, status);
        }
        if (announced !== undefined && expectSize !== undefined && announced !== expectSize) {
          res.destroy();
          throw new PermanentError(`the server announces ${announced} bytes but ${req.size !== undefined ? 'the registry expects' : 'declares the file as'} ${expectSize}`, undefined, 'E_CHECKSUM');
        }
        if (announced !== undefined) total = announced;
        if (opts.maxBytes !== undefined && (announced ?? expectSize ?? 0) > opts.maxBytes) {
          res.destroy();
          throw new PermanentError(`the file is ${formatBytes(announced ?? expectSize ?? 0)}, more than the limit of ${formatBytes(opts.maxBytes)}`, undefined, 'E_TOO_LARGE');
        }
        await receive(res, part, start, announced, idleTimeoutMs, opts.signal, emit, opts.maxBytes);
      }
      const size = await fileSize(part);
      if (expectSize !== undefined && size !== expectSize) {
        await dropPart(part);
        throw new PermanentError(`got ${size} bytes, expected ${expectSize}`, undefined, 'E_CHECKSUM');
      }
      if (looksLikeHtml(await readHead(part))) {
        // Caught here too when the server said nothing (or lied) about the type: an HTML page of the right size
        // must never become an installed model.
        await dropPart(part);
        throw new PermanentError('the server sent an HTML page, not the file', undefined, 'E_DOWNLOAD_HTML');
      }
      const sha256 = await sha256File(part, opts.signal);
      if (expectSha !== undefined && sha256 !== expectSha) {
        // A complete body with the wrong checksum cannot be repaired by resuming: drop it. When old bytes from an
        // earlier attempt were part of it, one fresh download may still succeed.
        await dropPart(part);
        if (resumed && attempt < retries) throw new TransientError(`checksum mismatch after resuming; downloading again from the start`);
        const by = checksum === 'server' ? ' (declared by the server)' : '';
        throw fail(`checksum mismatch: got sha256 ${sha256}, expected ${expectSha}${by}`, finalUrl, 'E_CHECKSUM');
      }
      await rename(part, req.dest);
      await rm(part + META_SUFFIX, { force: true });
      if (total === 0) total = size;
      emit(size, true);
      opts.onProgress?.({ stage: 'download', status: 'done', file: label, done: Math.max(size, reported), total, unit: 'bytes' });
      return { size, sha256, checksum, finalUrl, resumedFrom };
    } catch (e) {
      if (e instanceof InterruptedError || opts.signal?.aborted) throw e instanceof InterruptedError ? e : new InterruptedError();
      if (e instanceof UnavailableError) throw e;
      // Bytes that failed their checks are never kept to be resumed into a model.
      if (e instanceof PermanentError && (e.code === 'E_CHECKSUM' || e.code === 'E_DOWNLOAD_HTML' || e.code === 'E_TOO_LARGE')) await dropPart(part);
      if (e instanceof PermanentError) throw fail(e.message, finalUrl, e.code ?? (e.status === 404 || e.status === 410 ? 'E_NOT_FOUND' : 'E_DOWNLOAD'), e.status);
      if (e instanceof TransientError) {
        if (attempt >= retries) {
          const status = typeof e.cause === 'number' ? e.cause : undefined;
          throw fail(e.message, finalUrl, 'E_DOWNLOAD', status);
        }
        opts.onLog?.({ level: 'warn', message: `${e.message}; retrying (${attempt + 1}/${retries})`, file: label });
        await sleep(delay, opts.signal);
        delay *= 2;
        continue;
      }
      throw cacheWriteError(e, dirname(part));
    }
  }
}

/** The first bytes of a file (at most 512), for content sniffing. */
export async function readHead(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const b = new Uint8Array(512);
    const { bytesRead } = await fh.read(b, 0, b.length, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/**
 * Streams the body into the part file from byte `start` (0 truncates). A body shorter than announced, an idle
 * stall or a reset connection throws TransientError with the bytes so far safely in the part file.
 */
async function receive(
  res: IncomingMessage,
  part: string,
  start: number,
  announced: number | undefined,
  idleTimeoutMs: number,
  signal: AbortSignal | undefined,
  emit: (done: number, force?: boolean) => void,
  maxBytes?: number,
): Promise<void> {
  // Listeners go on synchronously, before the first await: a connection that dies while the part file is being
  // opened would otherwise emit its 'close' to nobody (and drop its buffered bytes), and the download would hang.
  // Flowing mode with our own queue rather than `for await` for the same reason: a destroyed stream discards
  // the chunks it had buffered, and every byte that arrived should reach the part file.
  let idle: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => res.destroy(new TransientError(`no data for ${idleTimeoutMs / 1000} s`)), idleTimeoutMs);
  };
  const onAbort = (): void => {
    res.destroy(new InterruptedError());
  };
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  res.on('data', (c: Buffer) => {
    queue.push(c);
    queued += c.length;
    if (queued > 8 << 20) res.pause();
    arm();
    poke();
  });
  res.on('end', () => {
    ended = true;
    poke();
  });
  res.on('error', (e) => {
    failure ??= e;
    poke();
  });
  res.on('close', () => {
    if (!ended) failure ??= new Error('connection closed');
    poke();
  });
  signal?.addEventListener('abort', onAbort, { once: true });
  arm();
  let got = start;
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(part, start === 0 ? 'w' : 'a');
    emit(got, true);
    for (;;) {
      const c = queue.shift();
      if (c) {
        queued -= c.length;
        if (queued < 1 << 20 && res.isPaused()) res.resume();
        try {
          await fh.write(c);
        } catch (e) {
          throw new LocalWriteError(e);
        }
        arm(); // a slow disk is not a stalled server
        got += c.length;
        // A server that announces nothing (chunked) must not fill the disk either.
        if (maxBytes !== undefined && got > maxBytes) throw new PermanentError(`the file is larger than the limit of ${formatBytes(maxBytes)}`, undefined, 'E_TOO_LARGE');
        emit(got);
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) break;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  } catch (e) {
    res.destroy();
    if (e instanceof InterruptedError || e instanceof TransientError || e instanceof PermanentError) throw e;
    if (e instanceof LocalWriteError) throw e.cause; // disk full, permissions: not a network problem
    if (fh === undefined) throw e; // the part file could not be opened: not a network problem
    throw new TransientError(`connection lost after ${formatBytes(got)}: ${errorText(e)}`);
  } finally {
    clearTimeout(idle);
    signal?.removeEventListener('abort', onAbort);
    await fh?.close();
  }
  emit(got, true);
  if (announced !== undefined && got < announced) {
    throw new TransientError(`connection closed after ${formatBytes(got)} of ${formatBytes(announced)}`);
  }
  if (announced !== undefined && got > announced) {
    await dropPart(part);
    throw new TransientError(`the server sent more bytes than announced (${got} > ${announced})`);
  }
}
