/**
 * The only module that touches onnxruntime-node. It is imported lazily (`await import`) so that
 * `stemkit --help`, config errors and pure-DSP work never load the native binding.
 */
import type * as Ort from 'onnxruntime-node';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Device, GpuConfig } from '../config/schema.js';
import { InternalError, UnavailableError, DataError, InputError } from '../errors.js';

export type Provider = 'cpu' | 'cuda' | 'webgpu';

export type TensorArray = Float32Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

/** A plain tensor: stemkit code outside this module never sees an ort.Tensor. */
export interface TensorData {
  data: TensorArray;
  dims: readonly number[];
}

export interface ValueInfo {
  name: string;
  /** 'float32', 'int64', 'int32', 'float16', … or undefined when the runtime did not say. */
  type: string | undefined;
  /** Dimensions; a symbolic or unknown dimension is a string or -1. */
  shape: ReadonlyArray<number | string>;
}

export interface SessionOptions {
  device: Device;
  /** Intra-op threads for CPU sessions (the config's computed cap). */
  threads: number;
  gpu?: GpuConfig | undefined;
  /** Total GPU memory in bytes, when known (nvidia-smi); used to turn memoryFraction into a limit. */
  gpuMemoryBytes?: number | undefined;
  /** ORT log verbosity; ORT is noisy at session creation, so default to errors only. */
  logLevel?: 'verbose' | 'info' | 'warning' | 'error' | 'fatal';
  /** How ORT manages CPU memory; defaults in {@link DEFAULT_SESSION_MEMORY}. */
  memory?: SessionMemory | undefined;
}

/**
 * ORT's CPU memory management for a session. The arena and memory patterns are off by default (plan reuse stays
 * on: turning it off costs a busy-waiting thread, so only HTDemucs asks for that), as measured with
 * `scripts/bench-memory.mjs` (README, "Memory"): the arena grows across `session.run` calls (it extends by powers
 * of two and never shrinks) and memory patterns add one plan-sized block per run, so a full-size HTDemucs peaked at
 * 5.0 GB on a 30 s track with ORT's defaults, 3.6 GB with patterns off and 2.6 GB with both off. The price is
 * fresh pages for each large tensor (+15 % CPU time there); a model fed varying small shapes pays more than it
 * saves, so `classic` asks for the arena. The arena's extend strategy (`kSameAsRequested`) cannot be set for the
 * CPU provider from onnxruntime-node, and its RunOptions carry no arena-shrinkage key.
 */
export interface SessionMemory {
  /** ORT's CPU memory arena (`enableCpuMemArena`). */
  cpuArena?: boolean;
  /** Pre-planned memory patterns (`enableMemPattern`); only useful together with the arena. */
  memPattern?: boolean;
  /**
   * ORT's static buffer reuse (default on). ORT's planner hands a dead intermediate's buffer to a later tensor of
   * the same byte size and keeps it allocated in between: in a U-Net such as HTDemucs the first encoder's
   * temporaries are kept for the last decoder layer, so a full-size segment holds 2.06 GB of tensors where
   * 0.77 GB are live (allocation trace in the README, "Speed and memory"). onnxruntime-node cannot set the
   * session's `enable_mem_reuse`; ORT's parallel executor is the one mode that plans without reuse. Its caller
   * busy-waits for the graph, so `false` runs the graph on `threads - 1` compute threads plus that waiting one
   * (one compute thread when `threads` is 1, which then keeps two cores busy).
   */
  planReuse?: boolean;
}

/** The memory settings a session gets unless its caller overrides them. */
export const DEFAULT_SESSION_MEMORY: Readonly<Required<SessionMemory>> = Object.freeze({ cpuArena: false, memPattern: false, planReuse: true });

export interface ModelSession {
  readonly provider: Provider;
  readonly threads: number;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  /** Releases the native session. Safe to call more than once. */
  dispose(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

let ortPromise: Promise<typeof Ort> | undefined;

/** Bytes of the model files (or buffers) behind the sessions open in this process. */
let openBytes = 0;

/**
 * The summed size of the models whose sessions are open in this process: a proxy for the memory they hold
 * (weights dominate; ORT's working buffers and a TTS voice table are not counted). `stemkit serve` bounds its
 * warm models with it.
 */
export function openModelBytes(): number {
  return openBytes;
}

/** Loads onnxruntime-node once, on first use. */
export async function loadOrt(): Promise<typeof Ort> {
  // onnxruntime-node 1.30's native library has a telemetry client: it records events under
  // ~/.cache/Microsoft/DeveloperTools/.onnxruntime and uploads them. stemkit promises no network with
  // --offline and no files outside its cache; the library reads this variable when it loads.
  process.env['ORT_DISABLE_TELEMETRY'] = '1';
  ortPromise ??= import('onnxruntime-node').catch((cause: unknown) => {
    ortPromise = undefined;
    throw new UnavailableError('onnxruntime-node could not be loaded', {
      code: 'E_ORT_LOAD',
      cause,
      hint: 'Reinstall dependencies with `npm ci`; see `stemkit doctor`.',
    });
  });
  return ortPromise;
}

/** The installed onnxruntime-node version (read from its package.json, no native load). */
export function ortVersion(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require('onnxruntime-node/package.json') as { version?: string };
    return pkg.version;
  } catch {
    return undefined;
  }
}

/**
 * Whether the CUDA provider library is present next to the binding. onnxruntime-node only has it
 * when installed with ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with network access.
 */
export function cudaProviderInstalled(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = join(root, 'bin', 'napi-v6', 'linux', 'x64');
    return existsSync(join(dir, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

const LOG_LEVELS = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 } as const;

function baseOptions(opts: SessionOptions): Ort.InferenceSession.SessionOptions {
  const memory = { ...DEFAULT_SESSION_MEMORY, ...opts.memory };
  const threads = Math.max(1, opts.threads);
  return {
    enableCpuMemArena: memory.cpuArena,
    enableMemPattern: memory.memPattern,
    // Inter-op 1 and sequential execution keep the total thread count at the configured cap. Without plan reuse
    // the parallel executor's caller spins while one inter-op thread runs the graph: one compute thread fewer.
    intraOpNumThreads: memory.planReuse ? threads : Math.max(1, threads - 1),
    interOpNumThreads: memory.planReuse ? 1 : 2,
    executionMode: memory.planReuse ? 'sequential' : 'parallel',
    graphOptimizationLevel: 'all',
    logSeverityLevel: LOG_LEVELS[opts.logLevel ?? 'error'],
    // ORT's worker threads spin-wait between parallel sections by default: on a shared server that burns
    // whole cores while idle (defeating cpuUsageLimit), and on 2 cores 2 threads ran slower than 1.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

/** The CUDA execution-provider options for a session (exported for tests: no GPU is needed to check them). */
export function cudaProvider(opts: SessionOptions): Ort.InferenceSession.ExecutionProviderConfig {
  const gpu = opts.gpu;
  const provider: Record<string, unknown> = { name: 'cuda', deviceId: gpu?.deviceId ?? 0 };
  if (gpu) {
    // Keys follow ORT's CUDA provider option names; bindings that do not know a key ignore it.
    provider['cudnn_conv_algo_search'] = { exhaustive: 'EXHAUSTIVE', heuristic: 'HEURISTIC', default: 'DEFAULT' }[gpu.cudnnConvAlgoSearch];
    provider['use_tf32'] = gpu.tf32 ? '1' : '0';
    if (opts.gpuMemoryBytes) provider['gpu_mem_limit'] = String(Math.floor(opts.gpuMemoryBytes * gpu.memoryFraction));
  }
  return provider as unknown as Ort.InferenceSession.ExecutionProviderConfig;
}

function describeValue(name: string, meta: Ort.InferenceSession.ValueMetadata | undefined): ValueInfo {
  if (meta && meta.isTensor) {
    return { name, type: meta.type, shape: meta.shape.map((d) => (typeof d === 'number' ? d : String(d))) };
  }
  return { name, type: undefined, shape: [] };
}

async function openSession(
  ort: typeof Ort,
  model: string | Uint8Array,
  options: Ort.InferenceSession.SessionOptions,
): Promise<Ort.InferenceSession> {
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

function providerFailure(device: 'cuda' | 'webgpu', cause: unknown): UnavailableError {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  if (device === 'cuda') {
    return new UnavailableError(
      cudaProviderInstalled()
        ? `CUDA was requested but its provider failed to initialise: ${reason}`
        : 'CUDA was requested but onnxruntime-node was installed without the CUDA provider',
      {
        code: 'E_DEVICE_UNAVAILABLE',
        cause,
        hint: 'Install the CUDA provider with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` (in the folder stemkit is installed in; needs network access, CUDA 12 and cuDNN 9), or use `device cpu`.',
        details: { hintOption: 'device' },
      },
    );
  }
  return new UnavailableError(`WebGPU was requested but could not be initialised: ${reason}`, {
    code: 'E_DEVICE_UNAVAILABLE',
    cause,
    hint: 'WebGPU needs a GPU with Vulkan drivers (Linux) or Metal/D3D12; use `device cpu` or `device cuda` instead.',
    details: { hintOption: 'device' },
  });
}

/**
 * Creates a session on the requested device.
 * - `auto`: CUDA when its provider is installed and a session actually initialises, else CPU.
 * - `cuda` / `webgpu`: that provider or an UnavailableError (exit 69), never a silent fallback.
 */
export async function createSession(model: string | Uint8Array, opts: SessionOptions): Promise<ModelSession> {
  if (typeof model === 'string' && !existsSync(model)) {
    throw new InputError(`model file not found: ${model}`, { code: 'E_MODEL_NOT_FOUND', hint: 'Check the path, or run `stemkit models list`.' });
  }
  const ort = await loadOrt();
  const base = baseOptions(opts);
  const attempts: Array<{ provider: Provider; eps: Ort.InferenceSession.ExecutionProviderConfig[] }> = [];
  if (opts.device === 'cuda' && !cudaProviderInstalled()) {
    // Fail before asking ORT, which would log a native stack trace for the missing library.
    throw providerFailure('cuda', new Error('libonnxruntime_providers_cuda.so is not installed'));
  }
  if (opts.device === 'cuda' || (opts.device === 'auto' && cudaProviderInstalled())) {
    attempts.push({ provider: 'cuda', eps: [cudaProvider(opts)] });
  }
  if (opts.device === 'webgpu') attempts.push({ provider: 'webgpu', eps: ['webgpu'] });
  if (opts.device === 'cpu' || opts.device === 'auto') attempts.push({ provider: 'cpu', eps: ['cpu'] });

  if (attempts[0]?.provider === 'cuda' && opts.gpu && opts.gpuMemoryBytes === undefined) {
    // memoryFraction needs the card's size; nvidia-smi is the one place that knows it without CUDA bindings.
    const { queryGpus } = await import('./gpu.js');
    const card = (await queryGpus())[opts.gpu.deviceId];
    if (card) attempts[0] = { provider: 'cuda', eps: [cudaProvider({ ...opts, gpuMemoryBytes: card.memoryTotalMiB * 1024 * 1024 })] };
  }
  let lastError: unknown;
  for (const attempt of attempts) {
    let session: Ort.InferenceSession;
    try {
      // Memory patterns stay ORT's default on GPU providers unless asked: the measurements behind
      // DEFAULT_SESSION_MEMORY are CPU ones, and a GPU provider's own arena serves its tensors.
      // The same holds for plan reuse: the parallel executor is a CPU-memory lever, GPU sessions stay sequential.
      const pattern: Ort.InferenceSession.SessionOptions =
        attempt.provider === 'cpu'
          ? {}
          : { enableMemPattern: opts.memory?.memPattern ?? true, executionMode: 'sequential', interOpNumThreads: 1, intraOpNumThreads: Math.max(1, opts.threads) };
      session = await openSession(ort, model, { ...base, ...pattern, executionProviders: attempt.eps });
    } catch (cause) {
      lastError = cause;
      if (opts.device === 'cuda' || opts.device === 'webgpu') throw providerFailure(opts.device, cause);
      if (attempt.provider === 'cpu') break;
      continue; // auto: CUDA did not initialise, try the CPU.
    }
    return wrapSession(ort, session, attempt.provider, attempt.provider === 'cpu' ? Math.max(1, opts.threads) : 0, typeof model === 'string' ? fileBytes(model) : model.byteLength);
  }
  throw new DataError(`the model could not be loaded: ${lastError instanceof Error ? lastError.message.split('\n')[0] : String(lastError)}`, {
    code: 'E_MODEL_INVALID',
    cause: lastError,
    hint: 'The file may be truncated or not an ONNX model; `stemkit models verify` checks downloaded models.',
  });
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function wrapSession(ort: typeof Ort, session: Ort.InferenceSession, provider: Provider, threads: number, bytes: number): ModelSession {
  const inputs = session.inputNames.map((n, i) => describeValue(n, session.inputMetadata?.[i]));
  const outputs = session.outputNames.map((n, i) => describeValue(n, session.outputMetadata?.[i]));
  let released = false;
  openBytes += bytes;
  const dispose = async (): Promise<void> => {
    if (released) return;
    released = true;
    openBytes -= bytes;
    await session.release();
  };
  return {
    provider,
    threads,
    inputs,
    outputs,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      if (released) throw new InternalError('run() called on a released session');
      // Frame-by-frame models call this thousands of times a minute: nothing is allocated unless a feed is missing.
      for (const n of session.inputNames) {
        if (!(n in feeds)) throw new InternalError(`missing model inputs: ${session.inputNames.filter((m) => !(m in feeds)).join(', ')}`);
      }
      const ortFeeds: Record<string, Ort.Tensor> = {};
      for (const name in feeds) ortFeeds[name] = toOrtTensor(ort, feeds[name]!);
      let result: Ort.InferenceSession.ReturnType;
      try {
        result = await session.run(ortFeeds);
      } catch (cause) {
        const msg = cause instanceof Error ? cause.message : String(cause);
        // ORT validates every feed against the graph's declared types and fixed dimensions before running: a model
        // that fails there is not the model its adapter took it for (bad data, 65), not a bug in stemkit (70).
        if (/Unexpected input data type|invalid dimensions|Invalid rank|Got invalid/i.test(msg)) {
          throw new DataError(`the model rejected its inputs: ${msg.split('\n')[0]}`, {
            code: 'E_MODEL_CONTRACT',
            cause,
            hint: 'the file does not have the tensor contract of the model it was loaded as; check the model file',
          });
        }
        throw cause;
      }
      const out: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(result)) {
        out[name] = { data: t.data as TensorArray, dims: t.dims };
        t.dispose();
      }
      return out;
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

function toOrtTensor(ort: typeof Ort, t: TensorData): Ort.Tensor {
  const dims = [...t.dims];
  if (t.data instanceof Float32Array) return new ort.Tensor('float32', t.data, dims);
  if (t.data instanceof BigInt64Array) return new ort.Tensor('int64', t.data, dims);
  if (t.data instanceof Int32Array) return new ort.Tensor('int32', t.data, dims);
  if (t.data instanceof Uint16Array) return new ort.Tensor('float16', t.data, dims);
  return new ort.Tensor('uint8', t.data, dims);
}

/** Runs `fn` with a session and always releases it, also when `fn` throws or is interrupted. */
export async function withSession<T>(model: string | Uint8Array, opts: SessionOptions, fn: (s: ModelSession) => Promise<T>): Promise<T> {
  const session = await createSession(model, opts);
  try {
    return await fn(session);
  } finally {
    await session.dispose();
  }
}
