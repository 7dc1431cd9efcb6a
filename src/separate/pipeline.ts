/**
 * The separation pipeline of one file: decode → adapt channels → resample to the model rate → (first pass
 * for whole-track statistics when the model needs them) → the adapter's StemStream → derived stems
 * (two-stem mode) → resample back → write each stem (clip policy, temp + rename) → remux. Every stage
 * streams in blocks, so memory does not grow with the track length. Also what decides a file's outputs
 * and whether they are already done (the output plan, the recipe, the skip decision).
 */
import { basename, extname, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/schema.js';
import { DataError, InternalError, InterruptedError, StemkitError, UsageError, fromSystemError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';
import type { AudioSource, RawAudio } from '../audio/raw-audio.js';
import { adaptChannels, downmixToMono } from '../audio/channels.js';
import { createAudioSink, isVideoPath, openAudioSource, remuxVideo } from '../audio/open.js';
import { assertFinite, describeTruncation, type AudioIntegrity, type GuardedSource } from '../audio/guard.js';
import { assertNoOutputConflicts, findOutputConflicts } from '../util/output-safety.js';
import { sweepStaleTemps } from '../util/atomic.js';
import { outputsState, recordOutputs, type Recipe } from './manifest.js';
import { createResampler, type Resampler, type ResamplerOptions } from '../dsp/resample.js';
import { loadSimdFft } from '../dsp/fft-simd.js';
import { PlanarQueue } from './chunking.js';
import { DEFAULT_FILENAME_TEMPLATE, inputFields, outputPath, validateFilenameTemplate } from './paths.js';
import { StemWriter } from './writer.js';
import type { StemBlocks, StemModel, StemStream, TrackStats } from './types.js';
import type { FileResult, FileWarningOption, PhaseTimes, SeparateFileOptions, Separator, SeparatorSpec } from './separate.js';

/** Frames read from the source per block. */
const READ_BLOCK = 1 << 16;

export function isPathLike(model: string): boolean {
  return /\.onnx$/i.test(model) || model.includes('/') || model.includes('\\');
}

export interface OutputPlan {
  /** Stems written, in order. */
  stems: string[];
  /** Stems the model must compute. */
  wanted: string[];
  /** The two-stem complement, if any: name, the chosen stem and the method. */
  complement?: { name: string; of: string; method: 'add' | 'minus' };
}

/** Works out the written stems and what the model must compute. @throws UsageError (64) for unknown stems. */
export function planOutputs(modelStems: readonly string[], spec: Pick<SeparatorSpec, 'twoStems' | 'otherMethod' | 'stems' | 'mode'>): OutputPlan {
  let two = spec.twoStems;
  if (two === undefined && spec.mode === 2 && modelStems.length > 2 && modelStems.includes('vocals')) two = 'vocals';
  const validList = (l: readonly string[]): string => l.join(', ');
  let stems: string[];
  let wanted: string[];
  let complement: OutputPlan['complement'];
  if (two !== undefined) {
    if (!modelStems.includes(two)) {
      throw new UsageError(`twoStems ${two}: the model has no stem "${two}"`, { hint: `choose one of: ${validList(modelStems)}`, details: { option: 'twoStems' } });
    }
    const method = spec.otherMethod ?? 'add';
    // demucs' file names: no_<stem> for `add`, minus_<stem> for `minus` (model-io.md §1.6).
    const name = method === 'minus' ? `minus_${two}` : `no_${two}`;
    complement = { name, of: two, method };
    stems = [two, name];
    wanted = method === 'minus' ? [two] : [...modelStems];
  } else {
    stems = [...modelStems];
    wanted = [...modelStems];
  }
  if (spec.stems && spec.stems.length > 0) {
    const unknown = spec.stems.filter((s) => !stems.includes(s));
    if (unknown.length > 0) throw new UsageError(`stems: unknown stem ${unknown.map((s) => `"${s}"`).join(', ')}`, { hint: `this model writes: ${validList(stems)}`, details: { option: 'stems' } });
    const keep = stems.filter((s) => spec.stems!.includes(s));
    const needComplement = complement !== undefined && keep.includes(complement.name);
    stems = keep;
    if (complement && !needComplement) complement = undefined;
    if (!complement) wanted = keep.filter((s) => modelStems.includes(s));
    else if (complement.method === 'add') wanted = [...modelStems];
    else wanted = [complement.of];
  }
  const plan: OutputPlan = { stems, wanted };
  if (complement) plan.complement = complement;
  return plan;
}

/** Adds b into a (same lengths). */
function addInto(a: Float32Array[], b: Float32Array[]): void {
  for (let c = 0; c < a.length; c++) {
    const x = a[c]!;
    const y = b[c]!;
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + y[i]!;
  }
}

/** The recipe of a separator's files, for the batch's skip decision (not part of the public interface). */
export const recipes = new WeakMap<Separator, (fopts: SeparateFileOptions) => Recipe>();

/** Output paths of one input (stems, and the remuxed video when asked for). */
export function plannedOutputs(
  input: string,
  stems: readonly string[],
  modelId: string,
  opts: Pick<SeparateFileOptions, 'outDir' | 'filename' | 'format' | 'remux' | 'inputRoot'>,
): Record<string, string> {
  const template = opts.filename ?? DEFAULT_FILENAME_TEMPLATE;
  validateFilenameTemplate(template);
  const outDir = opts.outDir ?? 'separated';
  const ext = opts.format ?? 'wav';
  const fields = inputFields(input, opts.inputRoot);
  const out: Record<string, string> = {};
  for (const stem of stems) out[stem] = outputPath(outDir, template, { ...fields, stem, ext, model: modelId });
  if (opts.remux && opts.remux.length > 0 && isVideoPath(input)) {
    out['video'] = outputPath(outDir, template, { ...fields, stem: opts.remux.join('+'), ext: extname(input).slice(1) || 'mp4', model: modelId });
  }
  return out;
}

/** The model and every option that changes what a file's outputs contain (recorded in the output manifest). */
export function recipeFor(model: StemModel, plan: OutputPlan, spec: SeparatorSpec, fopts: SeparateFileOptions): Recipe {
  return {
    model: model.id,
    stems: plan.stems,
    twoStems: plan.complement ? `${plan.complement.of}:${plan.complement.method}` : undefined,
    shifts: spec.shifts ?? 0,
    seed: spec.seed ?? 0,
    overlap: spec.overlap ?? 0.25,
    denoise: spec.denoise === true,
    mdx: spec.mdx,
    channels: spec.channelMode,
    precision: spec.precision,
    modelFile: spec.model !== undefined && isPathLike(spec.model) ? resolve(spec.model) : spec.modelPath !== undefined ? resolve(spec.modelPath) : undefined,
    format: fopts.format ?? 'wav',
    bits: fopts.bits,
    bitrate: fopts.bitrate,
    clip: fopts.clip ?? 'rescale',
    sampleRate: fopts.sampleRate ?? 'same',
    remux: fopts.remux,
  };
}

/** Files of the run that outputs must never replace: the model files given as paths. */
export function modelInputs(spec: SeparatorSpec): string[] {
  const out: string[] = [];
  if (spec.model !== undefined && isPathLike(spec.model)) out.push(resolve(spec.model));
  if (spec.modelPath !== undefined) out.push(resolve(spec.modelPath));
  return out;
}

/** How the batch decides to skip an input: its outputs exist and the manifest says this recipe wrote them. */
export async function skipDecision(outputs: Record<string, string>, recipe: Recipe, force: boolean | undefined): Promise<{ skip: false; replacing?: string[] } | { skip: true; reason: 'done' | 'unverified'; files?: string[] }> {
  if (force) return { skip: false };
  const state = await outputsState(Object.values(outputs), recipe);
  if (state.state === 'done') return { skip: true, reason: 'done' };
  if (state.state === 'unknown') return { skip: true, reason: 'unverified', files: state.files };
  if (state.state === 'other') return { skip: false, replacing: state.models };
  return { skip: false };
}

export function emptyTimes(load: number): PhaseTimes {
  return { load, decode: 0, infer: 0, write: 0, total: load };
}

export async function separateOne(
  model: StemModel,
  plan: OutputPlan,
  spec: SeparatorSpec,
  config: ResolvedConfig,
  input: string,
  fopts: SeparateFileOptions & Observer,
  load: number,
): Promise<FileResult> {
  const t0 = performance.now();
  const warnings: string[] = [];
  const result: FileResult = {
    input,
    status: 'ok',
    outputs: {},
    durationSec: 0,
    times: emptyTimes(load),
    rtf: 0,
    mbps: 0,
    provider: model.provider,
    threads: model.threads,
    warnings,
  };
  const warn = (message: string, option?: FileWarningOption): void => {
    warnings.push(message);
    fopts.onLog?.({ level: 'warn', message, file: input, ...(option !== undefined ? { option } : {}) });
  };
  const writers: StemWriter[] = [];
  const sources: AudioSource[] = [];
  try {
    const outputs = plannedOutputs(input, plan.stems, model.id, fopts);
    // A batch checked every file up front; a lone call (library, eval) gets the same guarantee here.
    assertNoOutputConflicts(
      findOutputConflicts([input, ...modelInputs(spec)], Object.values(outputs).map((o) => ({ output: o, owner: input }))),
      'choose another output folder (outDir) or filename',
      { hintOption: ['outDir', 'filename'] },
    );
    result.outputs = outputs;
    const recipe = recipeFor(model, plan, spec, fopts);
    const decision = await skipDecision(outputs, recipe, fopts.force);
    if (decision.skip) {
      result.status = 'skipped';
      result.skipReason = decision.reason;
      if (decision.reason === 'unverified') {
        warn(`outputs exist but nothing records which model wrote them (${(decision.files ?? []).map((f) => basename(f)).join(', ')}; an older stemkit, another tool, or edited since); left as they are; force redoes them with ${model.id}`);
      }
      return result;
    }
    if (decision.replacing) warn(`replacing outputs written by ${decision.replacing.join(', ')}${decision.replacing.includes(model.id) ? ' with other options' : ''} (this run: ${model.id})`);
    await sweepStaleTemps(Object.values(outputs));
    if (fopts.remux && fopts.remux.length > 0) {
      const bad = fopts.remux.filter((s) => !plan.stems.includes(s));
      if (bad.length > 0) throw new UsageError(`remux: ${bad.join(', ')} is not written by this run`, { hint: `choose from: ${plan.stems.join(', ')}`, details: { option: 'remux' } });
      if (!isVideoPath(input)) warn(`remux ignored for ${basename(input)}: not a video file`, 'remux');
    }
    const times = await runPipeline(model, plan, spec, config, input, fopts, outputs, writers, sources, warn);
    if (times.integrity) {
      const i = times.integrity;
      result.integrity = { declaredSec: i.declaredFrames === undefined ? undefined : i.declaredFrames / i.sampleRate, decodedSec: i.decodedFrames / i.sampleRate, truncated: i.truncated, decoderErrors: i.decoderErrorCount };
    }
    if (outputs['video']) {
      const tw = performance.now();
      const ro: Parameters<typeof remuxVideo>[0] = { video: input, audio: fopts.remux!.map((s) => outputs[s]!), out: outputs['video'] };
      if (config.ffmpegPath) ro.ffmpegPath = config.ffmpegPath;
      if (fopts.signal) ro.signal = fopts.signal;
      await remuxVideo(ro);
      times.write += (performance.now() - tw) / 1000;
    }
    await recordOutputs(Object.values(outputs), input, recipe);
    const wall = (performance.now() - t0) / 1000;
    result.durationSec = times.frames / times.inRate;
    result.times = {
      load,
      decode: times.decode,
      write: times.write,
      infer: Math.max(0, wall - times.decode - times.write),
      total: load + wall,
    };
    result.rtf = result.durationSec > 0 ? result.times.total / result.durationSec : 0;
    // Input size as 16-bit PCM WAV (frames·channels·2 bytes), the unit of the original MB/s targets.
    result.mbps = result.times.total > 0 ? (times.frames * times.inChannels * 2) / 1e6 / result.times.total : 0;
    return result;
  } catch (e) {
    await Promise.all(writers.map((w) => w.abort()));
    if (e instanceof InterruptedError || fopts.signal?.aborted) throw e instanceof InterruptedError ? e : new InterruptedError('interrupted', { cause: e });
    result.status = 'failed';
    // Only complete files are ever under a final name; a failed file reports none (a stem finished before the
    // failure stays on disk, complete, and is redone by the next run because the others are missing).
    result.outputs = {};
    const wall = (performance.now() - t0) / 1000;
    result.times = { ...emptyTimes(load), total: load + wall };
    // A raw ENOSPC/EACCES from any write or read below: 73 or 66 with the path, never 70.
    const path = (e as NodeJS.ErrnoException | undefined)?.path;
    e = fromSystemError(e, path !== undefined && resolve(path) === resolve(input) ? { role: 'input' } : {});
    if (e instanceof StemkitError) {
      result.error = { code: e.code, message: e.message, exitCode: e.exitCode };
      if (e.hint) result.error.hint = e.hint;
    } else {
      result.error = { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e), exitCode: 70 };
    }
    return result;
  } finally {
    await Promise.all(sources.map((s) => s.close().catch(() => undefined)));
  }
}

interface PipelineTimes {
  decode: number;
  write: number;
  frames: number;
  inRate: number;
  inChannels: number;
  /** Present when the input came out short or damaged (already warned about). */
  integrity?: AudioIntegrity;
}

async function openSource(input: string, config: ResolvedConfig, signal: AbortSignal | undefined, strict: boolean | undefined): Promise<GuardedSource> {
  const o: Parameters<typeof openAudioSource>[1] = {};
  if (config.ffmpegPath) o.ffmpegPath = config.ffmpegPath;
  if (config.ffprobePath) o.ffprobePath = config.ffprobePath;
  if (signal) o.signal = signal;
  if (strict !== undefined) o.strict = strict;
  return openAudioSource(input, o);
}

/** The model-input channel layout: one stream per channel for mono models in per-channel mode. */
function feedLayout(model: StemModel, inChannels: number, spec: SeparatorSpec): { streams: number; outChannels: number; adapt(block: RawAudio): RawAudio } {
  if (model.channels === 2) return { streams: 1, outChannels: 2, adapt: (b) => adaptChannels(b, 2) };
  if ((spec.channelMode ?? 'per-channel') === 'downmix' || inChannels === 1) return { streams: 1, outChannels: 1, adapt: (b) => downmixToMono(b) };
  return { streams: inChannels, outChannels: inChannels, adapt: (b) => b };
}

async function runPipeline(
  model: StemModel,
  plan: OutputPlan,
  spec: SeparatorSpec,
  config: ResolvedConfig,
  input: string,
  fopts: SeparateFileOptions & Observer,
  outputs: Record<string, string>,
  writers: StemWriter[],
  sources: AudioSource[],
  warn: (m: string, option?: FileWarningOption) => void,
): Promise<PipelineTimes> {
  const signal = fopts.signal;
  const times: PipelineTimes = { decode: 0, write: 0, frames: 0, inRate: 0, inChannels: 0 };
  const progress = fopts.onProgress;
  const file = input;

  let td = performance.now();
  let source = await openSource(input, config, signal, fopts.strict);
  sources.push(source);
  times.decode += (performance.now() - td) / 1000;
  const info = source.info;
  times.inRate = info.sampleRate;
  times.inChannels = info.channels;
  const modelRate = model.sampleRate;
  const layout = feedLayout(model, info.channels, spec);
  const modelFramesEstimate = info.frames !== undefined ? Math.round((info.frames * modelRate) / info.sampleRate) : 0;
  // The pipeline's audio is float32: the resamplers' FFT stage runs on the WASM SIMD FFT (README "Resampling").
  const rsOpts: ResamplerOptions = { precision: 'float32' };
  if (info.sampleRate !== modelRate) await loadSimdFft();

  // Pass 1: whole-track mean/std of the mono reference at the model rate (HTDemucs §1.5 step 1).
  let trackStats: TrackStats | undefined;
  if (model.needsTrackStats) {
    td = performance.now();
    progress?.({ stage: 'decode', status: 'start', file, done: 0, total: info.frames ?? 0, unit: 'samples', sampleRate: info.sampleRate });
    const rs = createResampler(info.sampleRate, modelRate, layout.outChannels, rsOpts);
    let n = 0;
    let sum = 0;
    let sumSq = 0;
    let read = 0;
    const accumulate = (chs: Float32Array[]): void => {
      const len = chs[0]?.length ?? 0;
      for (let i = 0; i < len; i++) {
        let v = 0;
        for (const ch of chs) v += ch[i]!;
        v /= chs.length;
        sum += v;
        sumSq += v * v;
      }
      n += len;
    };
    for (;;) {
      throwIfAborted(signal);
      const block = await source.read(READ_BLOCK);
      if (!block) break;
      read += block.channels[0]!.length;
      accumulate(rs.process(layout.adapt(block).channels));
      progress?.({ stage: 'decode', status: 'progress', file, done: read, total: info.frames ?? 0, unit: 'samples', sampleRate: info.sampleRate });
    }
    accumulate(rs.flush());
    progress?.({ stage: 'decode', status: 'done', file, done: read, total: info.frames ?? read, unit: 'samples', sampleRate: info.sampleRate });
    await source.close();
    if (n === 0) throw new DataError(`${input} contains no audio`, { code: 'E_EMPTY_AUDIO', hint: 'check the file' });
    const mean = sum / n;
    // Unbiased (N−1) standard deviation, as torch.std.
    const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : 0;
    trackStats = { frames: n, mean, std: Math.sqrt(variance) };
    source = await openSource(input, config, signal, fopts.strict);
    sources.push(source);
    times.decode += (performance.now() - td) / 1000;
  }

  // Pass 2: streams, writers, resamplers.
  const streamOpts = {
    wantedStems: plan.wanted,
    ...(trackStats ? { trackStats } : {}),
    ...(modelFramesEstimate ? { totalFrames: modelFramesEstimate } : {}),
    ...(spec.shifts !== undefined ? { shifts: spec.shifts } : {}),
    ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
    ...(spec.overlap !== undefined ? { overlap: spec.overlap } : {}),
    ...(spec.batchSize !== undefined ? { batchSize: spec.batchSize } : {}),
    ...(signal ? { signal } : {}),
  };
  let inferDone = 0;
  const onInferProgress = (done: number): void => {
    if (done <= inferDone) return;
    inferDone = done;
    progress?.({ stage: 'separate', status: 'progress', file, done: Math.min(done, modelFramesEstimate || done), total: modelFramesEstimate, unit: 'samples', sampleRate: modelRate });
  };
  const streams: StemStream[] = Array.from({ length: layout.streams }, (_, i) => model.createStream(i === 0 ? { ...streamOpts, onInferProgress, lane: 0 } : { ...streamOpts, lane: i }));
  const inResampler = createResampler(info.sampleRate, modelRate, layout.outChannels, rsOpts);
  const outRate = fopts.sampleRate === 'model' ? modelRate : info.sampleRate;
  const C = layout.outChannels;
  const outResamplers = new Map<string, Resampler>();
  const stemWriters = new Map<string, StemWriter>();
  for (const stem of plan.stems) {
    const w = await StemWriter.create({
      path: outputs[stem]!,
      sampleRate: outRate,
      channels: C,
      clip: fopts.clip ?? 'rescale',
      eager: (fopts.format ?? 'wav') === 'wav',
      createSink: (p, sr, ch) => {
        const o: Parameters<typeof createAudioSink>[1] = { sampleRate: sr, channels: ch, format: fopts.format ?? 'wav' };
        if (fopts.bits !== undefined) o.bits = fopts.bits;
        if (fopts.bitrate !== undefined) o.bitrate = fopts.bitrate;
        if (config.ffmpegPath) o.ffmpegPath = config.ffmpegPath;
        if (signal) o.signal = signal;
        return createAudioSink(p, o);
      },
    });
    writers.push(w);
    stemWriters.set(stem, w);
    // At the model's rate the stems go to the writers as they are (a pass-through resampler copies every block).
    if (outRate !== modelRate) outResamplers.set(stem, createResampler(modelRate, outRate, C, rsOpts));
  }
  // The model-rate mix, kept until the stems of the same samples arrive (for `minus`).
  const mixQueue = plan.complement?.method === 'minus' ? new PlanarQueue(C) : undefined;

  // Model-rate frames of stem audio that left the adapters so far (for the time of a bad sample).
  let emitted = 0;
  const emit = async (parts: StemBlocks[], final: boolean): Promise<void> => {
    // Per-channel streams: stem channel c comes from stream c.
    const merged: Record<string, Float32Array[]> = {};
    const names = Object.keys(parts[0] ?? {});
    for (const s of names) merged[s] = parts.flatMap((p) => p[s]!.channels);
    const n = names.length > 0 ? merged[names[0]!]![0]!.length : 0;
    if (n > 0) {
      const missing = plan.wanted.filter((st) => !merged[st]);
      if (missing.length > 0) throw new InternalError(`model ${model.id} returned no audio for ${missing.join(', ')}`);
      // Where model output leaves the adapter: a NaN/Inf here would become a silent (rescaled by 1/Inf) or
      // noise stem written as a success.
      for (const st of names) {
        assertFinite({ channels: merged[st]!, sampleRate: modelRate }, `model ${model.id} produced a broken ${st} stem for ${input}`, emitted, 'the model file may be damaged or not made for this kind of input; try another model (stemkit models list) or re-download it (stemkit models verify)', 'E_MODEL_NONFINITE');
      }
      emitted += n;
    }
    if (plan.complement && n > 0) {
      const { name, of, method } = plan.complement;
      if (method === 'minus') {
        const m = mixQueue!.shift(n);
        const stem = merged[of]!;
        merged[name] = m.map((ch, c) => {
          const o = new Float32Array(n);
          for (let i = 0; i < n; i++) o[i] = ch[i]! - stem[c]![i]!;
          return o;
        });
      } else {
        const acc = Array.from({ length: C }, () => new Float32Array(n));
        for (const s of model.stems) if (s !== of) addInto(acc, merged[s]!);
        merged[name] = acc;
      }
    }
    for (const stem of plan.stems) {
      const rs = outResamplers.get(stem);
      const w = stemWriters.get(stem)!;
      const block = merged[stem];
      const out = block && n > 0 ? (rs ? rs.process(block) : block) : undefined;
      const tail = final ? rs?.flush() : undefined;
      if (out) await w.write(out);
      if (tail) await w.write(tail);
    }
  };

  const pushAll = async (block: RawAudio | null): Promise<void> => {
    const piecewise = streams.length === 1 ? streams[0]! : undefined;
    if (piecewise?.pieces) {
      if (block !== null) mixQueue?.push(block.channels);
      for await (const piece of piecewise.pieces(block)) await emit([piece], false);
      if (block === null) await emit([], true);
      return;
    }
    if (block !== null) mixQueue?.push(block.channels);
    const step = (i: number): Promise<StemBlocks> =>
      block === null ? streams[i]!.flush() : streams[i]!.push(layout.streams === 1 ? block : { channels: [block.channels[i]!], sampleRate: block.sampleRate });
    let parts: StemBlocks[];
    if (model.concurrentLanes) {
      // Each lane runs on its own thread: the channels are separated at the same time. Every lane settles before a
      // failure is thrown, so that no call is still running in this thread's session when the next file starts.
      const settled = await Promise.allSettled(streams.map((_, i) => step(i)));
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      parts = settled.map((r) => (r as PromiseFulfilledResult<StemBlocks>).value);
    } else {
      // Streams run one after another: a model session is not shared across concurrent calls.
      parts = [];
      for (let i = 0; i < streams.length; i++) parts.push(await step(i));
    }
    await emit(parts, block === null);
  };

  progress?.({ stage: 'separate', status: 'start', file, done: 0, total: modelFramesEstimate, unit: 'samples', sampleRate: modelRate });
  let frames = 0;
  for (;;) {
    throwIfAborted(signal);
    td = performance.now();
    const block = await source.read(READ_BLOCK);
    times.decode += (performance.now() - td) / 1000;
    if (!block) break;
    frames += block.channels[0]!.length;
    const modelBlock = inResampler.process(layout.adapt(block).channels);
    if ((modelBlock[0]?.length ?? 0) > 0) await pushAll({ channels: modelBlock, sampleRate: modelRate });
  }
  if (frames === 0) throw new DataError(`${input} contains no audio`, { code: 'E_EMPTY_AUDIO', hint: 'check the file' });
  times.frames = frames;
  const integrity = source.integrity;
  if (integrity && (integrity.truncated || integrity.decoderErrorCount > 0)) {
    times.integrity = integrity;
    if (integrity.truncated) warn(`${describeTruncation(integrity)}; separated what decodes (strict mode makes this an error)`);
    if (integrity.decoderErrorCount > 0) warn(`the decoder reported ${integrity.decoderErrorCount} error${integrity.decoderErrorCount === 1 ? '' : 's'} (damaged data, e.g. "${integrity.decoderErrors[0] ?? ''}"); separated what decodes (strict mode makes this an error)`);
  }
  const tailBlock = inResampler.flush();
  if ((tailBlock[0]?.length ?? 0) > 0) await pushAll({ channels: tailBlock, sampleRate: modelRate });
  // Outputs have exactly the input's length at the input rate (the resamplers can round by a sample).
  const target = outRate === info.sampleRate ? frames : Math.round((frames * outRate) / info.sampleRate);
  for (const w of stemWriters.values()) w.limit = target;
  await pushAll(null);
  progress?.({ stage: 'separate', status: 'done', file, done: modelFramesEstimate || inferDone, total: modelFramesEstimate || inferDone, unit: 'samples', sampleRate: modelRate });

  progress?.({ stage: 'write', status: 'start', file, done: 0, total: plan.stems.length, unit: 'files' });
  let written = 0;
  for (const stem of plan.stems) {
    const w = stemWriters.get(stem)!;
    await w.finish(target);
    if (w.gain < 1) warn(`${stem}: peak ${w.peakValue.toFixed(2)} was rescaled by ${(20 * Math.log10(w.gain)).toFixed(1)} dB to avoid clipping (clip rescale)`, 'clip');
    written += 1;
    progress?.({ stage: 'write', status: 'progress', file, done: written, total: plan.stems.length, unit: 'files' });
  }
  for (const w of stemWriters.values()) times.write += w.seconds;
  progress?.({ stage: 'write', status: 'done', file, done: written, total: plan.stems.length, unit: 'files' });
  const inferSec = streams.reduce((a, s) => a + s.inferSeconds, 0);
  fopts.onLog?.({ level: 'debug', message: `${basename(input)}: model inference ${inferSec.toFixed(2)}s`, file });
  return times;
}
