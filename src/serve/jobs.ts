/**
 * The server's jobs: a bounded FIFO queue in front of the machine's job slots (the same cross-process
 * slots CLI runs take, src/jobs/semaphore.ts), the run of each job in an executor, cancel, retention of
 * finished jobs' files, and the shutdown sequence.
 *
 * Job state lives in memory only: a restart forgets every job, and the server's private work folder
 * (uploads and outputs) is removed when it stops, so nothing of a forgotten job stays on disk.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ResolvedConfig } from '../config/schema.js';
import { BusyError, InterruptedError, StemkitError, UnavailableError } from '../errors.js';
import { acquireSlots, type PoolName, type SlotLease } from '../jobs/semaphore.js';
import type { LogEvent, ProgressEvent } from '../progress.js';
import type { ExecutorPool, TaskOutcome } from './pool.js';
import type { JobError, SeparateTask, TaskResult, TtsTask } from './protocol.js';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobKind = 'separate' | 'tts';

/** A task as submitted, before it has an id. */
export type TaskSpec = Omit<SeparateTask, 'id'> | Omit<TtsTask, 'id'>;

export interface Job {
  id: string;
  kind: JobKind;
  status: JobStatus;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** The job's private folder (upload and outputs). */
  dir: string;
  pools: PoolName[];
  /** The last event of each progress stage (the same typed events the CLI renders). */
  progress: Partial<Record<ProgressEvent['stage'], ProgressEvent>>;
  /** Warnings and info lines (debug lines are dropped). */
  logs: LogEvent[];
  /** name → absolute path, for GET /v1/jobs/:id/files/:name. */
  files: Record<string, string>;
  result?: TaskResult;
  error?: JobError;
  /** Seconds waited for a slot. */
  waitedSec?: number;
  task: TaskSpec;
  abort: AbortController;
  cancel?: () => void;
  finished: Promise<void>;
  markFinished: () => void;
}

export interface JobEvents {
  onFinished?(job: Job): void;
  onRejected?(kind: JobKind): void;
}

/** Logs kept per job, so a chatty job cannot grow the server's memory. */
const MAX_LOGS = 50;

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private dispatching = false;
  private accepting = true;
  private sweeper: NodeJS.Timeout | undefined;
  /** Seconds of recent jobs (run time), for Retry-After estimates. */
  private recent: number[] = [];

  constructor(
    private readonly config: ResolvedConfig,
    private readonly pool: Pick<ExecutorPool, 'run'>,
    readonly workDir: string,
    private readonly events: JobEvents = {},
  ) {
    const every = Math.max(1, Math.min(config.serve.retention, 60)) * 1000;
    this.sweeper = setInterval(() => void this.sweep(), every);
    this.sweeper.unref();
  }

  /** A new job folder (for an upload before the job exists). */
  async newJobDir(): Promise<{ id: string; dir: string }> {
    const id = randomUUID();
    const dir = join(this.workDir, id);
    await mkdir(join(dir, 'out'), { recursive: true });
    return { id, dir };
  }

  /**
   * Admission: throws when the server is shutting down (503) or the wait queue is full (429 with a
   * retry estimate). Checked before an upload is read, and again at submit. `waiting`: the jobs waiting
   * (default this server's queue; with `serve --queue`, the shared queue's waiting count).
   */
  admit(kind: JobKind, waiting = this.queue.length): void {
    if (!this.accepting) throw new UnavailableError('the server is shutting down', { code: 'E_SHUTTING_DOWN', hint: 'retry against another instance, or after the restart' });
    if (waiting >= this.config.serve.maxQueued) {
      this.events.onRejected?.(kind);
      throw new BusyError(`busy: ${this.running().length} job(s) running and ${waiting} waiting (serve.maxQueued ${this.config.serve.maxQueued})`, {
        code: 'E_BUSY',
        hint: 'retry after the time in Retry-After, with backoff',
        details: { retryAfter: this.retryAfterSec() },
      });
    }
  }

  /** Seconds until a queue place is likely free: mean recent job time × queued jobs ÷ slots, 1..600. */
  retryAfterSec(): number {
    const mean = this.recent.length > 0 ? this.recent.reduce((a, b) => a + b, 0) / this.recent.length : 5;
    const slots = Math.max(1, this.config.maxConcurrentHeavyTasks);
    return Math.min(600, Math.max(1, Math.ceil((mean * Math.max(1, this.queue.length)) / slots)));
  }

  submit(id: string, dir: string, kind: JobKind, task: TaskSpec, pools: PoolName[]): Job {
    this.admit(kind);
    let markFinished!: () => void;
    const finished = new Promise<void>((r) => (markFinished = r));
    const job: Job = { id, kind, status: 'queued', createdAt: Date.now(), dir, pools, progress: {}, logs: [], files: {}, task, abort: new AbortController(), finished, markFinished };
    this.jobs.set(id, job);
    this.queue.push(job);
    void this.dispatch();
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  running(): Job[] {
    return [...this.jobs.values()].filter((j) => j.status === 'running');
  }

  queued(): number {
    return this.queue.length;
  }

  all(): Job[] {
    return [...this.jobs.values()];
  }

  /** Cancels a queued or running job (its slots are released and its files removed). False if it had finished. */
  cancel(id: string): boolean {
    const job = this.jobs.get(id);
    if (!job || isFinal(job.status)) return false;
    job.abort.abort();
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      void this.finish(job, { ok: false, error: errorOf(new InterruptedError('the job was cancelled')) });
    } else job.cancel?.();
    return true;
  }

  /** Resolves when the job has finished, or after `seconds`. */
  async waitFor(job: Job, seconds: number): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([job.finished, new Promise<void>((r) => (t = setTimeout(r, seconds * 1000)))]);
    clearTimeout(t);
  }

  /**
   * Stops accepting jobs, cancels the queued ones, gives the running ones `graceSec` to finish and cancels
   * those still running then (or at once when `now` aborts). Returns true when it had to cancel a running job.
   */
  async shutdown(graceSec: number, now?: AbortSignal): Promise<boolean> {
    this.accepting = false;
    for (const j of [...this.queue]) this.cancel(j.id);
    const running = this.running();
    if (running.length === 0) return false;
    let t: NodeJS.Timeout | undefined;
    const all = Promise.all(running.map((j) => j.finished));
    const onNow = (r: (v: boolean) => void): void => {
      if (now?.aborted) r(false);
      now?.addEventListener('abort', () => r(false), { once: true });
    };
    const inTime = await Promise.race([
      all.then(() => true),
      new Promise<boolean>((r) => {
        t = setTimeout(() => r(false), graceSec * 1000);
        onNow(r);
      }),
    ]);
    clearTimeout(t);
    if (inTime) return false;
    for (const j of this.running()) this.cancel(j.id);
    await all;
    return true;
  }

  /** Removes every job's files and the work folder. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await rm(this.workDir, { recursive: true, force: true });
  }

  private async dispatch(): Promise<void> {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      // Strictly FIFO: only the head of the queue waits for slots.
      while (this.queue.length > 0) {
        const job = this.queue[0]!;
        let lease: SlotLease;
        try {
          lease = await acquireSlots({
            pools: job.pools,
            config: this.config,
            wait: true,
            command: `stemkit serve (${job.kind} job ${job.id})`,
            signal: job.abort.signal,
            onProgress: (e) => (job.progress[e.stage] = e),
          });
        } catch (e) {
          if (this.queue[0] === job) this.queue.shift();
          if (!isFinal(job.status)) void this.finish(job, { ok: false, error: errorOf(e) });
          continue;
        }
        if (job.abort.signal.aborted) {
          // Cancelled while it waited: cancel() already took it off the queue.
          await lease.release();
          continue;
        }
        this.queue.shift();
        void this.start(job, lease);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private async start(job: Job, lease: SlotLease): Promise<void> {
    job.status = 'running';
    job.startedAt = Date.now();
    job.waitedSec = lease.waitedSec;
    const run = this.pool.run({ ...job.task, id: job.id } as SeparateTask | TtsTask, {
      onProgress: (e) => (job.progress[e.stage] = e),
      onLog: (e) => {
        if (e.level !== 'debug' && job.logs.length < MAX_LOGS) job.logs.push(e);
      },
      onQueued: (queued) => {
        if (!isFinal(job.status)) job.status = queued ? 'queued' : 'running';
      },
    });
    job.cancel = run.cancel;
    let outcome: TaskOutcome;
    try {
      outcome = await run.done;
    } finally {
      await lease.release();
    }
    if (job.abort.signal.aborted && outcome.ok) outcome = { ok: false, error: errorOf(new InterruptedError('the job was cancelled')) };
    await this.finish(job, outcome);
  }

  private async finish(job: Job, outcome: TaskOutcome): Promise<void> {
    let error = outcome.ok ? undefined : outcome.error;
    if (outcome.ok) {
      job.result = outcome.value;
      const r = outcome.value;
      // A separation file failure comes back as a result with status 'failed', not as a thrown error.
      if (r.kind === 'separate' && r.result.status === 'failed') error = r.result.error ?? { code: 'E_INTERNAL', message: 'failed', exitCode: 70 };
    }
    if (error) {
      job.error = error;
      job.status = error.code === 'E_INTERRUPTED' ? 'cancelled' : 'failed';
      // Nothing partial stays behind: the job's folder goes with a failed or cancelled job.
      await rm(job.dir, { recursive: true, force: true }).catch(() => undefined);
    } else {
      job.status = 'succeeded';
      const r = outcome.ok ? outcome.value : undefined;
      const outputs = r?.kind === 'separate' ? Object.values(r.result.outputs) : r ? [r.result.output] : [];
      for (const p of outputs) job.files[basename(p)] = p;
      // The upload is no longer needed once its stems exist.
      if (job.kind === 'separate' && 'input' in job.task && job.task.input.startsWith(job.dir)) await rm(job.task.input, { force: true }).catch(() => undefined);
    }
    job.finishedAt = Date.now();
    if (job.startedAt !== undefined) {
      this.recent.push((job.finishedAt - job.startedAt) / 1000);
      if (this.recent.length > 20) this.recent.shift();
    }
    delete job.cancel;
    this.events.onFinished?.(job);
    job.markFinished();
  }

  private async sweep(): Promise<void> {
    const limit = Date.now() - this.config.serve.retention * 1000;
    for (const job of [...this.jobs.values()]) {
      if (job.finishedAt !== undefined && job.finishedAt <= limit) {
        this.jobs.delete(job.id);
        await rm(job.dir, { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }
}

export function isFinal(s: JobStatus): boolean {
  return s === 'succeeded' || s === 'failed' || s === 'cancelled';
}

export function errorOf(e: unknown): JobError {
  if (e instanceof StemkitError) return { code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode };
  return { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e), exitCode: 70 };
}
