/**
 * `stemkit bench`: per-phase timing of separation in the 2-, 4- and 6-stem modes (and TTS when a voice is
 * installed), one cold run (model load included) and N warm runs, checked against targets and a baseline.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAudioSink, openAudioSource } from '../audio/open.js';
import type { BenchTarget, ResolvedConfig } from '../config/schema.js';
import { isStemkitError, throwIfAborted } from '../errors.js';
import { evaluate } from '../eval/eval.js';
import { separateReferenceSet } from '../eval/separate-set.js';
import { isInstalled } from '../models/cache.js';
import { defaultModelForMode, getModel, listModels } from '../models/registry.js';
import type { Observer } from '../progress.js';
import { loadSeparator, type FileResult, type SeparatorSpec } from '../separate/separate.js';
import { queryGpus, type GpuSnapshot } from '../runtime/gpu.js';
import { benchSignalBlock, wavBytes } from './signal.js';
import { TARGET_TRACK_SECONDS, checkTarget, compareToBaseline, medianOf, type Check } from './stats.js';

export type BenchMode = 2 | 4 | 6;
export const BENCH_MODES: readonly BenchMode[] = [2, 4, 6];

export interface PhaseSeconds {
  load: number;
  decode: number;
  infer: number;
  write: number;
  total: number;
}

export interface ModeReport {
  mode: BenchMode;
  model: string;
  status: 'ok' | 'skipped' | 'failed';
  /** Why it was skipped or failed. */
  note?: string;
  provider?: string;
  threads?: number;
  /** Cold run: model load + one separation. */
  cold?: PhaseSeconds & { rtf: number; mbps: number };
  /** Median of the warm runs (model already loaded). */
  warm?: PhaseSeconds & { rtf: number; mbps: number; runs: number };
  /** Peak RSS of this process so far, in MiB (it only grows: modes run in order). */
  peakRssMiB?: number;
  gpuBefore?: GpuSnapshot[];
  gpuAfter?: GpuSnapshot[];
  /** Per-stem mean SDR on the --quality set, dB. */
  sdr?: Record<string, number>;
  checks: Check[];
  /** Whether the targets count towards pass/fail for this mode (see BenchOptions.targetPolicy). */
  targetsEnforced?: boolean;
  pass: boolean;
}

export interface TtsReport {
  model: string;
  status: 'ok' | 'skipped' | 'failed';
  note?: string;
  provider?: string;
  threads?: number;
  load?: number;
  phonemize?: number;
  infer?: number;
  write?: number;
  total?: number;
  charsPerSecond?: number;
  rtf?: number;
}

export interface BenchReport {
  version: 1;
  date: string;
  machine: { cpus: number; node: string; platform: string; arch: string };
  config: { profile: string; device: string; cpuThreads: number };
  input: { source: string; seconds: number; sampleRate: number; channels: number; wavMB: number };
  runs: number;
  modes: ModeReport[];
  tts?: TtsReport;
  baseline?: { file: string; tolerance: number };
  /** How targets were applied: the policy, and the factor their seconds were scaled by (track ÷ 180 s). */
  targets?: { policy: TargetPolicy; scale: number; note?: string };
  pass: boolean;
}

/**
 * `auto`: targets count on GPU providers, and on the CPU only when the caller set them (the built-in
 * targets are GPU targets: a CPU reports them without failing); `seed`: they always count; `off`: never.
 */
export type TargetPolicy = 'auto' | 'seed' | 'off';

export interface BenchOptions extends Observer {
  config: ResolvedConfig;
  modes?: readonly BenchMode[];
  /** Model per mode (default: the registry's default for the mode, given what is installed). */
  models?: Partial<Record<BenchMode, string>>;
  /** Benchmark this file instead of the generated signal. */
  input?: string;
  /** Length of the generated signal (default 180 s). */
  seconds?: number;
  /** Warm runs (default 3). */
  runs?: number;
  /** Download models that are not installed (default: skip them with a note). */
  pull?: boolean;
  targets: Record<'2' | '4' | '6', BenchTarget>;
  baseline?: { report: BenchReport; file: string };
  /** Fraction, default 0.1. */
  tolerance?: number;
  /** MUSDB-style reference folder: adds per-stem SDR of each mode's model. */
  quality?: string;
  /** TTS model to time (id or path); default: the first installed Kokoro/Piper voice, if any. Not downloaded without `pull`. */
  ttsModel?: string | false;
  /** Default 'auto'. */
  targetPolicy?: TargetPolicy;
  /** The targets were set by the user (config or flags), not the built-in ones: `auto` then enforces them on the CPU too. */
  targetsSet?: boolean;
}

const TTS_TEXT =
  'The quick brown fox jumps over the lazy dog. Benchmarks are only useful when they are repeatable, ' +
  'so this paragraph is always the same. It has a few sentences, some punctuation, and numbers like 42.';

function specForMode(mode: BenchMode, model: string): SeparatorSpec {
  // Mode 2 is the two-stem job of the production notes: vocals + instrumental.
  return mode === 2 ? { model, twoStems: 'vocals' } : { model, mode };
}

async function generateInput(dir: string, seconds: number, signal: AbortSignal | undefined): Promise<string> {
  const path = join(dir, `bench-${seconds}s.wav`);
  const rate = 44100;
  const frames = Math.round(seconds * rate);
  const sink = await createAudioSink(path, { sampleRate: rate, channels: 2, bits: 16 });
  try {
    for (let done = 0; done < frames; ) {
      throwIfAborted(signal);
      const n = Math.min(rate * 10, frames - done);
      await sink.write(benchSignalBlock(done, n, rate));
      done += n;
    }
    await sink.finish();
  } catch (e) {
    await sink.abort();
    throw e;
  }
  return path;
}

function phases(r: FileResult, load: number, wavMB: number): PhaseSeconds & { rtf: number; mbps: number } {
  // separateFile counts the model load in the first file's times; the cold run adds it once, warm runs not at all.
  const work = r.times.total - r.times.load;
  const total = work + load;
  return { load, decode: r.times.decode, infer: r.times.infer, write: r.times.write, total, rtf: total / r.durationSec, mbps: wavMB / total };
}

function median(rows: ReadonlyArray<PhaseSeconds>, seconds: number, wavMB: number): PhaseSeconds & { rtf: number; mbps: number; runs: number } {
  const m = (k: keyof PhaseSeconds): number => medianOf(rows.map((r) => r[k]));
  const total = m('total');
  // RTF and MB/s follow from the median total (a median of ratios would disagree with it for even counts).
  return { load: 0, decode: m('decode'), infer: m('infer'), write: m('write'), total, rtf: total / seconds, mbps: wavMB / total, runs: rows.length };
}

async function chooseModel(mode: BenchMode, opts: BenchOptions): Promise<{ model: string; note?: string }> {
  const explicit = opts.models?.[mode];
  if (explicit) return { model: explicit };
  const installed = new Set<string>();
  for (const e of listModels({ task: 'separate' })) if (e.embedded || (await isInstalled(e, opts.config))) installed.add(e.id);
  try {
    return { model: defaultModelForMode(mode, (id) => installed.has(id)) };
  } catch (e) {
    if (isStemkitError(e) && !opts.pull) return { model: String(e.details?.['model'] ?? ''), note: `${e.message} (${e.hint ?? 'skipped'})` };
    if (isStemkitError(e)) return { model: String(e.details?.['model'] ?? '') };
    throw e;
  }
}

async function benchMode(mode: BenchMode, input: string, wavMB: number, work: string, opts: BenchOptions): Promise<ModeReport> {
  const chosen = await chooseModel(mode, opts);
  const base: ModeReport = { mode, model: chosen.model, status: 'skipped', checks: [], pass: true };
  if (chosen.note) return { ...base, note: chosen.note };
  const entry = (() => {
    try {
      return getModel(chosen.model);
    } catch {
      return undefined; // a path to an .onnx file
    }
  })();
  if (entry && !entry.embedded && !opts.pull && !(await isInstalled(entry, opts.config))) {
    return { ...base, note: `${entry.id} is not installed (run \`stemkit models pull ${entry.id}\`, or bench --pull)` };
  }
  const observer: Observer = {};
  if (opts.signal) observer.signal = opts.signal;
  if (opts.onLog) observer.onLog = opts.onLog;
  if (opts.onProgress) observer.onProgress = opts.onProgress;
  const gpuBefore = await queryGpus();
  let separator;
  try {
    separator = await loadSeparator(specForMode(mode, chosen.model), { config: opts.config, ...observer });
  } catch (e) {
    if (!isStemkitError(e) || e.exitCode === 130) throw e;
    return { ...base, status: 'failed', note: e.message, pass: false };
  }
  try {
    const outDir = join(work, `mode${mode}`);
    const runOnce = async (): Promise<FileResult> => {
      const r = await separator.separateFile(input, { outDir, force: true, format: 'wav', ...observer });
      if (r.status !== 'ok') throw Object.assign(new Error(r.error?.message ?? 'separation failed'), { benchFailure: r });
      return r;
    };
    const coldResult = await runOnce();
    const cold = phases(coldResult, separator.loadSeconds, wavMB);
    const warmRows: Array<PhaseSeconds & { rtf: number; mbps: number }> = [];
    for (let i = 0; i < (opts.runs ?? 3); i++) {
      opts.onProgress?.({ stage: 'bench', status: 'progress', file: `${mode}-stem`, done: i + 1, total: opts.runs ?? 3, unit: 'runs' });
      warmRows.push(phases(await runOnce(), 0, wavMB));
    }
    const warm = warmRows.length > 0 ? median(warmRows, coldResult.durationSec, wavMB) : undefined;
    const report: ModeReport = {
      ...base,
      status: 'ok',
      provider: separator.provider,
      threads: separator.threads,
      cold,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      gpuBefore,
      gpuAfter: await queryGpus(),
      checks: [],
      pass: true,
    };
    if (warm) report.warm = warm;
    if (opts.quality) report.sdr = await qualityFor(mode, chosen.model, work, opts);
    return report;
  } catch (e) {
    const failure = (e as { benchFailure?: FileResult }).benchFailure;
    if (!failure) throw e;
    return { ...base, status: 'failed', note: failure.error?.message ?? 'separation failed', pass: false };
  } finally {
    await separator.dispose();
  }
}

async function qualityFor(mode: BenchMode, model: string, work: string, opts: BenchOptions): Promise<Record<string, number>> {
  const dir = join(work, `quality${mode}`);
  const observer: Observer = opts.signal ? { signal: opts.signal } : {};
  const written = await separateReferenceSet(opts.quality!, dir, specForMode(mode, model), { config: opts.config, ...observer });
  const report = await evaluate({ referenceDir: opts.quality!, estimatesDir: dir, systemName: model, stems: written.stems, ffmpegPath: opts.config.ffmpegPath, ffprobePath: opts.config.ffprobePath, ...(opts.signal ? { signal: opts.signal } : {}) });
  const out: Record<string, number> = {};
  for (const row of report.aggregate) if (row.system === model) out[row.stem] = row.sdrMean;
  return out;
}

async function benchTts(opts: BenchOptions, work: string): Promise<TtsReport | undefined> {
  let id = opts.ttsModel;
  if (id === false) return undefined;
  if (id === undefined) {
    for (const e of listModels({ task: 'tts' })) {
      if (await isInstalled(e, opts.config)) {
        id = e.id;
        break;
      }
    }
    if (id === undefined) return undefined;
  }
  const entry = (() => {
    try {
      return getModel(id);
    } catch {
      return undefined; // a path to a model file
    }
  })();
  if (entry && !opts.pull && !(await isInstalled(entry, opts.config))) {
    return { model: entry.id, status: 'skipped', note: `${entry.id} is not installed (run \`stemkit models pull ${entry.id}\`, or bench --pull)` };
  }
  const { loadVoiceModel } = await import('../tts/synthesize.js');
  const t0 = performance.now();
  let model;
  try {
    model = await loadVoiceModel(id, { config: opts.config, ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (e) {
    if (!isStemkitError(e) || e.exitCode === 130) throw e;
    return { model: id, status: 'failed', note: e.message };
  }
  try {
    const load = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const run = model.synthesize(TTS_TEXT);
    const out = join(work, 'tts.wav');
    const sink = await createAudioSink(out, { sampleRate: model.sampleRate, channels: 1 });
    let writeSec = 0;
    for await (const block of run) {
      const tw = performance.now();
      await sink.write(block);
      writeSec += (performance.now() - tw) / 1000;
    }
    const tw = performance.now();
    await sink.finish();
    writeSec += (performance.now() - tw) / 1000;
    const synthTotal = (performance.now() - t1) / 1000;
    const audioSec = run.stats.samples / run.stats.sampleRate;
    return {
      model: model.id,
      status: 'ok',
      provider: model.provider,
      threads: model.threads,
      load,
      phonemize: run.stats.phonemizeSec,
      infer: run.stats.inferSec,
      write: writeSec,
      total: load + synthTotal,
      charsPerSecond: run.stats.characters / synthTotal,
      rtf: audioSec > 0 ? synthTotal / audioSec : Number.NaN,
    };
  } finally {
    await model.dispose();
  }
}

function applyChecks(report: BenchReport, opts: BenchOptions): void {
  const tolerance = opts.tolerance ?? 0.1;
  const policy = opts.targetPolicy ?? 'auto';
  const scale = report.input.seconds / TARGET_TRACK_SECONDS;
  const coldOnly = report.runs === 0;
  report.targets = { policy, scale };
  // Targets are for the warm median (the cold run includes one-off load costs); a run without warm runs is not judged on them.
  if (coldOnly) report.targets.note = 'targets are checked on warm runs; with --runs 0 only the cold run was timed, so they were not checked';
  for (const m of report.modes) {
    if (m.status !== 'ok') continue;
    if (!coldOnly) {
      const enforced = policy === 'seed' || (policy === 'auto' && (m.provider !== 'cpu' || opts.targetsSet === true));
      m.targetsEnforced = enforced;
      m.checks.push(...checkTarget(m.warm!.total, m.warm!.mbps, opts.targets[String(m.mode) as '2' | '4' | '6'], report.input.seconds, enforced));
    }
    const prev = opts.baseline?.report.modes.find((b) => b.mode === m.mode && b.model === m.model && b.status === 'ok');
    // Like with like: warm medians when both have them, else the cold runs.
    const pair = m.warm && prev?.warm ? { now: m.warm, before: prev.warm } : prev?.cold && m.cold ? { now: m.cold, before: prev.cold } : undefined;
    if (prev && pair) {
      m.checks.push(compareToBaseline('total', pair.now.total, pair.before.total, tolerance));
      m.checks.push(compareToBaseline('mbps', pair.now.mbps, pair.before.mbps, tolerance));
      for (const [stem, sdr] of Object.entries(m.sdr ?? {})) {
        const before = prev.sdr?.[stem];
        if (before !== undefined && Number.isFinite(before)) m.checks.push(compareToBaseline(`sdr:${stem}`, sdr, before, tolerance));
      }
    }
    m.pass = m.checks.every((c) => c.pass || !c.enforced);
  }
  report.pass = report.modes.every((m) => m.pass);
}

/** Runs the benchmark. Modes whose model is missing are skipped with a note (or pulled with `pull`). */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const work = await mkdtemp(join(tmpdir(), 'stemkit-bench-'));
  try {
    const seconds = opts.seconds ?? 180;
    const input = opts.input ?? (await generateInput(work, seconds, opts.signal));
    const src = await openAudioSource(input, { ...(opts.config.ffmpegPath ? { ffmpegPath: opts.config.ffmpegPath } : {}), ...(opts.config.ffprobePath ? { ffprobePath: opts.config.ffprobePath } : {}) });
    const info = src.info;
    await src.close();
    const frames = info.frames ?? Math.round(seconds * info.sampleRate);
    const report: BenchReport = {
      version: 1,
      date: new Date().toISOString(),
      machine: { cpus: opts.config.cores, node: process.version, platform: process.platform, arch: process.arch },
      config: { profile: opts.config.profile, device: opts.config.device, cpuThreads: opts.config.cpuThreads },
      input: {
        source: opts.input ?? `generated ${seconds}s stereo 44.1 kHz`,
        seconds: frames / info.sampleRate,
        sampleRate: info.sampleRate,
        channels: info.channels,
        wavMB: wavBytes(frames, info.channels) / 1e6,
      },
      runs: opts.runs ?? 3,
      modes: [],
      pass: true,
    };
    if (opts.input) await stat(opts.input);
    await mkdir(work, { recursive: true });
    for (const mode of opts.modes ?? BENCH_MODES) {
      throwIfAborted(opts.signal);
      opts.onProgress?.({ stage: 'bench', status: 'start', file: `${mode}-stem`, done: 0, total: opts.runs ?? 3, unit: 'runs' });
      report.modes.push(await benchMode(mode, input, report.input.wavMB, work, opts));
      opts.onProgress?.({ stage: 'bench', status: 'done', file: `${mode}-stem`, done: opts.runs ?? 3, total: opts.runs ?? 3, unit: 'runs' });
    }
    const tts = await benchTts(opts, work);
    if (tts) report.tts = tts;
    if (opts.baseline) report.baseline = { file: opts.baseline.file, tolerance: opts.tolerance ?? 0.1 };
    applyChecks(report, opts);
    return report;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
