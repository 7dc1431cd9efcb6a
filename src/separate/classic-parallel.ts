/**
 * `classic` on worker threads, for a thread budget N ≥ 2 on the CPU.
 *
 * One ORT session cannot use a second core for `classic`: its graph is small (two threads run it only ≈ 1.2× faster)
 * and more than half of the work is the JavaScript around it (STFT, iSTFT, overlap-add), which runs on the thread that
 * calls the session. So the track is cut into chunks, and N worker threads (node:worker_threads, src/separate/
 * classic-worker.ts) each run the whole in-process cascade ({@link createLocalClassicModel}) on one chunk at a time,
 * with a one-thread session: N compute threads in all, as the budget says. The cascade reaches
 * {@link classicContextSamples} (0.77 s) back and forward, so each chunk is separated with that much of the track on
 * each side, and its stems are the whole track's: chunk boundaries fall on every stage's hop, so its frames are the
 * track's frames; only the masks' frame batches differ (ORT's kernels, as for any other block size: within 1e-6).
 *
 * The calling thread only cuts chunks, hands them over (transferred, not copied) to the worker pool
 * (src/separate/worker-pool.ts) and hands the stems on in order, block by block as the workers send them
 * ({@link StemStream.pieces}). At most N + 1 chunks are in flight (one waiting per busy worker), so memory stays
 * bounded whatever the track's length. The workers start with the model (never at import: `stemkit --help` starts none), keep the
 * process alive only while they hold a chunk, and are terminated by `dispose()`, and those of a stream whose
 * signal aborts at once (a later chunk starts a fresh one). An error inside a worker comes back as the same
 * StemkitError class, code and exit code.
 */
import type { RawAudio } from '../audio/raw-audio.js';
import { InterruptedError, type StemkitError, throwIfAborted } from '../errors.js';
import type { SessionOptions } from '../runtime/onnx.js';
import { CLASSIC_PARAMS, STEMS, classicContextSamples, toStereo } from './classic.js';
import type { StemBlocks, StemModel, StemStream, StemStreamOptions } from './types.js';
import { WorkerPool, reviveError as reviveWorkerError, transferError, workerScript, type PoolWorkerInit, type TransferredError } from './worker-pool.js';

export { transferError };

/** What a classic worker gets at start (workerData). */
export interface ClassicWorkerInit extends PoolWorkerInit {
  modelPath: string;
  /** The worker's own session: one thread. */
  session: SessionOptions;
}

/** A chunk: the input with its context; the worker returns `keep` samples of each stem from sample `skip` on. */
export interface ClassicJob {
  input: Float32Array[];
  skip: number;
  keep: number;
}

/** {@link reviveWorkerError} for the classic workers. */
export function reviveError(t: TransferredError): StemkitError {
  return reviveWorkerError(t, 'classic');
}

/** A multiple of every stage's hop: chunks that start there have their frames on the track's frame grid. */
function frameGrid(): number {
  const P = CLASSIC_PARAMS;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  return [P.bass.hop, P.drums.hop, P.vocals.hop].reduce<number>((a, b) => (a * b) / gcd(a, b), 1);
}

/**
 * The longest chunk. Longer chunks cost less context (2 × 0.77 s per chunk) and fewer stream starts, and hold more
 * memory (45 s of four stereo stems is 64 MB, up to N + 1 chunks in flight): on a 3-minute song on two workers,
 * chunks of 30 s took 8 % more CPU than one pass, of 45 s 4 %, of 90 s 1 %, for 860, 980 and 1130 MiB peak RSS.
 */
const MAX_CHUNK_SECONDS = 60;
/** The shortest (when the track is short): below that the context would be most of the work. */
const MIN_CHUNK_SECONDS = 5;

/**
 * Samples per chunk: at most 60 s, and as even a split as the track allows, so that every worker gets the same
 * number of chunks (a 3-minute track on 2 workers: 4 chunks of 45 s; on 4: 4 of 45 s). Aligned to the frame grid.
 */
export function classicChunkSamples(totalFrames: number | undefined, workers: number, seconds?: number): number {
  const rate = CLASSIC_PARAMS.sampleRate;
  const grid = frameGrid();
  const align = (n: number): number => Math.max(grid, Math.ceil(n / grid) * grid);
  if (seconds !== undefined) return align(seconds * rate);
  const max = MAX_CHUNK_SECONDS * rate;
  if (totalFrames === undefined || totalFrames <= 0) return align(max);
  const rounds = Math.ceil(totalFrames / (workers * max));
  return align(Math.max(MIN_CHUNK_SECONDS * rate, totalFrames / (workers * rounds)));
}

/** Stereo samples by absolute index, from the oldest one still needed. */
class InputStore {
  private blocks: Float32Array[][] = [];
  /** Absolute index of blocks[0]'s first sample. */
  private start = 0;
  received = 0;

  append(x: Float32Array[]): void {
    const n = x[0]!.length;
    if (n === 0) return;
    this.blocks.push(x);
    this.received += n;
  }

  /** A fresh copy of samples [from, to) (the copy is transferred to a worker). */
  slice(from: number, to: number): Float32Array[] {
    const out = [new Float32Array(to - from), new Float32Array(to - from)];
    let pos = this.start;
    for (const b of this.blocks) {
      const n = b[0]!.length;
      const a = Math.max(from, pos);
      const e = Math.min(to, pos + n);
      if (a < e) for (let c = 0; c < 2; c++) out[c]!.set(b[c]!.subarray(a - pos, e - pos), a - from);
      pos += n;
      if (pos >= to) break;
    }
    return out;
  }

  /** Forgets whole blocks that end before `from`. */
  dropBefore(from: number): void {
    while (this.blocks.length > 0 && this.start + this.blocks[0]![0]!.length <= from) {
      this.start += this.blocks[0]![0]!.length;
      this.blocks.shift();
    }
  }
}

/** A chunk handed out: its stems' parts so far, in order, and whether the worker is done with it. */
interface ChunkState {
  parts: Array<Record<string, Float32Array[]>>;
  done: boolean;
}

class ParallelClassicStream implements StemStream {
  private readonly input = new InputStore();
  private readonly context = classicContextSamples();
  private readonly chunk: number;
  private readonly maxInFlight: number;
  /** The next chunk to hand out, and the next one to return. */
  private next = 0;
  private emitNext = 0;
  private readonly chunks = new Map<number, ChunkState>();
  /** Waiting for a part, a finished chunk or a failure. */
  private waiters: Array<() => void> = [];
  private failure: unknown;
  private infer = 0;
  private processed = 0;
  private readonly onAbort = (): void => {
    this.failure ??= new InterruptedError();
    this.pool.cancel(this, this.failure);
    this.notify();
  };

  constructor(
    private readonly pool: WorkerPool<ClassicJob>,
    private readonly opts: StemStreamOptions,
    chunkSeconds: number | undefined,
  ) {
    this.chunk = classicChunkSamples(opts.totalFrames, pool.size, chunkSeconds);
    this.maxInFlight = pool.size + 1;
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get inferSeconds(): number {
    return this.infer;
  }

  async push(block: RawAudio): Promise<StemBlocks> {
    return concat(await collectAll(this.pieces(block)));
  }

  async flush(): Promise<StemBlocks> {
    return concat(await collectAll(this.pieces(null)));
  }

  /**
   * Hands out every chunk whose input is complete, keeping at most maxInFlight unreturned, and yields the stems in
   * order, a worker's block at a time, as they arrive. A push waits only while the limit is reached; the end of the
   * input (null) waits for every chunk.
   */
  async *pieces(block: RawAudio | null): AsyncGenerator<StemBlocks> {
    const ended = block === null;
    try {
      this.check();
      if (block) this.input.append(toStereo(block));
      for (;;) {
        yield* this.ready();
        this.check();
        if (this.next - this.emitNext < this.maxInFlight && this.dispatch(ended)) continue;
        if (ended ? this.emitNext === this.next : this.next - this.emitNext < this.maxInFlight) return;
        await new Promise<void>((r) => this.waiters.push(r));
        this.check();
      }
    } finally {
      if (ended) this.opts.signal?.removeEventListener('abort', this.onAbort);
    }
  }

  private check(): void {
    throwIfAborted(this.opts.signal);
    if (this.failure !== undefined) throw this.failure;
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The parts that come next in order and have arrived (none is waited for). */
  private *ready(): Generator<StemBlocks> {
    for (;;) {
      const c = this.chunks.get(this.emitNext);
      if (!c) return;
      for (let p = c.parts.shift(); p; p = c.parts.shift()) yield toStemBlocks(p);
      if (!c.done) return;
      this.chunks.delete(this.emitNext);
      this.emitNext++;
    }
  }

  private dispatch(ended: boolean): boolean {
    const received = this.input.received;
    const start = this.next * this.chunk;
    const end = ended ? Math.min(start + this.chunk, received) : start + this.chunk;
    if (end <= start) return false;
    const need = ended ? Math.min(end + this.context, received) : end + this.context;
    if (received < need) return false;
    const from = Math.max(0, start - this.context);
    const state: ChunkState = { parts: [], done: false };
    this.chunks.set(this.next++, state);
    const onPart = (stems: Record<string, Float32Array[]>): void => {
      state.parts.push(stems);
      this.processed += stems[STEMS[0]]![0]!.length;
      this.opts.onInferProgress?.(this.processed);
      this.notify();
    };
    const input = this.input.slice(from, need);
    const job = this.pool.run(this, { input, skip: start - from, keep: end - start }, input.map((c) => c.buffer as ArrayBuffer), onPart);
    this.input.dropBefore(this.next * this.chunk - this.context);
    job.then(
      (r) => {
        state.done = true;
        this.infer += r.inferSeconds;
        this.notify();
      },
      (e: unknown) => {
        if (this.failure === undefined) {
          // The first failure ends the stream: its other chunks would only burn the workers' time.
          this.failure = e;
          this.pool.cancel(this, e);
        }
        this.notify();
      },
    );
    return true;
  }
}

async function collectAll<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function toStemBlocks(part: Record<string, Float32Array[]>): StemBlocks {
  const out: StemBlocks = {};
  for (const s of STEMS) out[s] = { channels: part[s]!, sampleRate: CLASSIC_PARAMS.sampleRate };
  return out;
}

function concat(parts: StemBlocks[]): StemBlocks {
  if (parts.length === 1) return parts[0]!;
  const out: StemBlocks = {};
  for (const s of STEMS) {
    const channels = [0, 1].map((c) => {
      const n = parts.reduce((a, p) => a + p[s]!.channels[c]!.length, 0);
      const y = new Float32Array(n);
      let o = 0;
      for (const p of parts) {
        y.set(p[s]!.channels[c]!, o);
        o += p[s]!.channels[c]!.length;
      }
      return y;
    });
    out[s] = { channels, sampleRate: CLASSIC_PARAMS.sampleRate };
  }
  return out;
}

/** The parallel model: `session.threads` workers (N ≥ 2, CPU), each with a one-thread session. */
export async function createParallelClassicModel(modelPath: string, session: SessionOptions, chunkSeconds?: number): Promise<StemModel> {
  const threads = Math.max(1, Math.floor(session.threads));
  const pool = new WorkerPool<ClassicJob>(workerScript('classic-worker'), { modelPath, session: { ...session, device: 'cpu', threads: 1 } }, threads, 'classic');
  await pool.start();
  return {
    id: 'classic',
    stems: STEMS,
    sampleRate: CLASSIC_PARAMS.sampleRate,
    channels: 2,
    provider: 'cpu',
    threads,
    needsTrackStats: false,
    createStream: (opts: StemStreamOptions): StemStream => new ParallelClassicStream(pool, opts, chunkSeconds),
    dispose: () => pool.dispose(),
  };
}
