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
  constructor(message: string, readonly status?: number) {
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
): Promise<{ res: IncomingMessage; url: string }> {
  let current = url;
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
    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume();
      if (hop >= opts.maxRedirects) throw new PermanentError(`too many redirects (more than ${opts.maxRedirects})`);
      const next = new URL(res.headers.location, u);
      if (u.protocol === 'https:' && next.protocol === 'http:') throw new PermanentError(`refusing a redirect from https to http (${next.href})`);
      current = next.href;
      continue;
    }
    return { res, url: current };
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
      hint: `check the network or set a mirror (STEMKIT_MODEL_MIRROR); cache: ${part.slice(0, -basename(part).length)}.${alt}`,
      details: { url: req.url, finalUrl, dest: req.dest, partial: part, ...(status !== undefined ? { status } : {}) },
    });
  };

  let finalUrl = req.url;
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(opts.signal);
    try {
      let have = await fileSize(part);
      const resumed = have > 0;
      if (req.size !== undefined && have > req.size) {
        // Longer than the file can be: not resumable.
        await dropPart(part);
        have = 0;
      }
      if (req.size === undefined || have < req.size) {
        const headers: Record<string, string> = {};
        if (have > 0) {
          const meta = await readPartMeta(part);
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
        const { res, url } = await get(req.url, headers, cfg);
        finalUrl = url;
        const status = res.statusCode ?? 0;
        if (status === 200 || (status === 206 && have === 0)) {
          const meta: PartMeta = { url: req.url };
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
        if (announced !== undefined && req.size !== undefined && announced !== req.size) {
          res.destroy();
          throw new PermanentError(`the server announces ${announced} bytes but the registry expects ${req.size}`);
        }
        if (announced !== undefined) total = announced;
        await receive(res, part, start, announced, idleTimeoutMs, opts.signal, emit);
      }
      const size = await fileSize(part);
      if (req.size !== undefined && size !== req.size) {
        await dropPart(part);
        throw new PermanentError(`got ${size} bytes, expected ${req.size}`);
      }
      const sha256 = await sha256File(part, opts.signal);
      if (req.sha256 !== undefined && sha256 !== req.sha256) {
        // A complete body with the wrong checksum cannot be repaired by resuming: drop it. When old bytes from an
        // earlier attempt were part of it, one fresh download may still succeed.
        await dropPart(part);
        if (resumed && attempt < retries) throw new TransientError(`checksum mismatch after resuming; downloading again from the start`);
        throw fail(`checksum mismatch: got sha256 ${sha256}, expected ${req.sha256}`, finalUrl, 'E_CHECKSUM');
      }
      await rename(part, req.dest);
      await rm(part + META_SUFFIX, { force: true });
      if (total === 0) total = size;
      emit(size, true);
      opts.onProgress?.({ stage: 'download', status: 'done', file: label, done: Math.max(size, reported), total, unit: 'bytes' });
      return { size, sha256, finalUrl, resumedFrom };
    } catch (e) {
      if (e instanceof InterruptedError || opts.signal?.aborted) throw e instanceof InterruptedError ? e : new InterruptedError();
      if (e instanceof UnavailableError) throw e;
      if (e instanceof PermanentError) throw fail(e.message, finalUrl, e.status === 404 || e.status === 410 ? 'E_NOT_FOUND' : 'E_DOWNLOAD', e.status);
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
    if (e instanceof InterruptedError || e instanceof TransientError) throw e;
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
