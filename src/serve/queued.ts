/**
 * `stemkit serve --queue`: the server's jobs run on `stemkit worker`s through BullMQ instead of in the
 * server's own executors. This runner has the executor pool's `run()` shape, so the job manager, the
 * routes and the job JSON stay the same: a task becomes one queue job (the payload `separate --queue`
 * sends), followed until it ends; its stored progress, times and error become the job's.
 *
 * Files: the job's folder lies in `serve.workDir`, which must be on storage the workers see (they write
 * the outputs there; the server streams them from there). The server takes no job slots of its own here:
 * the workers' profiles are the limits.
 */
import type { ResolvedConfig } from '../config/schema.js';
import { InterruptedError } from '../errors.js';
import type { FileResult } from '../separate/separate.js';
import type { TtsJobResult } from '../tts/job.js';
import type { QueueClient } from '../queue/client.js';
import type { StemkitJobData } from '../queue/jobs.js';
import { errorOf } from './jobs.js';
import type { TaskHandlers, TaskOutcome } from './pool.js';
import type { SeparateTask, TtsTask } from './protocol.js';

/** The queue payload of a server task (paths are the server's, i.e. the shared storage's). */
export function jobDataOf(task: SeparateTask | TtsTask, config: ResolvedConfig, from: { host: string; user: string }): StemkitJobData {
  const timeoutSec = config.queue.jobTimeoutSec;
  if (task.type === 'separate') return { v: 1, kind: 'separate', input: task.input, spec: task.spec, file: task.file, timeoutSec, from };
  const { ssml: _ssml, ...options } = task.voice;
  return {
    v: 1,
    kind: 'tts',
    text: task.text,
    output: task.output,
    model: task.model,
    ...(task.load.voices !== undefined ? { voices: task.load.voices } : {}),
    ...(task.load.precision !== undefined ? { precision: task.load.precision } : {}),
    ...(task.bits !== undefined ? { bits: task.bits } : {}),
    options,
    timeoutSec,
    from,
  };
}

export class QueueRunner {
  constructor(
    readonly client: QueueClient,
    private readonly config: ResolvedConfig,
    private readonly from: { host: string; user: string },
  ) {}

  /** Jobs waiting in the queue for a worker (all submitters'): what serve.maxQueued bounds. */
  waiting(): Promise<number> {
    return this.client.queue.getWaitingCount();
  }

  /** Enqueues the task and follows it; `cancel()` goes through the queue's cancel (removed, or stopped by its worker). */
  run(task: SeparateTask | TtsTask, handlers: TaskHandlers): { done: Promise<TaskOutcome>; cancel(): void } {
    // Queued until a worker takes it (its record turns active), not running: the job JSON says so.
    handlers.onQueued?.(true);
    let queueId: string | undefined;
    let cancelled = false;
    const cancelInQueue = async (): Promise<void> => {
      const { cancelJobs } = await import('../queue/client.js');
      await cancelJobs(this.client, [queueId!]);
    };
    const done = (async (): Promise<TaskOutcome> => {
      const { enqueue, followJobs } = await import('../queue/client.js');
      [queueId] = await enqueue(this.client, [jobDataOf(task, this.config, this.from)], this.config);
      if (cancelled) await cancelInQueue();
      let state = '';
      const [rec] = await followJobs(this.client, [queueId!], {
        onProgress: handlers.onProgress,
        onRecord: (r) => {
          // Waiting for a worker shows as the 'wait' stage, as waiting for a local slot does.
          if (r.state === state) return;
          if (state === '' && r.state !== 'active') handlers.onProgress?.({ stage: 'wait', status: 'start', done: 0, total: 1, message: `queued (job ${r.id})` });
          else if (r.state === 'active') {
            handlers.onProgress?.({ stage: 'wait', status: 'done', done: 1, total: 1, message: `running on ${r.worker ?? 'a worker'}` });
            handlers.onQueued?.(false);
          }
          state = r.state;
        },
      });
      if (cancelled && rec!.state !== 'completed') return { ok: false, error: errorOf(new InterruptedError('the job was cancelled')) };
      const o = rec!.result;
      if (rec!.state !== 'completed' || !o) return { ok: false, error: rec!.error ?? { code: 'E_QUEUE', message: `job ${rec!.id} ended ${rec!.state}`, exitCode: 75 } };
      const common = { durationSec: o.durationSec, rtf: o.durationSec > 0 ? (o.times['total'] ?? 0) / o.durationSec : 0, provider: o.provider, threads: o.threads };
      // The worker's result carries what the job JSON shows (times, RTF, files), not every field of the library's.
      if (task.type === 'separate') return { ok: true, value: { kind: 'separate', result: { ...common, input: task.input, status: o.status, outputs: o.outputs, times: o.times, warnings: o.warnings } as unknown as FileResult } };
      return { ok: true, value: { kind: 'tts', result: { ...common, status: 'ok', output: task.output, model: task.model, times: o.times } as unknown as TtsJobResult } };
    })().catch((e: unknown): TaskOutcome => ({ ok: false, error: errorOf(e) }));
    return {
      done,
      cancel: () => {
        cancelled = true;
        if (queueId !== undefined) void cancelInQueue().catch(() => undefined);
      },
    };
  }

  /** Live workers (from their heartbeats) and counts by state, for /health. */
  async status(): Promise<{ workers: number; counts: Record<string, number> }> {
    const { queueStatus } = await import('../queue/client.js');
    const s = await queueStatus(this.client);
    return { workers: s.workers.length, counts: s.counts };
  }
}
