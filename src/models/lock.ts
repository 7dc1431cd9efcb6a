/**
 * A cross-process lock per model folder: `<dir>/.lock`, created with O_EXCL and holding
 * `{ pid, host, since }`. A lock whose process is gone (same host) is stale and reclaimed; a second process
 * pulling the same model waits for the first and then finds the model installed.
 */
import { hostname } from 'node:os';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BusyError, OutputError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';

/** The lock file inside a model's folder. */
export const LOCK_NAME = '.lock';

export interface LockOptions extends Observer {
  /** Label for the wait message (the model id). */
  label: string;
  /** Give up waiting after this long (default 30 min; 0 = do not wait) with BusyError (75). */
  timeoutMs?: number;
  /** Poll interval while waiting (default 250 ms). */
  pollMs?: number;
}

export interface HeldLock {
  path: string;
  release(): Promise<void>;
}

interface LockContent {
  pid: number;
  host: string;
  since: string;
}

/**
 * Turns a file-system error while writing the cache into OutputError (73) naming the folder and the fix;
 * anything else is returned unchanged.
 */
export function cacheWriteError(e: unknown, dir: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new OutputError(`cannot write to the model cache ${dir} (${code})`, {
      code: 'E_CACHE_WRITE',
      cause: e,
      hint: 'set STEMKIT_CACHE_DIR (or cacheDir in the config) to a writable folder',
    });
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new OutputError(`no space left for the model cache ${dir}`, {
      code: 'E_CACHE_FULL',
      cause: e,
      hint: 'free some space (`stemkit models rm <id>`), or point STEMKIT_CACHE_DIR at a larger disk; a partial download resumes later',
    });
  }
  return e;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(path: string): Promise<{ raw: string; content: LockContent | undefined } | undefined> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const c = JSON.parse(raw) as LockContent;
    return { raw, content: typeof c.pid === 'number' ? c : undefined };
  } catch {
    return { raw, content: undefined };
  }
}

/** How long a lock file may stay empty/unparseable (its creator died between create and write) before it is stale. */
const GARBLED_GRACE_MS = 5_000;

/**
 * Takes the lock on `dir`, waiting (with a 'wait' progress event) while another live process holds it.
 * @throws BusyError (75) after `timeoutMs`; InterruptedError when the signal aborts.
 */
export async function acquireModelLock(dir: string, opts: LockOptions): Promise<HeldLock> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw cacheWriteError(e, dir);
  }
  const path = join(dir, LOCK_NAME);
  const host = hostname();
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  const pollMs = opts.pollMs ?? 250;
  let announced = false;
  let garbledSince: number | undefined;
  for (;;) {
    throwIfAborted(opts.signal);
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(JSON.stringify({ pid: process.pid, host, since: new Date().toISOString() } satisfies LockContent));
      } finally {
        await fh.close();
      }
      if (announced) opts.onProgress?.({ stage: 'wait', status: 'done', file: opts.label, done: 1, total: 1 });
      return {
        path,
        release: async () => {
          // Only remove our own lock (a stale reclaim by someone else must not be undone).
          const cur = await readLock(path);
          if (cur?.content?.pid === process.pid && cur.content.host === host) await unlink(path).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw cacheWriteError(e, dir);
    }
    const cur = await readLock(path);
    if (cur) {
      let stale = false;
      if (cur.content) {
        garbledSince = undefined;
        stale = cur.content.host === host && !alive(cur.content.pid);
      } else {
        garbledSince ??= Date.now();
        stale = Date.now() - garbledSince > GARBLED_GRACE_MS;
      }
      if (stale) {
        // Re-read just before removing so a lock that was reclaimed and re-created meanwhile is left alone.
        const again = await readLock(path);
        if (again?.raw === cur.raw) {
          await unlink(path).catch(() => undefined);
          opts.onLog?.({ level: 'info', message: `removed a stale download lock left by pid ${cur.content?.pid ?? '?'}`, file: opts.label });
        }
        continue;
      }
      if (!announced) {
        announced = true;
        const who = cur.content ? `pid ${cur.content.pid}${cur.content.host === host ? '' : ` on ${cur.content.host}`}` : 'another process';
        opts.onProgress?.({ stage: 'wait', status: 'start', file: opts.label, done: 0, total: 1, message: `waiting for ${who} to finish installing ${opts.label}` });
      }
    }
    if (Date.now() - started >= timeoutMs) {
      throw new BusyError(`another process is installing ${opts.label} (lock ${path})`, {
        code: 'E_MODEL_LOCKED',
        hint: `retry later, or delete ${path} if no stemkit process is running`,
      });
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, pollMs);
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }
}
