/**
 * `stemkit worker`: a BullMQ worker that runs queued separation and TTS jobs in this process, through the
 * same library calls as the CLI (loadSeparator/separateFile, loadVoiceModel/synthesizeToSink) and under the
 * same cross-process job slots (src/jobs/semaphore.ts), so a machine never runs more than its profile
 * allows, whoever started the work.
 *
 * Where jobs run: in `stemkit serve`'s executor processes (src/serve/pool.ts), one per concurrent job, which
 * keep their models loaded between jobs. Not in this process: a job's DSP is synchronous JavaScript, and
 * in-process it blocked BullMQ's lock renewals (a busy machine's jobs looked stalled) and shared one core
 * between two jobs. Not a fresh process per job: that pays node start-up plus a model load every time
 * (scripts/bench-queue.mjs). Not BullMQ's sandboxed processors: their reused children are known to grow,
 * and they know nothing of warm models or of stemkit's cancel.
 *
 * Faults: input errors (exit 64/65/66) fail at once (UnrecoverableError); everything else is retried by
 * BullMQ with exponential backoff and jitter; a job over its time limit (`queue.jobTimeoutSec` of the
 * submitter, counted from when it has its slots) is aborted, fails and gives
 * back its slots; a killed worker's jobs are found stalled by the others after `queue.stallSec`. Outputs
 * are written to temp files and renamed, so a job that runs twice never leaves a torn file.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rm, mkdir } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Job, Worker } from 'bullmq';
import type { ResolvedConfig } from '../config/schema.js';
import { InputError, InternalError, InterruptedError, StemkitError, UnavailableError, UsageError } from '../errors.js';
import type { Observer, ProgressEvent } from '../progress.js';
import { acquireSlots, poolsForJob, resolveRuntimeDir, type SlotLease } from '../jobs/semaphore.js';
import { threadsPerWorker } from '../jobs/batch.js';
import type { SeparatorSpec } from '../separate/separate.js';
import { ExecutorPool, defaultMaxLoadedBytes } from '../serve/pool.js';
import type { SeparateTask, TaskResult, TtsTask } from '../serve/protocol.js';
import { connectRedis } from './connection.js';
import { PERMANENT_EXIT_CODES, describeError, encodeJobError, queueKeys, type JobError, type JobOutcome, type JobProgressRecord, type SeparateJobData, type StemkitJobData, type TtsJobData, type WorkerRecord } from './jobs.js';
import { checkInsideRoots, localPath, unmapPath } from './paths.js';

/** One line of the worker's story, for the CLI's output and the tests. */
export interface WorkerJobEvent {
  event: 'start' | 'done' | 'failed' | 'handed-back';
  id: string;
  kind: string;
  /** The job's input (separate) or output (tts), in the job's terms. */
  target: string;
  /** 1 for the first run. */
  attempt: number;
  outcome?: JobOutcome;
  error?: JobError;
  /** For 'failed': whether BullMQ will run it again. */
  willRetry?: boolean;
}

export interface StartWorkerOptions extends Pick<Observer, 'onLog'> {
  config: ResolvedConfig;
  url: string;
  /** Jobs at once; default the profile's heavy limit. */
  concurrency?: number;
  onJob?(e: WorkerJobEvent): void;
}

export interface RunningWorker {
  readonly id: string;
  readonly concurrency: number;
  readonly roots: readonly string[];
  /**
   * Stops taking jobs. Running jobs get `drainSec` seconds to finish; the rest are handed back to the
   * queue (waiting again, for any worker). Then releases the models and connections.
   */
  close(drainSec: number): Promise<void>;
}

type StopReason = 'timeout' | 'cancel' | 'hand-back';

interface Running {
  job: Job<StemkitJobData, JobOutcome>;
  ctrl: AbortController;
  stop?: StopReason;
  since: number;
  /** The time-limit timer, started once the job has its slots (waiting for a busy machine is not running). */
  limit?: NodeJS.Timeout;
  limitSec: number;
}

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/** Starts a worker on `opts.url`; resolves once it is connected and taking jobs. */
export async function startWorker(opts: StartWorkerOptions): Promise<RunningWorker> {
  const { config } = opts;
  const q = config.queue;
  const roots = q.roots ?? [process.cwd()];
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? config.maxConcurrentHeavyTasks));
  const threads = threadsPerWorker(config.cpuThreads, concurrency);
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const keys = queueKeys(q.name);
  const log = opts.onLog ?? (() => undefined);
  const redis = await connectRedis(opts.url, 'worker', { onLog: log });
  const { Worker: BullWorker, UnrecoverableError, WaitingError } = await import('bullmq');

  // Jobs run in `stemkit serve`'s executor processes (one per concurrent job, models kept warm there), so this
  // process's event loop stays free for BullMQ's lock renewals, heartbeats and cancels, and the DSP of two jobs
  // runs on two cores. Each executor sees the per-job thread count as its CPU budget.
  const pool = new ExecutorPool({ ...config, cpuThreads: threads }, concurrency, config.serve.maxLoadedBytes ?? defaultMaxLoadedBytes());
  await pool.start();
  const running = new Map<string, Running>();
  let done = 0;
  let failed = 0;
  let closing = false;
  const startedAt = new Date().toISOString();

  // Also how soon a `stemkit queue cancel` reaches a running job.
  const heartbeatMs = Math.max(200, Math.min(1000, (q.stallSec * 1000) / 3));
  const beat = async (): Promise<void> => {
    const rec: WorkerRecord = {
      id,
      host: hostname(),
      pid: process.pid,
      profile: config.profile,
      device: config.device,
      cpuThreads: config.cpuThreads,
      limits: { heavy: config.maxConcurrentHeavyTasks, tts: config.maxConcurrentTts, video: config.maxConcurrentVideo },
      concurrency,
      runtimeDir: resolveRuntimeDir(config),
      startedAt,
      active: [...running.values()].map((r) => ({ id: r.job.id!, kind: r.job.data.kind, since: new Date(r.since).toISOString() })),
      done,
      failed,
      closing,
    };
    await redis.set(keys.workerPrefix + id, JSON.stringify(rec), 'PX', heartbeatMs * 3);
    // `stemkit queue cancel` of a running job: stop it here (also covers a cancel sent while we were offline).
    const ids = [...running.keys()];
    if (ids.length > 0) {
      const flags = await redis.smismember(keys.cancel, ...ids);
      ids.forEach((jid, k) => {
        if (flags[k] === 1) stop(jid, 'cancel');
      });
    }
  };
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    // One beat at a time: during an outage the commands wait for the reconnect instead of piling up.
    beating = beating.then(beat).catch(() => undefined);
  }, heartbeatMs);

  const stop = (jobId: string, why: StopReason): void => {
    const r = running.get(jobId);
    if (!r || r.stop) return;
    r.stop = why;
    r.ctrl.abort(new InterruptedError(why === 'timeout' ? 'time limit reached' : why === 'cancel' ? 'cancelled' : 'handed back'));
  };

  const progressOf = (job: Job<StemkitJobData, JobOutcome>): ((e: ProgressEvent) => void) => {
    let last = 0;
    return (e) => {
      const now = Date.now();
      // At most two updates a second (each is a Redis round trip), but every stage start and end.
      if (e.status === 'progress' && now - last < 500) return;
      last = now;
      const rec: JobProgressRecord = { stage: e.stage, status: e.status, done: e.done, total: e.total, ...(e.unit ? { unit: e.unit } : {}), ...(e.message ? { message: e.message } : {}) };
      job.updateProgress(rec as unknown as object).catch(() => undefined);
    };
  };

  const takeSlots = async (pools: Parameters<typeof poolsForJob>[0], job: Job<StemkitJobData, JobOutcome>, target: string, signal: AbortSignal): Promise<SlotLease> => {
    const lease = await acquireSlots({ pools: poolsForJob(pools), config, wait: true, signal, command: `stemkit worker: job ${job.id} ${basename(target)}`, file: target, onLog: log });
    const run = running.get(job.id!);
    if (run && !run.limit) run.limit = setTimeout(() => stop(job.id!, 'timeout'), run.limitSec * 1000);
    return lease;
  };

  const outcomeOf = (kind: JobOutcome['kind'], lease: SlotLease, released: number, r: Omit<JobOutcome, 'kind' | 'worker' | 'slots'>): JobOutcome => ({
    kind,
    ...r,
    worker: { host: hostname(), pid: process.pid, id },
    slots: { acquiredAt: lease.acquiredAt, releasedAt: released, waitedSec: lease.waitedSec },
  });

  async function runSeparate(job: Job<StemkitJobData, JobOutcome>, data: SeparateJobData, signal: AbortSignal): Promise<JobOutcome> {
    const map = q.pathMap;
    let input: string;
    let downloaded: string | undefined;
    if (isUrl(data.input)) {
      downloaded = join(config.cacheDir, 'queue-inputs', `${job.id}-${randomBytes(4).toString('hex')}`);
      input = await downloadInput(data.input, downloaded, config, signal, progressOf(job));
    } else {
      input = await localPath(data.input, 'input', map, roots);
    }
    try {
      if (data.file.outDir === undefined) throw new UsageError('the job names no output folder', { code: 'E_BAD_JOB' });
      const outDir = await localPath(data.file.outDir, 'output folder', map, roots);
      const spec: SeparatorSpec = { ...data.spec, threads };
      if (spec.model !== undefined && /\.onnx$|[/\\]/i.test(spec.model)) spec.model = await localPath(spec.model, 'model', map, roots);
      if (spec.modelPath !== undefined) spec.modelPath = await localPath(spec.modelPath, 'model', map, roots);
      const { isVideoPath } = await import('../audio/open.js');
      const lease = await takeSlots({ video: isVideoPath(input) }, job, data.input, signal);
      let released = 0;
      try {
        const { plannedOutputs } = await import('../separate/separate.js');
        const fileOpts = { ...data.file, outDir };
        // The stems are known only to the executor; a stand-in stem shows where this template writes.
        await checkInsideRoots(Object.values(plannedOutputs(input, ['stem'], 'model', fileOpts))[0]!, 'output', roots);
        const value = await runTask(job, signal, { type: 'separate', id: job.id!, key: JSON.stringify(['separate', spec]), spec, input, file: fileOpts });
        if (value.kind !== 'separate') throw new InternalError('the executor answered a separation with another result');
        const r = value.result;
        if (r.status === 'failed') {
          const e = r.error!;
          throw new StemkitError(e.code, e.exitCode as StemkitError['exitCode'], e.message, e.hint !== undefined ? { hint: e.hint } : {});
        }
        // Stamped before the slot files go, so the reported hold never ends after the real one.
        released = Date.now();
        await lease.release();
        const outputs = Object.fromEntries(Object.entries(r.outputs).map(([k, p]) => [k, unmapPath(p, map)]));
        return outcomeOf('separate', lease, released, { status: r.status === 'skipped' ? 'skipped' : 'ok', outputs, times: { ...r.times }, durationSec: r.durationSec, provider: r.provider, threads: r.threads, warnings: r.warnings });
      } finally {
        if (released === 0) await lease.release();
      }
    } finally {
      if (downloaded) await rm(downloaded, { recursive: true, force: true });
    }
  }

  async function runTts(job: Job<StemkitJobData, JobOutcome>, data: TtsJobData, signal: AbortSignal): Promise<JobOutcome> {
    const output = await localPath(data.output, 'output', q.pathMap, roots);
    const voicesPath = data.voices !== undefined ? await localPath(data.voices, 'voices', q.pathMap, roots) : undefined;
    const modelSpec = /\.onnx$|[/\\]/i.test(data.model) && !data.model.startsWith('piper:') ? await localPath(data.model, 'model', q.pathMap, roots) : data.model;
    const lease = await takeSlots({ tts: true }, job, data.output, signal);
    let released = 0;
    try {
      const { formatFromPath } = await import('../audio/open.js');
      await mkdir(dirname(output), { recursive: true });
      await removeStaleTemps([output]);
      const load = { ...(voicesPath !== undefined ? { voices: voicesPath } : {}), ...(data.precision !== undefined ? { precision: data.precision } : {}) };
      const value = await runTask(job, signal, {
        type: 'tts',
        id: job.id!,
        key: JSON.stringify(['tts', modelSpec, load]),
        model: modelSpec,
        load,
        text: data.text,
        voice: data.options,
        output,
        format: formatFromPath(output) ?? 'wav',
        ...(data.bits ? { bits: data.bits } : {}),
      });
      if (value.kind !== 'tts') throw new InternalError('the executor answered a TTS job with another result');
      const r = value.result;
      released = Date.now();
      await lease.release();
      return outcomeOf('tts', lease, released, { status: 'ok', outputs: { audio: data.output }, times: { ...r.times }, durationSec: r.durationSec, provider: r.provider, threads: r.threads, warnings: [] });
    } finally {
      if (released === 0) await lease.release();
    }
  }

  /** Runs a task on an executor; the job's signal (time limit, cancel, hand-back) cancels it there. */
  async function runTask(job: Job<StemkitJobData, JobOutcome>, signal: AbortSignal, task: SeparateTask | TtsTask): Promise<TaskResult> {
    const t = pool.run(task, { onProgress: progressOf(job), onLog: log });
    if (signal.aborted) t.cancel();
    else signal.addEventListener('abort', () => t.cancel(), { once: true });
    const outcome = await t.done;
    if (outcome.ok) return outcome.value;
    const e = outcome.error;
    throw new StemkitError(e.code, e.exitCode as StemkitError['exitCode'], e.message, e.hint !== undefined ? { hint: e.hint } : {});
  }

  const emit = (e: WorkerJobEvent): void => opts.onJob?.(e);

  const processor = async (job: Job<StemkitJobData, JobOutcome>, token?: string): Promise<JobOutcome> => {
    const jobId = job.id!;
    const data = job.data;
    const target = data.kind === 'tts' ? data.output : data.input;
    const attempt = job.attemptsMade + 1;
    const limitSec = typeof data.timeoutSec === 'number' && data.timeoutSec > 0 ? data.timeoutSec : q.jobTimeoutSec;
    const run: Running = { job, ctrl: new AbortController(), since: Date.now(), limitSec };
    running.set(jobId, run);
    emit({ event: 'start', id: jobId, kind: data.kind, target, attempt });
    try {
      if (data.v !== 1 || (data.kind !== 'separate' && data.kind !== 'tts')) {
        throw new UsageError(`job ${jobId} is not a stemkit job this version understands`, { code: 'E_BAD_JOB', hint: 'submit it with the same stemkit version as the workers' });
      }
      if ((await redis.sismember(keys.cancel, jobId)) === 1) stop(jobId, 'cancel');
      if (run.ctrl.signal.aborted) throw new InterruptedError('cancelled');
      const outcome = data.kind === 'separate' ? await runSeparate(job, data, run.ctrl.signal) : await runTts(job, data, run.ctrl.signal);
      done += 1;
      emit({ event: 'done', id: jobId, kind: data.kind, target, attempt, outcome });
      return outcome;
    } catch (e) {
      if (run.stop === 'hand-back' && token) {
        // Back to waiting, for any worker; BullMQ does not count it as a failed attempt.
        await job.moveToWait(token);
        emit({ event: 'handed-back', id: jobId, kind: data.kind, target, attempt });
        throw new WaitingError();
      }
      let err: unknown = e;
      if (run.stop === 'timeout') err = new StemkitError('E_JOB_TIMEOUT', 75, `job ran longer than its limit of ${limitSec} s and was stopped`, { cause: e });
      if (run.stop === 'cancel') {
        err = new StemkitError('E_CANCELLED', 130, 'cancelled by `stemkit queue cancel`', { cause: e });
        await redis.srem(keys.cancel, jobId).catch(() => undefined);
      }
      const desc = describeError(err);
      const permanent = run.stop !== undefined || PERMANENT_EXIT_CODES.has(desc.exitCode);
      const attempts = job.opts.attempts ?? 1;
      failed += 1;
      emit({ event: 'failed', id: jobId, kind: data.kind, target, attempt, error: desc, willRetry: !permanent && attempt < attempts });
      throw permanent ? new UnrecoverableError(encodeJobError(err)) : new Error(encodeJobError(err));
    } finally {
      clearTimeout(run.limit);
      running.delete(jobId);
      beating = beating.then(beat).catch(() => undefined);
    }
  };

  const stallMs = Math.round(q.stallSec * 1000);
  const worker: Worker<StemkitJobData, JobOutcome> = new BullWorker<StemkitJobData, JobOutcome>(q.name, processor, {
    connection: redis,
    concurrency,
    name: id,
    lockDuration: stallMs,
    stalledInterval: stallMs,
    // A job whose worker died twice is more likely the cause than the victim.
    maxStalledCount: 2,
    autorun: false,
  });
  worker.on('error', (e) => log({ level: 'debug', message: `worker: ${e.message}` }));
  void worker.run().catch((e: unknown) => log({ level: 'warn', message: `worker stopped: ${(e as Error).message}` }));
  await worker.waitUntilReady();
  await beat().catch(() => undefined);
  log({ level: 'info', message: `worker ${id} on queue "${q.name}": ${concurrency} job${concurrency === 1 ? '' : 's'} at once, ${threads} thread${threads === 1 ? '' : 's'} each (profile ${config.profile}); roots ${roots.join(', ')}` });

  return {
    id,
    concurrency,
    roots,
    async close(drainSec: number) {
      if (closing) return;
      closing = true;
      await beat().catch(() => undefined);
      const closed = worker.close();
      const drained = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), drainSec * 1000).unref())]);
      if (!drained) {
        for (const jid of running.keys()) stop(jid, 'hand-back');
        await closed;
      }
      clearInterval(timer);
      await beating;
      await redis.del(keys.workerPrefix + id).catch(() => undefined);
      await pool.close();
      redis.disconnect();
    },
  };
}

/** Removes `<output>.tmp.*` files an earlier, killed run of the same job left beside its outputs. */
async function removeStaleTemps(outputs: readonly string[]): Promise<void> {
  for (const out of outputs) {
    const dir = dirname(out);
    const prefix = `${basename(out)}.tmp.`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const n of names) if (n.startsWith(prefix)) await rm(join(dir, n), { force: true });
  }
}

/** Downloads an http(s) input (resumable, size-limited) into `dir`. 404/410 are input errors (66), never retried. */
async function downloadInput(url: string, dir: string, config: ResolvedConfig, signal: AbortSignal, onProgress: (e: ProgressEvent) => void): Promise<string> {
  const u = new URL(url);
  if (u.username !== '' || u.password !== '') {
    throw new UsageError('input URLs may not carry credentials', { code: 'E_BAD_JOB', hint: 'serve the file without a password, or put it on the shared storage' });
  }
  const name = basename(decodeURIComponent(u.pathname)) || 'input';
  await mkdir(dir, { recursive: true });
  const dest = join(dir, name);
  const { downloadFile } = await import('../models/download.js');
  try {
    await downloadFile({ url, dest, label: name }, { signal, onProgress, maxBytes: config.queue.maxDownloadMB * 1024 * 1024 });
  } catch (e) {
    if (e instanceof UnavailableError && (e.code === 'E_NOT_FOUND' || e.code === 'E_TOO_LARGE' || e.code === 'E_DOWNLOAD_HTML')) {
      throw new InputError(`input ${url}: ${e.message}`, { code: e.code, cause: e });
    }
    throw e;
  }
  return dest;
}

/** The user running this process (for the `from` field of submitted jobs). */
export function submitter(): { host: string; user: string } {
  let user = '';
  try {
    user = userInfo().username;
  } catch {
    user = String(process.getuid?.() ?? '');
  }
  return { host: hostname(), user };
}
