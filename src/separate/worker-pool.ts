/**
 * A pool of worker threads (node:worker_threads) that run model work off the calling thread, within the thread
 * budget: each worker runs one job at a time with a one-thread ORT session. Shared by `classic` on threads
 * (src/separate/classic-parallel.ts) and the speech models' extra channels (src/separate/speech-lanes.ts); the job
 * itself is the worker script's business. Errors cross the thread boundary as the same StemkitError class, code and
 * exit code.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, parentPort, workerData } from 'node:worker_threads';
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
} from '../errors.js';

/**
 * What every pool worker gets at start (workerData), beside its script's own fields. `control` is shared with the
 * calling thread: [0] the id of a job to give up (0: none; {@link CANCEL_ALL}: every job), written by the caller and
 * read by the worker between blocks; [1] 1 while the worker is inside a block (ORT may be running), written by the
 * worker.
 */
export interface PoolWorkerInit {
  control: Int32Array;
}

/** control[0] when the process exits: no job may enter ORT any more. */
export const CANCEL_ALL = -1;

/** A job (what it is, the worker script knows), or the end: release the session and end the thread. */
export type ToPoolWorker<P> = { type: 'job'; id: number; payload: P } | { type: 'close' };

export type FromPoolWorker =
  | { type: 'ready'; provider: string; threads: number }
  | { type: 'fatal'; error: TransferredError }
  /** The next samples of the job's stems, in order (views of transferred buffers). */
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

/**
 * The StemkitError subclass (code, exit code, hint) a worker threw; anything else becomes an InternalError (70)
 * that names whose worker it was (`what`: "classic", "speech").
 */
export function reviveError(t: TransferredError, what: string): StemkitError {
  if (t.name === 'InterruptedError') return new InterruptedError(t.message);
  const Class = ERROR_CLASSES[t.name];
  const opts: { code?: string; hint?: string; details?: Record<string, unknown> } = {};
  if (t.code !== undefined) opts.code = t.code;
  if (t.hint !== undefined) opts.hint = t.hint;
  if (t.details !== undefined) opts.details = t.details;
  return Class ? new Class(t.message, opts) : new InternalError(`${what} worker thread: ${t.message}`);
}

/**
 * A worker script by name (`classic-worker`, `speech-worker`). Built code runs dist/separate/<name>.js next to this
 * file; the TypeScript sources (vitest) have no JavaScript to start a thread on, so they use the build's copy
 * (`npm test` builds first).
 */
export function workerScript(name: string): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL(`./${name}.js`, here);
  const built = new URL(here.replace(/\/src\/separate\/worker-pool\.ts$/, `/dist/separate/${name}.js`));
  if (!existsSync(fileURLToPath(built))) {
    throw new InternalError(`a worker thread runs built code, and ${fileURLToPath(built)} is missing`, { hint: 'run `npm run build` first' });
  }
  return built;
}

/** In a worker script: sends a message (and moves `transfer`) to the calling thread. */
export type SendToPool = (m: FromPoolWorker, transfer?: ArrayBuffer[]) => void;

/**
 * In a worker script: speaks the pool's protocol. `load` starts at once (the pool hears ready or fatal when it
 * settles); each job runs `job` with the loaded model, and what it throws goes back as the job's typed failure;
 * 'close' releases the model and ends the thread.
 */
export function servePool<I extends PoolWorkerInit, P, M extends { provider: string; threads: number; dispose(): Promise<void> }>(
  script: string,
  load: (init: I) => Promise<M>,
  job: (id: number, payload: P, ctx: { model: M; init: I; send: SendToPool }) => Promise<void>,
): void {
  const port = parentPort;
  if (!port) throw new InternalError(`${script} runs only as a worker thread`);
  const init = workerData as I;
  const send: SendToPool = (m, transfer = []) => port.postMessage(m, transfer);
  const loading = load(init);
  loading.then(
    (m) => send({ type: 'ready', provider: m.provider, threads: m.threads }),
    (e: unknown) => send({ type: 'fatal', error: transferError(e) }),
  );
  port.on('message', (m: ToPoolWorker<P>) => {
    if (m.type === 'close') {
      // With the port closed the thread has nothing left and ends.
      void loading.then((model) => model.dispose(), () => undefined).finally(() => port.close());
      return;
    }
    void (async () => {
      try {
        await job(m.id, m.payload, { model: await loading, init, send });
      } catch (e) {
        send({ type: 'failed', id: m.id, error: transferError(e) });
      }
    })();
  });
}

/**
 * In a worker: marks it busy, then checks whether the calling thread gave the job up (an abort, dispose, process
 * exit): in that order, so that a caller who sets the flag and then sees the worker idle knows it will not enter ORT.
 */
export function enterBlock(control: Int32Array, id: number): void {
  Atomics.store(control, 1, 1);
  const cancel = Atomics.load(control, 0);
  if (cancel === id || cancel === CANCEL_ALL) {
    leaveBlock(control);
    throw new InterruptedError();
  }
}

/** In a worker: out of ORT again (the calling thread may be waiting for that to let the process exit). */
export function leaveBlock(control: Int32Array): void {
  Atomics.store(control, 1, 0);
  Atomics.notify(control, 1);
}

interface JobResult {
  inferSeconds: number;
}

interface Job<P> {
  owner: object;
  payload: P;
  /** Buffers of the payload that move to the worker (the caller no longer uses them). */
  transfer: ArrayBuffer[];
  /** The worker this job must run on (it holds the job's state), or any. */
  lane: number | undefined;
  /** Each part of the stems as it arrives, in order, before the job resolves. */
  onPart(stems: Record<string, Float32Array[]>): void;
  resolve(r: JobResult): void;
  reject(e: unknown): void;
}

interface Slot<P> {
  worker: Worker;
  ready: Promise<void>;
  loaded: boolean;
  /** The chunk the worker runs, with the id its reply carries. */
  job: (Job<P> & { id: number }) | undefined;
  /** A chunk whose caller gave up: the worker still runs it until its next cancellation point. */
  draining: number | undefined;
  /** Shared with the worker: see {@link PoolWorkerInit.control}. */
  control: Int32Array;
  /** Called when the worker has neither a chunk nor a draining one. */
  onIdle: Array<() => void>;
  /** Its thread has ended (or is being terminated). */
  dead: boolean;
}

/** How long dispose() waits for a worker to reach a cancellation point or to close, before it terminates it. */
const STOP_WAIT_MS = 10_000;

/**
 * N worker threads of one script, each running one job at a time; jobs queue in order of submission (a job bound to
 * a lane waits for that worker). `classic` runs chunks on it (src/separate/classic-parallel.ts), the speech models a
 * stereo file's second channel (src/separate/speech-lanes.ts).
 *
 * A worker is never terminated inside `session.run`: onnxruntime-node aborts the whole process when its thread is
 * stopped in native code. A cancelled job is flagged in shared memory instead; the worker stops at its next block
 * and replies, and only then takes new work. `dispose()` lets each worker finish that way, release its session and
 * end its thread.
 */
export class WorkerPool<P> {
  private readonly slots: Array<Slot<P> | undefined>;
  private queue: Array<Job<P>> = [];
  private nextId = 1;
  private disposed = false;
  /** Every thread started and not yet ended, also those of failed workers (dispose() waits for all). */
  private readonly threads = new Set<Promise<void>>();

  constructor(
    private readonly script: URL,
    /** The script's own workerData fields (`control` is added per worker). */
    private readonly init: Record<string, unknown>,
    readonly size: number,
    /** Names the work in errors ("the classic model was disposed", "a classic worker thread failed"). */
    private readonly what: string,
  ) {
    this.slots = Array.from({ length: size }, () => undefined);
    livePools.add(this as WorkerPool<unknown>);
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

  run(owner: object, payload: P, transfer: ArrayBuffer[], onPart: Job<P>['onPart'], lane?: number): Promise<JobResult> {
    if (this.disposed) return Promise.reject(new InternalError(`the ${this.what} model was used after dispose()`));
    return new Promise<JobResult>((resolve, reject) => {
      this.queue.push({ owner, payload, transfer, lane, onPart, resolve, reject });
      this.pump();
    });
  }

  /** Drops the owner's queued chunks and cancels its running ones; all of them reject with `reason` at once. */
  cancel(owner: object, reason: unknown): void {
    const keep: Array<Job<P>> = [];
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
    const gone = new InternalError(`the ${this.what} model was disposed`);
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
          s.worker.postMessage({ type: 'close' } satisfies ToPoolWorker<P>);
          if (await within(exited, STOP_WAIT_MS)) return;
        }
        await s.worker.terminate();
      }),
    );
    await Promise.all([...this.threads]);
    // Only now: until its threads have ended, a draining worker may still be inside ORT when the process exits.
    livePools.delete(this as WorkerPool<unknown>);
    if (livePools.size === 0) process.off('exit', stopAllAtExit);
  }

  private abandon(s: Slot<P>, reason: unknown): void {
    const job = s.job!;
    Atomics.store(s.control, 0, job.id);
    s.job = undefined;
    s.draining = job.id;
    job.reject(reason);
  }

  private spawn(i: number): Slot<P> {
    let markReady!: () => void;
    let failReady!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => {
      markReady = res;
      failReady = rej;
    });
    // The caller sees a failed start through start() or through its chunk's rejection, not as an unhandled rejection.
    ready.catch(() => undefined);
    const control = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(this.script, { workerData: { ...this.init, control } satisfies PoolWorkerInit });
    const slot: Slot<P> = { worker, ready, loaded: false, job: undefined, draining: undefined, control, onIdle: [], dead: false };
    this.slots[i] = slot;
    const ended = new Promise<void>((r) => worker.once('exit', () => r()));
    this.threads.add(ended);
    void ended.then(() => this.threads.delete(ended));
    worker.on('message', (m: FromPoolWorker) => {
      if (m.type === 'ready') {
        slot.loaded = true;
        markReady();
      } else if (m.type === 'fatal') {
        const e = reviveError(m.error, this.what);
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
        else job.reject(reviveError(m.error, this.what));
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
    worker.on('error', (e) => failed(new InternalError(`a ${this.what} worker thread failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => {
      if (slot.dead) return;
      failed(new InternalError(`a ${this.what} worker thread stopped (exit code ${code})`));
    });
    return slot;
  }

  /** Ends a worker that failed (it runs no native code any more); its chunk rejects. A later chunk starts a new one. */
  private kill(i: number, s: Slot<P>, reason: unknown): void {
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
      const k = this.queue.findIndex((j) => j.lane === undefined || j.lane === i);
      if (k < 0) continue;
      const slot = this.slots[i] ?? this.spawn(i);
      if (!isIdle(slot)) continue;
      const job = { ...this.queue.splice(k, 1)[0]!, id: this.nextId++ };
      slot.job = job;
      slot.worker.ref();
      const msg: ToPoolWorker<P> = { type: 'job', id: job.id, payload: job.payload };
      slot.ready.then(
        () => {
          if (this.slots[i] === slot && slot.job === job) slot.worker.postMessage(msg, job.transfer);
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
        () => undefined, // kill() has rejected the job
      );
    }
  }
}

const livePools = new Set<WorkerPool<unknown>>();

function stopAllAtExit(): void {
  const deadline = Date.now() + 5000;
  for (const p of livePools) p.stopForExit(deadline);
}

function isIdle(s: Slot<unknown>): boolean {
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

