/**
 * The submitting and managing side of the queue: add jobs, follow them to the end, and what
 * `stemkit queue status|list|retry|cancel|clean` shows and does.
 */
import type { Job, JobType, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ResolvedConfig } from '../config/schema.js';
import { InterruptedError, UsageError } from '../errors.js';
import type { Observer, ProgressEvent, ProgressStage } from '../progress.js';
import { connectRedis } from './connection.js';
import { decodeJobError, queueKeys, type JobError, type JobOutcome, type JobProgressRecord, type StemkitJobData, type WorkerRecord } from './jobs.js';

export interface QueueClient {
  readonly queue: Queue<StemkitJobData, JobOutcome>;
  readonly redis: Redis;
  readonly name: string;
  close(): Promise<void>;
}

/** Connects to the queue (UnavailableError 69 within seconds when Redis cannot be reached). */
export async function openQueue(url: string, config: Pick<ResolvedConfig, 'queue'>, observer: Observer = {}): Promise<QueueClient> {
  const redis = await connectRedis(url, 'client', observer);
  const { Queue: BullQueue } = await import('bullmq');
  const queue = new BullQueue<StemkitJobData, JobOutcome>(config.queue.name, { connection: redis });
  return {
    queue,
    redis,
    name: config.queue.name,
    async close() {
      await queue.close();
      redis.disconnect();
    },
  };
}

/**
 * Adds jobs in one round trip. Retries (config `queue.attempts`) back off exponentially from 5 s with 50 %
 * jitter; finished jobs are kept a week (failed ones a month) for `stemkit queue list`.
 * @returns the job ids, in order.
 */
export async function enqueue(client: QueueClient, jobs: readonly StemkitJobData[], config: Pick<ResolvedConfig, 'queue'>): Promise<string[]> {
  const added = await client.queue.addBulk(
    jobs.map((data) => ({
      name: data.kind,
      data,
      opts: {
        attempts: config.queue.attempts,
        backoff: { type: 'exponential', delay: 5000, jitter: 0.5 },
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: { age: 30 * 24 * 3600 },
      },
    })),
  );
  return added.map((j) => j.id!);
}

/** One job as `stemkit queue list` and `--wait` report it. */
export interface JobRecord {
  id: string;
  kind: string;
  state: string;
  /** The input (separate) or output (tts) in the job's terms. */
  target: string;
  attemptsMade: number;
  attempts: number;
  progress: JobProgressRecord | undefined;
  /** The worker that took it last (BullMQ's processedBy). */
  worker: string | undefined;
  createdAt: string;
  finishedAt: string | undefined;
  error: JobError | undefined;
  result: JobOutcome | undefined;
}

export async function jobRecord(job: Job<StemkitJobData, JobOutcome>): Promise<JobRecord> {
  const state = await job.getState();
  const data = job.data;
  const progress = typeof job.progress === 'object' && job.progress !== null ? (job.progress as unknown as JobProgressRecord) : undefined;
  return {
    id: job.id!,
    kind: data?.kind ?? job.name,
    state,
    target: data?.kind === 'tts' ? data.output : data?.input ?? '',
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    progress,
    worker: job.processedBy,
    createdAt: new Date(job.timestamp).toISOString(),
    finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : undefined,
    error: state === 'failed' || job.failedReason ? decodeJobError(job.failedReason) : undefined,
    result: state === 'completed' ? (job.returnvalue ?? undefined) : undefined,
  };
}

/**
 * Follows jobs until each has completed or failed for good, polling twice a second (robust across Redis
 * restarts, unlike a subscription). Progress the workers store is re-emitted as progress events per job.
 * @throws InterruptedError when the signal aborts (the jobs keep running on the workers).
 */
export async function followJobs(
  client: QueueClient,
  ids: readonly string[],
  observer: Observer & { onFinished?(rec: JobRecord): void; onRecord?(rec: JobRecord): void; pollMs?: number },
): Promise<JobRecord[]> {
  const final = new Map<string, JobRecord>();
  const lastProgress = new Map<string, string>();
  const pollMs = observer.pollMs ?? 500;
  while (final.size < ids.length) {
    if (observer.signal?.aborted) throw new InterruptedError();
    for (const id of ids) {
      if (final.has(id)) continue;
      const job = await client.queue.getJob(id);
      if (!job) {
        const gone: JobRecord = { id, kind: '', state: 'unknown', target: '', attemptsMade: 0, attempts: 0, progress: undefined, worker: undefined, createdAt: '', finishedAt: undefined, error: { code: 'E_JOB_GONE', exitCode: 75, message: `job ${id} is no longer in the queue (removed or cleaned)` }, result: undefined };
        final.set(id, gone);
        observer.onFinished?.(gone);
        continue;
      }
      const rec = await jobRecord(job);
      observer.onRecord?.(rec);
      const p = rec.progress;
      const sig = p ? JSON.stringify(p) : '';
      if (p && sig !== lastProgress.get(id)) {
        lastProgress.set(id, sig);
        const e: ProgressEvent = { stage: p.stage as ProgressStage, status: p.status, file: rec.target, done: p.done, total: p.total, ...(p.unit ? { unit: p.unit } : {}), ...(p.message ? { message: p.message } : {}) };
        observer.onProgress?.(e);
      }
      // A failed job with attempts left goes back to waiting/delayed: only 'failed' after the last is final.
      if (rec.state === 'completed' || rec.state === 'failed') {
        final.set(id, rec);
        observer.onFinished?.(rec);
      }
    }
    if (final.size < ids.length) await sleep(pollMs, observer.signal);
  }
  return ids.map((id) => final.get(id)!);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Job states in the order `stemkit queue status` shows them. */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'paused'] as const;

/** Counts by state and the live workers (from their heartbeats). */
export async function queueStatus(client: QueueClient): Promise<{ counts: Record<string, number>; workers: WorkerRecord[] }> {
  const counts = await client.queue.getJobCounts(...(JOB_STATES as unknown as JobType[]));
  const prefix = queueKeys(client.name).workerPrefix;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const values = keys.length > 0 ? await client.redis.mget(...keys) : [];
  const workers = values.flatMap((v) => {
    try {
      return v ? [JSON.parse(v) as WorkerRecord] : [];
    } catch {
      return [];
    }
  });
  workers.sort((a, b) => a.id.localeCompare(b.id));
  return { counts, workers };
}

/** Jobs in the given states, newest first. */
export async function listJobs(client: QueueClient, states: readonly string[], limit: number): Promise<JobRecord[]> {
  const jobs = await client.queue.getJobs(states as JobType[], 0, Math.max(0, limit - 1), false);
  const recs = await Promise.all(jobs.filter((j) => j !== undefined).map((j) => jobRecord(j as unknown as Job<StemkitJobData, JobOutcome>)));
  return recs.slice(0, limit);
}

/** What happened to each id given to retry or cancel. */
export interface ActionResult {
  id: string;
  /** e.g. 'retried', 'removed', 'cancelling', 'not found', 'not failed (completed)'. */
  outcome: string;
  ok: boolean;
}

/** Applies `act` to each job that exists (in its current state); unknown ids are reported 'not found'. */
async function eachJob(
  client: QueueClient,
  ids: readonly string[],
  act: (job: Job<StemkitJobData, JobOutcome>, state: string) => Promise<Omit<ActionResult, 'id'>>,
): Promise<ActionResult[]> {
  const out: ActionResult[] = [];
  for (const id of ids) {
    const job = await client.queue.getJob(id);
    out.push({ id, ...(job ? await act(job, await job.getState()) : { outcome: 'not found', ok: false }) });
  }
  return out;
}

/** Puts failed jobs back in the queue (a fresh set of attempts). */
export function retryJobs(client: QueueClient, ids: readonly string[]): Promise<ActionResult[]> {
  return eachJob(client, ids, async (job, state) => {
    if (state !== 'failed') return { outcome: `not failed (${state})`, ok: false };
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return { outcome: 'retried', ok: true };
  });
}

/**
 * Cancels jobs: waiting or delayed ones are removed; running ones are asked to stop (the worker aborts the
 * job at its next block, releases its slots and fails it with E_CANCELLED, never retried).
 */
export function cancelJobs(client: QueueClient, ids: readonly string[]): Promise<ActionResult[]> {
  const cancelKey = queueKeys(client.name).cancel;
  return eachJob(client, ids, async (job, state) => {
    if (state === 'active') {
      await client.redis.sadd(cancelKey, job.id!);
      return { outcome: 'cancelling (running)', ok: true };
    }
    if (state === 'completed' || state === 'failed') return { outcome: `already ${state}`, ok: false };
    await job.remove();
    return { outcome: `removed (was ${state})`, ok: true };
  });
}

/** Removes finished jobs older than `olderThanSec` from the queue's history. @returns how many. */
export async function cleanJobs(client: QueueClient, state: 'completed' | 'failed', olderThanSec: number): Promise<number> {
  if (!Number.isFinite(olderThanSec) || olderThanSec < 0) throw new UsageError('the age must be a number of seconds ≥ 0');
  let removed = 0;
  for (;;) {
    const ids = await client.queue.clean(olderThanSec * 1000, 1000, state);
    removed += ids.length;
    if (ids.length < 1000) return removed;
  }
}
