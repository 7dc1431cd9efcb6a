/**
 * Configuration types and built-in defaults. Defaults live here and only here:
 * commander options never carry a .default() for anything the config can set.
 */

export const DEVICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

export const CUDNN_ALGO_SEARCH = ['exhaustive', 'heuristic', 'default'] as const;
export type CudnnConvAlgoSearch = (typeof CUDNN_ALGO_SEARCH)[number];

export interface ProfileValues {
  maxCpuThreads: number;
  cpuUsageLimit: number;
  maxConcurrentTts: number;
  maxConcurrentVideo: number;
  maxConcurrentHeavyTasks: number;
}

/** Presets from the CPU guide stemkit grew from. `medium` is the default. */
export const BUILTIN_PROFILES: Readonly<Record<string, ProfileValues>> = {
  small: { maxCpuThreads: 2, cpuUsageLimit: 0.5, maxConcurrentTts: 1, maxConcurrentVideo: 1, maxConcurrentHeavyTasks: 2 },
  medium: { maxCpuThreads: 4, cpuUsageLimit: 0.7, maxConcurrentTts: 2, maxConcurrentVideo: 1, maxConcurrentHeavyTasks: 3 },
  large: { maxCpuThreads: 6, cpuUsageLimit: 0.8, maxConcurrentTts: 3, maxConcurrentVideo: 1, maxConcurrentHeavyTasks: 4 },
};
export const DEFAULT_PROFILE = 'medium';

export interface GpuConfig {
  deviceId: number;
  /** Fraction of the device's memory ONNX Runtime's arena may use (CUDA gpu_mem_limit). */
  memoryFraction: number;
  cudnnConvAlgoSearch: CudnnConvAlgoSearch;
  tf32: boolean;
}

export interface ModelsConfig {
  /** Base URL replacing the original host of every model file (see README "Mirrors"). */
  mirror: string | undefined;
  offline: boolean;
  /** fp32 | fp16 | int8 | auto (fp32 on CPU, fp16 on CUDA where a variant exists). */
  precision: 'auto' | 'fp32' | 'fp16' | 'int8';
}

export interface BenchTarget {
  /** Upper bound on total seconds for one track of the default length. */
  maxSeconds: number;
  /** Lower bound on throughput in MB/s of input WAV data. */
  minMBps: number;
}

/** `stemkit worker` and the `--queue` paths (README "Many machines"). */
export interface QueueConfig {
  /** redis:// or rediss:// URL (may carry a password and a /db); the queue commands need it. */
  url: string | undefined;
  /** BullMQ queue name; every worker and submitter of one farm uses the same. */
  name: string;
  /** Path prefix in jobs → the same folder as this machine mounts it, e.g. {"/shared": "/mnt/nas"}. */
  pathMap: Record<string, string>;
  /** Folders a worker reads and writes in (after mapping); undefined: the worker's working directory. */
  roots: string[] | undefined;
  /** Runs of a job before it stays failed (bad input never retries). */
  attempts: number;
  /** A job running longer is failed and its slots released. */
  jobTimeoutSec: number;
  /** A worker silent this long (killed, frozen) loses its jobs to the others. */
  stallSec: number;
  /** Largest http(s) input a worker downloads. */
  maxDownloadMB: number;
}

/** The fully resolved configuration every command receives. */
export interface ResolvedConfig extends ProfileValues {
  profile: string;
  device: Device;
  /** Explicit thread count (flag/config); undefined means computed from the profile. */
  threads: number | undefined;
  /**
   * How `cpuThreads` was chosen: 'explicit' (threads set), 'profile' (a profile was selected or a CPU
   * limit set: the profile computation), 'auto-interactive' (none of those, at a terminal: every core),
   * 'auto-server' (none of those, no terminal: the default profile's computation).
   */
  threadsPolicy: 'explicit' | 'profile' | 'auto-interactive' | 'auto-server';
  /** Threads actually used for CPU inference: see computeThreads() and threadsPolicy. */
  cpuThreads: number;
  /** Logical cores the computation saw. */
  cores: number;
  gpu: GpuConfig;
  cacheDir: string;
  runtimeDir: string | undefined;
  ffmpegPath: string | undefined;
  ffprobePath: string | undefined;
  models: ModelsConfig;
  queue: QueueConfig;
  bench: { targets: Record<'2' | '4' | '6', BenchTarget> };
  serve: ServeConfig;
}

/** `stemkit serve` settings (README "Running stemkit as a service"). */
export interface ServeConfig {
  /** Interface to bind; anything but loopback requires a token. */
  host: string;
  port: number;
  /** Accepted jobs waiting for a slot before new ones get 429. Default: 2 × maxConcurrentHeavyTasks of the profile. */
  maxQueued: number;
  /** Largest accepted upload (413 above it). */
  maxUploadBytes: number;
  /** Models kept loaded between jobs (least recently used evicted first). */
  maxLoadedModels: number;
  /** Bytes of model files kept loaded between jobs (the memory bound of the same LRU). Default: half of the machine's memory. */
  maxLoadedBytes: number | undefined;
  /** Seconds a finished job's files are kept. */
  retention: number;
  /** Seconds running jobs get to finish after SIGTERM before they are cancelled. */
  shutdownGrace: number;
  /** Folders whose files a JSON job may name by path (nothing else is readable). */
  inputRoots: string[];
  /** Where uploads and outputs live (a private folder is made inside); default the OS temp folder. */
  workDir: string | undefined;
}

/** The values that do not depend on the machine or environment. */
export const DEFAULTS = {
  device: 'auto' as Device,
  gpu: { deviceId: 0, memoryFraction: 0.9, cudnnConvAlgoSearch: 'exhaustive' as CudnnConvAlgoSearch, tf32: true },
  models: { mirror: undefined, offline: false, precision: 'auto' as const },
  serve: { host: '127.0.0.1', port: 8765, maxUploadBytes: 1024 ** 3, maxLoadedModels: 2, retention: 3600, shutdownGrace: 30 },
  queue: { name: 'stemkit', attempts: 3, jobTimeoutSec: 3600, stallSec: 30, maxDownloadMB: 2048 },
  bench: {
    targets: {
      '2': { maxSeconds: 15, minMBps: 2 },
      '4': { maxSeconds: 30, minMBps: 1 },
      '6': { maxSeconds: 45, minMBps: 0.8 },
    },
  },
} as const;

/**
 * CPU threads used = max(1, min(maxCpuThreads, floor(cores × cpuUsageLimit))), unless set explicitly.
 */
export function computeThreads(cores: number, values: Pick<ProfileValues, 'maxCpuThreads' | 'cpuUsageLimit'>, explicit?: number): number {
  if (explicit !== undefined) return explicit;
  return Math.max(1, Math.min(values.maxCpuThreads, Math.floor(cores * values.cpuUsageLimit)));
}
