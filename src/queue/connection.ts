/**
 * Redis connections for the queue (ioredis, which BullMQ is built on). Workers wait for Redis forever and
 * reconnect with capped, jittered backoff; submitters and `stemkit queue` fail within seconds with exit 69.
 * URLs may carry a password (`redis://:secret@host`) and TLS (`rediss://`); messages show them redacted.
 */
import type { Redis } from 'ioredis';
import { UnavailableError, UsageError } from '../errors.js';
import type { Observer } from '../progress.js';
import { redactUrl } from '../util/redact.js';

/** Delay before reconnect attempt `times` (1-based): 0.5 s doubling to 30 s, with ±50 % jitter so a farm does not reconnect in lockstep. */
export function reconnectDelayMs(times: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(Math.max(times - 1, 0), 6));
  return Math.round(base * (0.5 + random()));
}

/** Checks the URL's form. @throws UsageError (64) naming the expected form (password redacted). */
export function checkQueueUrl(url: string | undefined): string {
  if (url === undefined || url.trim() === '') {
    throw new UsageError('no queue URL given', { code: 'E_NO_QUEUE', hint: 'pass --queue redis://host:6379, or set STEMKIT_QUEUE_URL or "queue.url" in the config' });
  }
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '' || !/^(\/\d*)?$/.test(u.pathname)) {
    throw new UsageError(`not a Redis URL: ${redactUrl(url)}`, { code: 'E_QUEUE_URL', hint: 'use redis://[:password@]host[:port][/db], or rediss:// for TLS' });
  }
  return url;
}

/**
 * Opens a connection and waits until Redis answers.
 * - `worker`: commands wait through outages (maxRetriesPerRequest null, as BullMQ workers require) and the
 *   connection retries forever; the first connect also waits, logging once.
 * - `client`: gives up after a few tries (5 s each) with UnavailableError (69).
 */
export async function connectRedis(url: string, role: 'worker' | 'client', observer: Observer = {}): Promise<Redis> {
  checkQueueUrl(url);
  const { Redis: RedisClient } = await import('ioredis');
  const shown = redactUrl(url);
  const opts = {
    lazyConnect: true,
    connectionName: `stemkit-${role}`,
    connectTimeout: 5000,
    ...(role === 'worker'
      ? { maxRetriesPerRequest: null, retryStrategy: (times: number) => reconnectDelayMs(times) }
      : { maxRetriesPerRequest: 2, retryStrategy: (times: number) => (times > 3 ? null : 250 * times) }),
  } as const;
  const redis = new RedisClient(url, opts);
  let down = false;
  redis.on('error', (e: Error) => {
    if (!down) observer.onLog?.({ level: 'warn', message: `Redis at ${shown}: ${e.message}${role === 'worker' ? '; reconnecting' : ''}` });
    down = true;
  });
  redis.on('ready', () => {
    if (down) observer.onLog?.({ level: 'info', message: `Redis at ${shown} is back` });
    down = false;
  });
  try {
    await redis.connect();
  } catch (e) {
    if (role === 'worker') {
      // connect() rejects on the first failure, but the retry strategy keeps trying: wait for 'ready'.
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(new UnavailableError(`Redis at ${shown} did not come up`, { code: 'E_QUEUE_UNAVAILABLE' }));
        observer.signal?.addEventListener('abort', onAbort, { once: true });
        redis.once('ready', () => {
          observer.signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      }).catch((err: unknown) => {
        redis.disconnect();
        throw err;
      });
      return redis;
    }
    redis.disconnect();
    throw new UnavailableError(`cannot reach the queue at ${shown}: ${(e as Error).message}`, {
      code: 'E_QUEUE_UNAVAILABLE',
      hint: 'check that Redis runs there and the URL (host, port, password, rediss:// for TLS)',
      cause: e,
    });
  }
  return redis;
}
