/**
 * The server's executor processes and the warm-model LRU across them.
 *
 * A task goes to an idle executor that already holds its model (so the second job on a model loads
 * nothing), else to the idle executor holding the fewest models, else to a new executor. The number of
 * executors therefore never exceeds the number of jobs running at once, which the job slots bound.
 * Before an executor loads a model, the least recently used models of idle executors (or of that one) are
 * evicted until at most `maxLoadedModels` stay loaded and their model files (the size last seen for the
 * incoming model included) fit `maxLoadedBytes`; after each job the sizes the executor measured are checked
 * against that budget again. Models in use by a running job are never evicted (src/serve/lru.ts).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../config/schema.js';
import { InternalError, InterruptedError } from '../errors.js';
import type { LogEvent, ProgressEvent } from '../progress.js';
import { chooseEvictions, type WarmModel } from './lru.js';
import type { FromExecutor, JobError, ProviderStatus, SeparateTask, TaskResult, ToExecutor, TtsTask } from './protocol.js';

/** Seconds a cancelled task gets to stop between blocks before its executor is killed. */
const CANCEL_KILL_SEC = 5;

export interface TaskHandlers {
  onProgress(e: ProgressEvent): void;
  onLog(e: LogEvent): void;
  /** The task waits in a queue outside the server (`serve --queue`: for a worker) while true. */
  onQueued?(queued: boolean): void;
}

export type TaskOutcome = { ok: true; value: TaskResult } | { ok: false; error: JobError };

interface Pending extends TaskHandlers {
  resolve(o: TaskOutcome): void;
  key: string;
  killTimer?: NodeJS.Timeout;
}

interface Executor {
  child: ChildProcess;
  /** key → last use (ms), in the executor's own view after its last message. */
  loaded: Map<string, number>;
  /** key → bytes of its model files, as the executor measured them (absent until its first job on it ends). */
  bytes: Map<string, number>;
  task: Pending | undefined;
  taskId: string | undefined;
  ready: Promise<ProviderStatus[]>;
}

export interface LoadedModel {
  key: string;
  pid: number;
  lastUsed: string;
  /** Size of its model files (the memory proxy of the LRU); 0 while its first job runs. */
  bytes: number;
}

/** The default byte budget of warm models: half of the machine's memory. */
export function defaultMaxLoadedBytes(): number {
  return Math.floor(totalmem() / 2);
}

export class ExecutorPool {
  private readonly executors: Executor[] = [];
  private providers: ProviderStatus[] | undefined;
  private closed = false;
  /** key → the last size measured for it, kept after eviction: the estimate for its next load. */
  private readonly knownBytes = new Map<string, number>();

  constructor(
    private readonly config: ResolvedConfig,
    private readonly maxLoaded: number,
    private readonly maxLoadedBytes: number = defaultMaxLoadedBytes(),
  ) {}

  /** Starts the first executor, which also probes the execution providers for /health. */
  async start(): Promise<void> {
    const first = this.spawn(true);
    this.providers = await first.ready;
  }

  /** Providers that created a session and ran in an executor (undefined until the first one is ready). */
  providerStatus(): ProviderStatus[] | undefined {
    return this.providers;
  }

  loadedModels(): LoadedModel[] {
    return this.executors.flatMap((e) => [...e.loaded].map(([key, t]) => ({ key, pid: e.child.pid ?? 0, lastUsed: new Date(t).toISOString(), bytes: e.bytes.get(key) ?? 0 })));
  }

  executorCount(): number {
    return this.executors.length;
  }

  /** Runs a task; `cancel()` aborts it (the executor is killed if it does not stop within 5 s). */
  run(task: SeparateTask | TtsTask, handlers: TaskHandlers): { done: Promise<TaskOutcome>; cancel(): void } {
    if (this.closed) return { done: Promise.resolve({ ok: false, error: errorOf(new InterruptedError('the server is shutting down')) }), cancel: () => {} };
    const ex = this.pick(task.key);
    this.evictFor(ex, task.key);
    let resolve!: (o: TaskOutcome) => void;
    const done = new Promise<TaskOutcome>((r) => (resolve = r));
    const pending: Pending = { ...handlers, resolve, key: task.key };
    ex.task = pending;
    ex.taskId = task.id;
    void ex.ready.then(() => this.send(ex, task));
    const cancel = (): void => {
      if (ex.task !== pending || pending.killTimer) return;
      this.send(ex, { type: 'cancel', id: task.id });
      pending.killTimer = setTimeout(() => ex.child.kill('SIGKILL'), CANCEL_KILL_SEC * 1000);
      pending.killTimer.unref();
    };
    return { done, cancel };
  }

  /** Closes every executor's channel (they release their models and end); kills those still alive after 2 s. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.executors.map(
        (e) =>
          new Promise<void>((resolve) => {
            if (e.child.exitCode !== null || e.child.signalCode !== null) return resolve();
            const t = setTimeout(() => e.child.kill('SIGKILL'), 2000);
            e.child.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            if (e.child.connected) e.child.disconnect();
            else e.child.kill('SIGKILL');
          }),
      ),
    );
  }

  private pick(key: string): Executor {
    const idle = this.executors.filter((e) => e.task === undefined);
    const warm = idle.find((e) => e.loaded.has(key));
    if (warm) return warm;
    const least = idle.sort((a, b) => a.loaded.size - b.loaded.size)[0];
    return least ?? this.spawn(false);
  }

  private evictFor(target: Executor, key: string): void {
    if (target.loaded.has(key)) {
      target.loaded.set(key, Date.now());
      return;
    }
    this.evict({ bytes: this.knownBytes.get(key) ?? 0 });
    target.loaded.set(key, Date.now());
  }

  /** Evicts idle models, least recently used first, until the limits hold (with `incoming` about to load). */
  private evict(incoming?: { bytes: number }): void {
    const where = new Map<string, { e: Executor; key: string }>();
    const models: WarmModel[] = this.executors.flatMap((e, i) =>
      [...e.loaded].map(([key, lastUsed]) => {
        const id = `${i}:${key}`;
        where.set(id, { e, key });
        return { id, bytes: e.bytes.get(key) ?? 0, lastUsed, busy: e.task !== undefined };
      }),
    );
    for (const id of chooseEvictions(models, { maxModels: this.maxLoaded, maxBytes: this.maxLoadedBytes }, incoming)) {
      const { e, key } = where.get(id)!;
      e.loaded.delete(key);
      e.bytes.delete(key);
      this.send(e, { type: 'evict', key });
    }
  }

  private send(e: Executor, m: ToExecutor): void {
    if (e.child.connected) e.child.send(m);
  }

  private spawn(probe: boolean): Executor {
    const child = fork(fileURLToPath(new URL('./executor.js', import.meta.url)), [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      execArgv: [],
      serialization: 'advanced',
    });
    let ready!: (p: ProviderStatus[]) => void;
    const ex: Executor = { child, loaded: new Map(), bytes: new Map(), task: undefined, taskId: undefined, ready: new Promise((r) => (ready = r)) };
    this.executors.push(ex);
    child.on('message', (raw: unknown) => {
      const m = raw as FromExecutor;
      if (m.type === 'ready') return ready(m.providers);
      if (m.type === 'evicted') return;
      if (m.id !== ex.taskId || !ex.task) return;
      if (m.type === 'progress') ex.task.onProgress(m.event);
      else if (m.type === 'log') ex.task.onLog(m.event);
      else if (m.type === 'done') {
        const p = ex.task;
        ex.task = undefined;
        ex.taskId = undefined;
        if (p.killTimer) clearTimeout(p.killTimer);
        // The executor's list is the truth (a failed load leaves nothing loaded); keep the parent's use times.
        const times = ex.loaded;
        ex.loaded = new Map(m.loaded.map((k) => [k, times.get(k) ?? Date.now()]));
        ex.bytes = new Map(Object.entries(m.bytes));
        for (const [k, b] of ex.bytes) this.knownBytes.set(k, b);
        // Now that the sizes are known: a model over the byte budget is released once idle.
        this.evict();
        p.resolve(m.ok ? { ok: true, value: m.value } : { ok: false, error: m.error });
      }
    });
    child.on('exit', (code, signal) => {
      const i = this.executors.indexOf(ex);
      if (i >= 0) this.executors.splice(i, 1);
      ready([]);
      const p = ex.task;
      ex.task = undefined;
      if (p) {
        if (p.killTimer) clearTimeout(p.killTimer);
        const e = p.killTimer
          ? new InterruptedError('the job was cancelled')
          : new InternalError(`the executor process ended (${signal ?? `exit ${code}`}) during the job`, { code: 'E_EXECUTOR_DIED', hint: 'see the server log; the machine may be out of memory' });
        p.resolve({ ok: false, error: errorOf(e) });
      }
    });
    this.send(ex, { type: 'init', config: this.config, probe });
    return ex;
  }
}

function errorOf(e: InternalError | InterruptedError): JobError {
  return { code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode };
}
