/**
 * The speech models (GTCRN, DTLN) on a multi-channel file with a thread budget N ≥ 2 on the CPU: each channel is its
 * own recurrent stream (per-channel mode), and the first runs in this thread while the others run on N − 1 worker
 * threads (src/separate/speech-worker.ts, one-thread sessions), so the channels are enhanced at the same time: N
 * compute threads in all. A stream's state lives in one worker for its whole length (a lane binds its jobs there),
 * so every channel gets exactly the samples the one-thread path gives. A mono file uses this thread only, and no
 * worker is started until a second channel's stream is.
 */
import type { RawAudio } from '../audio/raw-audio.js';
import { InterruptedError, throwIfAborted } from '../errors.js';
import type { SessionOptions } from '../runtime/onnx.js';
import type { StemBlocks, StemModel, StemStream, StemStreamOptions } from './types.js';
import { WorkerPool, workerScript, type PoolWorkerInit } from './worker-pool.js';

/** Which speech model a worker loads, from which files. */
export interface SpeechModelSpec {
  kind: 'gtcrn' | 'dtln';
  id: string;
  /** GTCRN: the model; DTLN: stage 1, stage 2. */
  paths: string[];
  stepping?: 'scan' | 'frame';
}

export interface SpeechWorkerInit extends PoolWorkerInit, SpeechModelSpec {
  /** The worker's own session: one thread. */
  session: SessionOptions;
}

/** One block of one stream (null: the end of the stream). */
export interface SpeechJob {
  stream: number;
  block: Float32Array | null;
  wanted: readonly string[];
}

/**
 * `model` (loaded in this thread) with its extra channels on worker threads, when the budget has room for them;
 * otherwise `model` itself.
 */
export function withSpeechLanes(model: StemModel, spec: SpeechModelSpec, session: SessionOptions): StemModel {
  const threads = Math.max(1, Math.floor(session.threads));
  if (threads < 2 || model.provider !== 'cpu') return model;
  const workers = threads - 1;
  let pool: WorkerPool<SpeechJob> | undefined;
  let nextStream = 1;
  return {
    id: model.id,
    stems: model.stems,
    sampleRate: model.sampleRate,
    channels: model.channels,
    provider: model.provider,
    threads,
    needsTrackStats: model.needsTrackStats,
    concurrentLanes: true,
    createStream(so: StemStreamOptions): StemStream {
      const lane = so.lane ?? 0;
      if (lane === 0) return model.createStream(so);
      const init: Omit<SpeechWorkerInit, 'control'> = { ...spec, session: { ...session, device: 'cpu', threads: 1 } };
      pool ??= new WorkerPool<SpeechJob>(workerScript('speech-worker'), init, workers, 'speech');
      return new LaneStream(pool, nextStream++, (lane - 1) % workers, so.wantedStems ?? model.stems, model.sampleRate, so.signal);
    },
    async dispose() {
      await Promise.all([model.dispose(), pool?.dispose()]);
    },
  };
}

/** A channel's stream in a worker: each push is one job on that worker, its stems come back as they are. */
class LaneStream implements StemStream {
  inferSeconds = 0;
  private readonly onAbort = (): void => this.pool.cancel(this, new InterruptedError());

  constructor(
    private readonly pool: WorkerPool<SpeechJob>,
    private readonly id: number,
    private readonly lane: number,
    private readonly wanted: readonly string[],
    private readonly rate: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  push(block: RawAudio): Promise<StemBlocks> {
    // A copy goes to the worker: the caller may still hold the block (the mix kept for a `minus` complement).
    return this.run(block.channels[0]!.slice());
  }

  async flush(): Promise<StemBlocks> {
    try {
      return await this.run(null);
    } finally {
      this.signal?.removeEventListener('abort', this.onAbort);
    }
  }

  private async run(block: Float32Array | null): Promise<StemBlocks> {
    throwIfAborted(this.signal);
    // The worker answers a job with one part: the stems of this block (speech-worker.ts).
    let part: Record<string, Float32Array[]> = {};
    const transfer = block ? [block.buffer as ArrayBuffer] : [];
    const r = await this.pool.run(this, { stream: this.id, block, wanted: this.wanted }, transfer, (p) => (part = p), this.lane);
    this.inferSeconds = r.inferSeconds;
    const out: StemBlocks = {};
    for (const s of this.wanted) out[s] = { channels: [part[s]?.[0] ?? new Float32Array(0)], sampleRate: this.rate };
    return out;
  }
}
