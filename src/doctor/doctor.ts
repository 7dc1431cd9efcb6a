/**
 * `stemkit doctor`'s checks as data: which onnxruntime providers really run a model, the GPUs nvidia-smi
 * lists, ffmpeg/ffprobe/espeak-ng, the model cache and the config in use. Every check is optional: a
 * missing part is a result (`missing`, with what it affects), not an error. Heavy modules (onnxruntime,
 * execa, the model cache) are imported inside the checks.
 */
import type { ResolvedConfig } from '../config/schema.js';

export type CheckStatus = 'ok' | 'missing' | 'failed';

export type DoctorProvider = 'cpu' | 'cuda' | 'webgpu';

export interface ProviderCheck {
  provider: DoctorProvider;
  /** Listed by the onnxruntime-node binding (or, for CUDA, its provider library is installed). */
  present: boolean;
  /** A tiny model actually ran on it. */
  initialises: boolean;
  status: CheckStatus;
  detail: string;
  /** Seconds to create the session and run it once, when it worked. */
  seconds?: number;
  hint?: string;
}

export interface ToolCheck {
  name: 'ffmpeg' | 'ffprobe' | 'espeak-ng';
  command: string;
  status: CheckStatus;
  version?: string;
  detail: string;
  affects: string;
}

export interface GpuInfo {
  index: number;
  name: string;
  memoryMiB: number;
  driver: string;
}

export interface DoctorReport {
  type: 'doctor';
  node: string;
  platform: string;
  onnxruntime: string | null;
  providers: ProviderCheck[];
  gpus: { status: CheckStatus; detail: string; devices: GpuInfo[] };
  tools: ToolCheck[];
  cache: { dir: string; exists: boolean; totalBytes: number; entries: Array<{ name: string; bytes: number; detail: string }> };
  config: { file: string | null; profile: string; device: string; cpuThreads: number };
}

const TOOL_AFFECTS: Record<ToolCheck['name'], string> = {
  ffmpeg: 'decoding anything but WAV (mp3, flac, m4a, video), writing flac/mp3/opus/ogg/m4a, and video remux',
  ffprobe: 'reading the streams of non-WAV inputs and videos',
  'espeak-ng': 'phonemizing TTS text in languages other than English (English uses the bundled WASM espeak-ng)',
};

/** `ffmpeg version 5.1.6-0+deb12u1 Copyright …` → `5.1.6-0+deb12u1`; `eSpeak NG text-to-speech: 1.51  Data at: …` → `1.51`. Pure. */
export function parseToolVersion(name: ToolCheck['name'], stdout: string): string | undefined {
  const first = stdout.split('\n').find((l) => l.trim() !== '') ?? '';
  if (name === 'espeak-ng') return /text-to-speech:\s*(\S+)/.exec(first)?.[1];
  return /version\s+(\S+)/.exec(first)?.[1];
}

/** Parses `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader,nounits`. Pure. */
export function parseNvidiaSmi(stdout: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of stdout.split('\n')) {
    const parts = line.split(',').map((s) => s.trim());
    if (parts.length < 4) continue;
    const index = Number(parts[0]);
    const memoryMiB = Number(parts[2]);
    if (!Number.isInteger(index) || !Number.isFinite(memoryMiB)) continue;
    gpus.push({ index, name: parts[1] ?? '', memoryMiB, driver: parts[3] ?? '' });
  }
  return gpus;
}

function isMissingCommand(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? (e as { shortMessage?: string }).shortMessage ?? e.message : String(e);
  // ORT prefixes provider failures with its source location and the failed check; the reason follows it.
  return (text.split('\n')[0] ?? '').replace(/\/onnxruntime_src\/\S+:\d+ .*? was false\. /, '');
}

async function checkTool(name: ToolCheck['name'], command: string, signal: AbortSignal): Promise<ToolCheck> {
  const { execa } = await import('execa');
  const affects = TOOL_AFFECTS[name];
  try {
    const r = await execa(command, [name === 'espeak-ng' ? '--version' : '-version'], { timeout: 15_000, cancelSignal: signal });
    const version = parseToolVersion(name, String(r.stdout));
    return { name, command, status: 'ok', ...(version ? { version } : {}), detail: version ? `version ${version}` : 'found (version not recognised)', affects };
  } catch (e) {
    if (isMissingCommand(e)) return { name, command, status: 'missing', detail: `not found (${command})`, affects };
    return { name, command, status: 'failed', detail: `could not run ${command}: ${firstLine(e)}`, affects };
  }
}

async function checkGpus(signal: AbortSignal): Promise<DoctorReport['gpus']> {
  const { execa } = await import('execa');
  try {
    const r = await execa('nvidia-smi', ['--query-gpu=index,name,memory.total,driver_version', '--format=csv,noheader,nounits'], {
      timeout: 15_000,
      cancelSignal: signal,
    });
    const devices = parseNvidiaSmi(String(r.stdout));
    return { status: devices.length > 0 ? 'ok' : 'missing', detail: devices.length > 0 ? `${devices.length} NVIDIA GPU(s)` : 'nvidia-smi lists no GPU', devices };
  } catch (e) {
    if (isMissingCommand(e)) return { status: 'missing', detail: 'nvidia-smi not found (no NVIDIA driver)', devices: [] };
    return { status: 'failed', detail: `nvidia-smi failed: ${firstLine(e)}`, devices: [] };
  }
}

/** The probe model (x·2), shipped in models/ (see src/onnx/probe.ts). */
export async function probeModel(): Promise<Uint8Array> {
  const [{ readFile }, { join }, { packageModelsDir }, { PROBE_MODEL_FILE }] = await Promise.all([
    import('node:fs/promises'),
    import('node:path'),
    import('../models/registry.js'),
    import('../onnx/probe.js'),
  ]);
  return new Uint8Array(await readFile(join(packageModelsDir(), PROBE_MODEL_FILE)));
}

const PROBE_TIMEOUT_MS = 60_000;

export type ProbeOutcome = { ok: true; provider: string; seconds: number } | { ok: false; message: string; hint?: string };

/**
 * Creates a session on `provider`, runs the probe model once and checks the answer. Exported for the
 * child-process probe, which imports this module by URL.
 */
export async function probeInProcess(provider: 'cpu' | 'cuda' | 'webgpu', model: Uint8Array, config: ResolvedConfig, gpuMemoryBytes: number | undefined): Promise<ProbeOutcome> {
  const rt = await import('../runtime/onnx.js');
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const probe = (async () => {
      const s = await rt.createSession(model, { device: provider, threads: config.cpuThreads, gpu: config.gpu, gpuMemoryBytes });
      try {
        const r = await s.run({ x: { data: new Float32Array([1, 2, 3, 4]), dims: [1, 4] } });
        const y = Array.from(r['y']?.data as Float32Array);
        if (y.join(',') !== '2,4,6,8') throw new Error(`wrong result ${y.join(',')}`);
        return s.provider;
      } finally {
        await s.dispose();
      }
    })();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
    });
    const used = await Promise.race([probe, timeout]);
    return { ok: true, provider: used, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    const hint = (e as { hint?: string }).hint;
    return { ok: false, message: firstLine(e), ...(hint ? { hint } : {}) };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

// Runs in a child node: GPU providers print native diagnostics straight to fd 2 and can crash the
// process while initialising, neither of which may reach the doctor's own output.
const CHILD_PROBE = `
const [, url, json] = process.argv;
const { provider, model, config, gpuMemoryBytes } = JSON.parse(json);
const { probeInProcess } = await import(url);
const out = await probeInProcess(provider, Uint8Array.from(Buffer.from(model, 'base64')), config, gpuMemoryBytes ?? undefined);
process.stdout.write('\\n' + JSON.stringify(out) + '\\n');
`;

/** probeInProcess in a child process when running from the build; in-process under a TS test runner. */
async function probeIsolated(provider: 'cuda' | 'webgpu', model: Uint8Array, config: ResolvedConfig, gpuMemoryBytes: number | undefined, signal: AbortSignal): Promise<ProbeOutcome> {
  const self = import.meta.url;
  if (!self.endsWith('.js')) return probeInProcess(provider, model, config, gpuMemoryBytes);
  const { execa } = await import('execa');
  const payload = JSON.stringify({ provider, model: Buffer.from(model).toString('base64'), config, gpuMemoryBytes: gpuMemoryBytes ?? null });
  const r = await execa(process.execPath, ['--input-type=module', '-e', CHILD_PROBE, self, payload], {
    timeout: PROBE_TIMEOUT_MS,
    cancelSignal: signal,
    reject: false,
  });
  const last = String(r.stdout).trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as ProbeOutcome;
  } catch {
    const why = r.timedOut ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s` : r.signal ? `the probe process died (${r.signal})` : `the probe process failed (exit ${r.exitCode ?? '?'})`;
    return { ok: false, message: why };
  }
}

async function checkProviders(config: ResolvedConfig, gpuMemoryBytes: number | undefined, signal: AbortSignal, which: readonly DoctorProvider[]): Promise<ProviderCheck[]> {
  const rt = await import('../runtime/onnx.js');
  let listed: string[] = [];
  try {
    const ort = await rt.loadOrt();
    listed = (ort.listSupportedBackends?.() ?? []).map((b) => b.name.toLowerCase());
  } catch (e) {
    const detail = `onnxruntime-node could not be loaded: ${firstLine(e)}`;
    const hint = 'Reinstall dependencies with `npm ci`.';
    return which.map((provider) => ({ provider, present: false, initialises: false, status: 'failed', detail, hint }));
  }
  const model = await probeModel();
  const out: ProviderCheck[] = [];
  for (const provider of which) {
    const present = provider === 'cuda' ? rt.cudaProviderInstalled() : listed.includes(provider);
    if (provider === 'cuda' && !present) {
      out.push({
        provider,
        present,
        initialises: false,
        status: 'missing',
        detail: 'the CUDA provider is not installed (onnxruntime-node was installed without it)',
        hint: 'With network access and CUDA 12 + cuDNN 9, in the folder stemkit is installed in: `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`.',
      });
      continue;
    }
    const r = provider === 'cpu' ? await probeInProcess(provider, model, config, gpuMemoryBytes) : await probeIsolated(provider, model, config, gpuMemoryBytes, signal);
    if (r.ok) {
      out.push({ provider, present: true, initialises: true, status: 'ok', detail: `a test model ran on ${r.provider} in ${r.seconds.toFixed(2)} s`, seconds: r.seconds });
    } else {
      out.push({ provider, present, initialises: false, status: present ? 'failed' : 'missing', detail: r.message, ...(r.hint ? { hint: r.hint } : {}) });
    }
  }
  return out;
}

async function checkCache(config: ResolvedConfig): Promise<DoctorReport['cache']> {
  const { listCache } = await import('../models/cache.js');
  const listing = await listCache(config);
  return {
    dir: listing.dir,
    exists: listing.exists,
    totalBytes: listing.totalBytes,
    entries: listing.models.map((m) => {
      const bits = [m.installed.length > 0 ? `installed: ${m.installed.join(', ')}` : 'not complete'];
      if (m.partial.length > 0) bits.push(`${m.partial.length} partial download(s)`);
      if (!m.known) bits.push('not in the registry');
      return { name: m.id, bytes: m.bytes, detail: bits.join('; ') };
    }),
  };
}

export interface DoctorOptions {
  config: ResolvedConfig;
  /** The config file in use, reported as is. */
  configFile?: string | undefined;
  signal?: AbortSignal;
  /** The providers to probe (default all three). */
  providers?: readonly DoctorProvider[];
}

/**
 * Runs every check and returns them as data (the CLI renders them, `--json` prints them). Never throws
 * for a missing optional component: each check says `ok`, `missing` or `failed`, with what it affects.
 */
export async function collectDoctorReport(opts: DoctorOptions): Promise<DoctorReport> {
  const { config } = opts;
  const signal = opts.signal ?? new AbortController().signal;
  const [gpus, ffmpeg, ffprobe, espeak, cache] = await Promise.all([
    checkGpus(signal),
    checkTool('ffmpeg', config.ffmpegPath ?? 'ffmpeg', signal),
    checkTool('ffprobe', config.ffprobePath ?? 'ffprobe', signal),
    checkTool('espeak-ng', 'espeak-ng', signal),
    checkCache(config),
  ]);
  const gpu = gpus.devices.find((d) => d.index === config.gpu.deviceId);
  const providers = await checkProviders(config, gpu ? gpu.memoryMiB * 1024 * 1024 : undefined, signal, opts.providers ?? ['cpu', 'cuda', 'webgpu']);
  const rt = await import('../runtime/onnx.js');
  return {
    type: 'doctor',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    onnxruntime: rt.ortVersion() ?? null,
    providers,
    gpus,
    tools: [ffmpeg, ffprobe, espeak],
    cache,
    config: { file: opts.configFile ?? null, profile: config.profile, device: config.device, cpuThreads: config.cpuThreads },
  };
}
