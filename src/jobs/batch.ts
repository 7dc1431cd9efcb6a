/**
 * Work inside one process: run a batch of files with bounded concurrency, divide the CPU thread cap
 * among the workers, and summarise the results.
 */
import type { ResolvedConfig } from '../config/schema.js';
import { InterruptedError } from '../errors.js';
import type { PoolName } from './semaphore.js';

/**
 * Runs `fn` over `items` with at most `limit` calls in flight, returning results in input order.
 *
 * Stops starting new items once `signal` aborts or a call throws; calls already running are awaited
 * (they observe the same signal) before it settles, so nothing keeps running behind the caller's back.
 * `fn` should turn per-item failures it wants to survive into results (e.g. `status: 'failed'`).
 *
 * @throws InterruptedError when the signal aborted before every item ran; otherwise the first error
 *   thrown by `fn`.
 */
export async function runBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const width = Math.max(1, Math.min(Math.floor(limit) || 1, items.length));
  let next = 0;
  let failure: { error: unknown } | undefined;

  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined && !signal?.aborted) {
      const index = next++;
      try {
        results[index] = await fn(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  if (failure) throw failure.error;
  // When every item had started, the results are complete (an item cut short reports that itself).
  if (signal?.aborted && next < items.length) throw new InterruptedError();
  return results;
}

/** CPU threads each worker may use so that workers × threads stays within the cap: max(1, floor(cpuThreads / workers)). */
export function threadsPerWorker(cpuThreads: number, workers: number): number {
  return Math.max(1, Math.floor(cpuThreads / Math.max(1, workers)));
}

/**
 * How many files of a batch one process runs at once: the smallest limit of the pools each file job
 * takes (heavy always; tts for TTS; video for video inputs), never more than the number of files.
 */
export function batchWorkers(
  config: Pick<ResolvedConfig, 'maxConcurrentHeavyTasks' | 'maxConcurrentTts' | 'maxConcurrentVideo'>,
  fileCount: number,
  pools: readonly PoolName[] = ['heavy'],
): number {
  let n = config.maxConcurrentHeavyTasks;
  if (pools.includes('tts')) n = Math.min(n, config.maxConcurrentTts);
  if (pools.includes('video')) n = Math.min(n, config.maxConcurrentVideo);
  return Math.max(1, Math.min(n, fileCount));
}

/** The fields of a per-file result that a batch summary needs (separate's FileResult has them). */
export interface SummarizableResult {
  status: 'ok' | 'skipped' | 'failed';
  /** Seconds of audio in the input (or produced, for TTS). */
  durationSec: number;
  times: { total: number };
}

export interface BatchSummary {
  files: number;
  ok: number;
  failed: number;
  skipped: number;
  /** Wall-clock seconds of the whole batch (as passed in; includes waiting for slots). */
  wallSec: number;
  /** Seconds of audio processed by the files that succeeded. */
  audioSec: number;
  /** Sum of per-file processing seconds of the files that succeeded. */
  computeSec: number;
  /** computeSec / audioSec (below 1 is faster than real time); null when no audio was processed. */
  rtf: number | null;
  /** The slowest per-file real-time factor among successes; null when none. */
  maxRtf: number | null;
}

/** Counts and times of a batch, for the human summary line and the `--json` report. */
export function summarizeBatch(results: readonly SummarizableResult[], wallSec: number): BatchSummary {
  let ok = 0;
  let failed = 0;
  let skipped = 0;
  let audioSec = 0;
  let computeSec = 0;
  let maxRtf: number | null = null;
  for (const r of results) {
    if (r.status === 'ok') {
      ok++;
      audioSec += r.durationSec;
      computeSec += r.times.total;
      if (r.durationSec > 0) maxRtf = Math.max(maxRtf ?? 0, r.times.total / r.durationSec);
    } else if (r.status === 'failed') failed++;
    else skipped++;
  }
  return { files: results.length, ok, failed, skipped, wallSec, audioSec, computeSec, rtf: audioSec > 0 ? computeSec / audioSec : null, maxRtf };
}
