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
 * The calling thread only cuts chunks, hands them over (transferred, not copied) and puts the results back in
 * order. At most N + 1 chunks are in flight (one waiting per busy worker), so memory stays bounded whatever the
 * track's length. The workers start with the model (never at import: `stemkit --help` starts none), keep the
 * process alive only while they hold a chunk, and are terminated by `dispose()`, and those of a stream whose
 * signal aborts at once (a later chunk starts a fresh one). An error inside a worker comes back as the same
 * StemkitError class, code and exit code.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RawAudio } from '../audio/raw-audio.js';
import {
  BusyError,
  DataError,
  InputError,
  InternalError,
  InterruptedError,
  OutputError,
  StemkitError,
  UnavailableError,
  UsageError,
  isStemkitError,
  throwIfAborted,
} from '../errors.js';
import type { SessionOptions } from '../runtime/onnx.js';
import { CLASSIC_PARAMS, STEMS, classicContextSamples, toStereo } from './classic.js';
import type { StemBlocks, StemModel, StemStream, StemStreamOptions } from './types.js';

/** What a worker gets at start (workerData). */
export interface ClassicWorkerInit {
  modelPath: string;
  /** The worker's own session: one thread. */
  session: SessionOptions;
  /**
   * Shared with the calling thread: [0] the id of a chunk to give up (0: none; {@link CANCEL_ALL}: every chunk),
   * written by the caller and read by the worker between blocks; [1] 1 while the worker is inside a block (ORT may
   * be running), written by the worker.
   */
  control: Int32Array;
}

/** control[0] when the process exits: no chunk may enter ORT any more. */
export const CANCEL_ALL = -1;

/**
 * A chunk (the input with its context; the worker returns `keep` samples of each stem from sample `skip` on), or
 * the end: release the session and end the thread.
 */
export type ToClassicWorker = { type: 'job'; id: number; input: Float32Array[]; skip: number; keep: number } | { type: 'close' };

export type FromClassicWorker =
  | { type: 'ready'; provider: string; threads: number }
  | { type: 'fatal'; error: TransferredError }
  /** The next samples of the chunk's stems, in order (views of transferred buffers). */
  | { type: 'part'; id: number; stems: Record<string, Float32Array[]> }
  | { type: 'done'; id: number; inferSeconds: number }
  | { type: 'failed'; id: number; error: TransferredError };

/** An error as it crosses a thread boundary (structured clone keeps neither the class nor the extra fields). */
export interface TransferredError {
  name: string;
  message: string;
  code?: string;
  hint?: string;
  details?: Record<string, unknown>;
}

/** Flattens an error for postMessage; {@link reviveError} rebuilds it. */
export function transferError(e: unknown): TransferredError {
  if (isStemkitError(e)) {
    const t: TransferredError = { name: e.name, message: e.message, code: e.code };
    if (e.hint !== undefined) t.hint = e.hint;
    if (e.details !== undefined) t.details = e.details;
    return t;
  }
  return { name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) };
}

type ErrorClass = new (message: string, options?: { code?: string; hint?: string; details?: Record<string, unknown> }) => StemkitError;
const ERROR_CLASSES: Record<string, ErrorClass> = { UsageError, DataError, InputError, UnavailableError, OutputError, BusyError, InternalError };

/** The StemkitError subclass (code, exit code, hint) a worker threw; anything else becomes an InternalError (70). */
export function reviveError(t: TransferredError): StemkitError {
  if (t.name === 'InterruptedError') return new InterruptedError(t.message);
  const Class = ERROR_CLASSES[t.name];
  const opts: { code?: string; hint?: string; details?: Record<string, unknown> } = {};
  if (t.code !== undefined) opts.code = t.code;
  if (t.hint !== undefined) opts.hint = t.hint;
  if (t.details !== undefined) opts.details = t.details;
  return Class ? new Class(t.message, opts) : new InternalError(`classic worker thread: ${t.message}`);
}

/**
 * The worker script. Built code runs dist/separate/classic-worker.js next to this file; the TypeScript sources
 * (vitest) have no JavaScript to start a thread on, so they use the build's copy (`npm test` builds first).
 */
export function classicWorkerScript(): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL('./classic-worker.js', here);
  const built = new URL(here.replace(/\/src\/separate\/classic-parallel\.ts$/, '/dist/separate/classic-worker.js'));
  if (!existsSync(fileURLToPath(built))) {
    throw new InternalError(`the classic worker thread runs built code, and ${fileURLToPath(built)} is missing`, { hint: 'run `npm run build` first' });
  }
  return built;
}

interface JobResult {
  inferSeconds: number;
}

interface Job {
  owner: object;
  input: Float32Array[];
  skip: number;
  keep: number;
  /** Each part of the stems as it arrives, in order, before the job resolves. */
  onPart(stems: Record<string, Float32Array[]>): void;
  resolve(r: JobResult): void;
  reject(e: unknown): void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  loaded: boolean;
  /** The chunk the worker runs, with the id its reply carries. */
  job: (Job & { id: number }) | undefined;
  /** A chunk whose caller gave up: the worker still runs it until its next cancellation point. */
  draining: number | undefined;
  /** Shared with the worker: see {@link ClassicWorkerInit.control}. */
  control: Int32Array;
  /** Called when the worker has neither a chunk nor a draining one. */
  onIdle: Array<() => void>;
  /** Its thread has ended (or is being terminated). */
  dead: boolean;
}

/** How long dispose() waits for a worker to reach a cancellation point or to close, before it terminates it. */
const STOP_WAIT_MS = 10_000;

/**
 * N worker threads, each running one chunk at a time; chunks queue in order of submission.
 *
 * A worker is never terminated inside `session.run`: onnxruntime-node aborts the whole process when its thread is
 * stopped in native code. A cancelled chunk is flagged in shared memory instead; the worker stops at its next block
 * (≈ 1.5 s of audio) and replies, and only then takes new work. `dispose()` lets each worker finish that way, release
 * its session and end its thread.
 */
export class ClassicWorkerPool {
  private readonly slots: Array<Slot | undefined>;
  private queue: Job[] = [];
  private nextId = 1;
  private disposed = false;
  /** Every thread started and not yet ended, also those of failed workers (dispose() waits for all). */
  private readonly threads = new Set<Promise<void>>();

  constructor(
    private readonly script: URL,
    private readonly init: Omit<ClassicWorkerInit, 'control'>,
    readonly size: number,
  ) {
    this.slots = Array.from({ length: size }, () => undefined);
    livePools.add(this);
    if (livePools.size === 1) process.on('exit', stopAllAtExit);
  }

  /**
   * At process exit (also `process.exit()`, the CLI's second Ctrl-C), before Node stops the threads: every worker
   * is told to stop, and the exit waits (up to 5 s) until none is inside a block, so that none is stopped in ORT.
   */
  stopForExit(deadline: number): void {
    for (const s of this.slots) if (s && !s.dead) Atomics.store(s.control, 0, CANCEL_ALL);
    for (const s of this.slots) {
      if (!s || s.dead) continue;
      while (Atomics.load(s.control, 1) === 1) {
        const left = deadline - Date.now();
        if (left <= 0) return;
        Atomics.wait(s.control, 1, 1, left);
      }
    }
  }

  /** Starts every worker and waits until each has loaded its session; the first failure is thrown (all stop). */
  async start(): Promise<void> {
    const ready = Array.from({ length: this.size }, (_, i) => this.spawn(i).ready);
    try {
      await Promise.all(ready);
    } catch (e) {
      await this.dispose();
      throw e;
    }
  }

  run(owner: object, input: Float32Array[], skip: number, keep: number, onPart: Job['onPart']): Promise<JobResult> {
    if (this.disposed) return Promise.reject(new InternalError('the classic model was used after dispose()'));
    return new Promise<JobResult>((resolve, reject) => {
      this.queue.push({ owner, input, skip, keep, onPart, resolve, reject });
      this.pump();
    });
  }

  /** Drops the owner's queued chunks and cancels its running ones; all of them reject with `reason` at once. */
  cancel(owner: object, reason: unknown): void {
    const keep: Job[] = [];
    for (const j of this.queue) {
      if (j.owner === owner) j.reject(reason);
      else keep.push(j);
    }
    this.queue = keep;
    for (const s of this.slots) if (s?.job?.owner === owner) this.abandon(s, reason);
  }

  /** Cancels everything, waits for each worker to stop between blocks, releases its session and ends its thread. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const gone = new InternalError('the classic model was disposed');
    for (const j of this.queue) j.reject(gone);
    this.queue = [];
    await Promise.all(
      this.slots.map(async (s, i) => {
        if (!s) return;
        if (s.job) this.abandon(s, gone);
        const settled = await within(
          Promise.all([s.ready.catch(() => undefined), new Promise<void>((r) => (isIdle(s) ? r() : s.onIdle.push(r)))]),
          STOP_WAIT_MS,
        );
        this.slots[i] = undefined;
        if (s.dead) return;
        s.dead = true;
        const exited = new Promise<void>((r) => s.worker.once('exit', () => r()));
        if (settled && s.loaded) {
          s.worker.ref();
          s.worker.postMessage({ type: 'close' } satisfies ToClassicWorker);
          if (await within(exited, STOP_WAIT_MS)) return;
        }
        await s.worker.terminate();
      }),
    );
    await Promise.all([...this.threads]);
    // Only now: until its threads have ended, a draining worker may still be inside ORT when the process exits.
    livePools.delete(this);
    if (livePools.size === 0) process.off('exit', stopAllAtExit);
  }

  private abandon(s: Slot, reason: unknown): void {
    const job = s.job!;
    Atomics.store(s.control, 0, job.id);
    s.job = undefined;
    s.draining = job.id;
    job.reject(reason);
  }

  private spawn(i: number): Slot {
    let markReady!: () => void;
    let failReady!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => {
      markReady = res;
      failReady = rej;
    });
    // The caller sees a failed start through start() or through its chunk's rejection, not as an unhandled rejection.
    ready.catch(() => undefined);
    const control = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(this.script, { workerData: { ...this.init, control } satisfies ClassicWorkerInit });
    const slot: Slot = { worker, ready, loaded: false, job: undefined, draining: undefined, control, onIdle: [], dead: false };
    this.slots[i] = slot;
    const ended = new Promise<void>((r) => worker.once('exit', () => r()));
    this.threads.add(ended);
    void ended.then(() => this.threads.delete(ended));
    worker.on('message', (m: FromClassicWorker) => {
      if (m.type === 'ready') {
        slot.loaded = true;
        markReady();
      } else if (m.type === 'fatal') {
        const e = reviveError(m.error);
        failReady(e);
        this.kill(i, slot, e);
        return;
      } else if (m.type === 'part') {
        // A part changes nothing about the worker's state; one of a chunk given up is dropped.
        if (slot.job?.id === m.id) slot.job.onPart(m.stems);
        return;
      } else if (slot.job?.id === m.id) {
        const job = slot.job;
        slot.job = undefined;
        if (m.type === 'done') job.resolve({ inferSeconds: m.inferSeconds });
        else job.reject(reviveError(m.error));
      } else if (slot.draining === m.id) {
        slot.draining = undefined;
      }
      if (isIdle(slot)) {
        // Idle workers do not keep the process alive (an abandoned model must not hang the exit); busy ones do, so
        // that the process never ends while a worker is inside ORT.
        worker.unref();
        for (const f of slot.onIdle.splice(0)) f();
      }
      this.pump();
    });
    const failed = (err: InternalError): void => {
      failReady(err);
      if (!slot.dead) this.kill(i, slot, err);
    };
    worker.on('error', (e) => failed(new InternalError(`a classic worker thread failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => {
      if (slot.dead) return;
      failed(new InternalError(`a classic worker thread stopped (exit code ${code})`));
    });
    return slot;
  }

  /** Ends a worker that failed (it runs no native code any more); its chunk rejects. A later chunk starts a new one. */
  private kill(i: number, s: Slot, reason: unknown): void {
    if (this.slots[i] === s) this.slots[i] = undefined;
    s.dead = true;
    s.job?.reject(reason);
    s.job = undefined;
    s.draining = undefined;
    for (const f of s.onIdle.splice(0)) f();
    void s.worker.terminate();
    this.pump();
  }

  private pump(): void {
    if (this.disposed) return;
    for (let i = 0; i < this.size && this.queue.length > 0; i++) {
      const slot = this.slots[i] ?? this.spawn(i);
      if (!isIdle(slot)) continue;
      const job = { ...this.queue.shift()!, id: this.nextId++ };
      slot.job = job;
      slot.worker.ref();
      const msg: ToClassicWorker = { type: 'job', id: job.id, input: job.input, skip: job.skip, keep: job.keep };
      slot.ready.then(
        () => {
          if (this.slots[i] === slot && slot.job === job) slot.worker.postMessage(msg, job.input.map((c) => c.buffer as ArrayBuffer));
          else if (slot.draining === job.id) {
            // Cancelled before it was sent: nothing to drain.
            slot.draining = undefined;
            if (isIdle(slot)) {
              slot.worker.unref();
              for (const f of slot.onIdle.splice(0)) f();
              this.pump();
            }
          }
        },
        () => undefined, // kill() has rejected the chunk
      );
    }
  }
}

const livePools = new Set<ClassicWorkerPool>();

function stopAllAtExit(): void {
  const deadline = Date.now() + 5000;
  for (const p of livePools) p.stopForExit(deadline);
}

function isIdle(s: Slot): boolean {
  return s.job === undefined && s.draining === undefined;
}

/** Whether `p` settles within `ms` (the timer does not keep the process alive). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
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
    private readonly pool: ClassicWorkerPool,
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
    const job = this.pool.run(this, this.input.slice(from, need), start - from, end - start, onPart);
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
  const pool = new ClassicWorkerPool(classicWorkerScript(), { modelPath, session: { ...session, device: 'cpu', threads: 1 } }, threads);
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
