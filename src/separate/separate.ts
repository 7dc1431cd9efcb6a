/**
 * The separation engine: load a model once, then per file decode → adapt channels → resample to the model
 * rate → (first pass for whole-track statistics when the model needs them) → the adapter's StemStream →
 * derived stems (two-stem mode) → resample back → write each stem (clip policy, temp + rename).
 * Every stage streams in blocks, so memory does not grow with the track length.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/schema.js';
import { DataError, InternalError, InterruptedError, StemkitError, UsageError, fromSystemError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';
import type { AudioSource, RawAudio } from '../audio/raw-audio.js';
import { adaptChannels, downmixToMono } from '../audio/channels.js';
import { createAudioSink, isVideoPath, openAudioSource, remuxVideo, type AudioFormat } from '../audio/open.js';
import { assertFinite, describeTruncation, type AudioIntegrity, type GuardedSource } from '../audio/guard.js';
import { assertNoOutputConflicts, findOutputConflicts, type OutputConflict, type PlannedWrite } from '../util/output-safety.js';
import { sweepStaleTemps } from '../util/atomic.js';
import { outputsState, recordOutputs, type Recipe } from './manifest.js';
import { createResampler, type Resampler, type ResamplerOptions } from '../dsp/resample.js';
import { loadSimdFft } from '../dsp/fft-simd.js';
import { defaultModelForMode, getModel, pullHint, rolesForStems, type ModelEntry } from '../models/registry.js';
import { ensureModel } from '../models/ensure.js';
import { installedPrecisions } from '../models/cache.js';
import { acquireSlots, summarizeBatch, type BatchSummary } from '../jobs/index.js';
import { createSession, type ModelSession, type SessionOptions } from '../runtime/onnx.js';
import { PlanarQueue } from './chunking.js';
import { SEPARATION_ADAPTERS, isSeparationAdapter, roleLookup, type AdapterInput } from './adapters.js';
import type { MdxOverrides } from './mdxnet.js';
import { readOnnxMetadata } from './onnx-metadata.js';
import { DEFAULT_FILENAME_TEMPLATE, inputFields, outputPath, validateFilenameTemplate } from './paths.js';
import { StemWriter, type ClipMode } from './writer.js';
import type { StemBlocks, StemModel, StemStream, TrackStats } from './types.js';

/** What to load and how to run it (everything that is fixed for a whole batch). */
export interface SeparatorSpec {
  /** A registry id/alias, or a path to an .onnx file (adapter detected from its contract). Default: by `mode`, else `classic`. */
  model?: string;
  /** Use this local file (or folder holding the entry's files) for the chosen registry model: no download. */
  modelPath?: string;
  /** 2 = vocals + no_vocals, 4 = drums/bass/other/vocals, 6 = + guitar/piano; picks the default model. */
  mode?: 2 | 4 | 6;
  /** Write only these stems (the adapter may compute less, e.g. one htdemucs_ft sub-model). */
  stems?: readonly string[];
  /** Two-stem output: this stem and `no_<stem>` (`minus_<stem>` with otherMethod 'minus'), as demucs --two-stems. */
  twoStems?: string;
  /** How the complement is made: 'add' = sum of the other stems → `no_<stem>` (default), 'minus' = mix − stem → `minus_<stem>`. */
  otherMethod?: 'add' | 'minus';
  /** HTDemucs shift trick rounds (default 0: deterministic). */
  shifts?: number;
  /** Seed of the shift offsets (default 0). */
  seed?: number;
  /** Chunk overlap 0..0.9 (default 0.25). */
  overlap?: number;
  /** Segments per model call (default 1). */
  batchSize?: number;
  /** MDX-Net denoise (model(x) − model(−x))/2. */
  denoise?: boolean;
  /** MDX-Net parameters for files the hash table does not know (or overrides). */
  mdx?: MdxOverrides;
  /** Mono (speech) models on multi-channel input: run each channel (default) or the downmix. */
  channelMode?: 'per-channel' | 'downmix';
  /** Precision request passed to ensureModel ('auto' | 'fp32' | 'fp16' | 'int8'). */
  precision?: string;
  /** Intra-op threads of the sessions; default config.cpuThreads. */
  threads?: number;
}

/** Per-file output options. */
export interface SeparateFileOptions {
  /** Output folder (default ./separated). */
  outDir?: string;
  /** Template with {track}, {trackext}, {dir}, {stem}, {ext}, {model} (default "{track}/{stem}.{ext}"). */
  filename?: string;
  /** The folder `{dir}` is relative to (the folder or pattern root the input was found under); default: the input's own folder. */
  inputRoot?: string;
  /** Fail (DataError 65) on a truncated or damaged compressed input instead of separating what decodes, with a warning. */
  strict?: boolean;
  format?: AudioFormat;
  bits?: 16 | 24 | 32;
  bitrate?: string;
  /** Default 'rescale'. */
  clip?: ClipMode;
  /** 'same' (default): stems at the input's rate; 'model': at the model's rate. */
  sampleRate?: 'same' | 'model';
  /** Overwrite existing outputs; otherwise a file whose outputs all exist is skipped. */
  force?: boolean;
  /** Video inputs: also write the video with these stems as its soundtrack (video stream copied). */
  remux?: readonly string[];
}

/** Seconds per phase. `load` is the model load, counted on the first file a separator processes (0 after). */
export interface PhaseTimes {
  load: number;
  decode: number;
  infer: number;
  write: number;
  total: number;
}

/** The options a per-file warning may name (in `FileResult.warnings` and the `option` of its log event). */
export const FILE_WARNING_OPTIONS = ['remux', 'clip'] as const;
export type FileWarningOption = (typeof FILE_WARNING_OPTIONS)[number];

export interface FileResult {
  input: string;
  status: 'ok' | 'skipped' | 'failed';
  /** stem → written path (plus 'video' for a remux). */
  outputs: Record<string, string>;
  /** Seconds of input audio. */
  durationSec: number;
  times: PhaseTimes;
  /** times.total / durationSec. */
  rtf: number;
  /** Input WAV-equivalent megabytes (frames·channels·2 bytes / 1e6, i.e. 16-bit PCM) per second of times.total. */
  mbps: number;
  provider: string;
  threads: number;
  /** Non-fatal problems, as also sent to `onLog`; they name options (`remux`), never flags: see FILE_WARNING_OPTIONS. */
  warnings: string[];
  /** Set when the decoded input fell short of its declared length or the decoder reported damage (also a warning). */
  integrity?: { declaredSec: number | undefined; decodedSec: number; truncated: boolean; decoderErrors: number };
  /** Why a file was skipped: 'done' (this model and options wrote its outputs) or 'unverified' (outputs of unknown origin left alone). */
  skipReason?: 'done' | 'unverified';
  error?: { code: string; message: string; exitCode: number; hint?: string };
}

export interface Separator {
  readonly modelId: string;
  /** The stems a file produces with this spec (after --two-stems / --stems). */
  readonly stems: string[];
  readonly sampleRate: number;
  readonly provider: string;
  readonly threads: number;
  readonly loadSeconds: number;
  /**
   * Separates one file. Failures of that file come back as status 'failed' (with the error's code and exit
   * code); only an interruption throws (InterruptedError).
   */
  separateFile(input: string, opts?: SeparateFileOptions & Observer): Promise<FileResult>;
  dispose(): Promise<void>;
}

/** Frames read from the source per block. */
const READ_BLOCK = 1 << 16;

function isPathLike(model: string): boolean {
  return /\.onnx$/i.test(model) || model.includes('/') || model.includes('\\');
}

/** Which adapter an unregistered .onnx file needs, from its metadata and tensor shapes. */
function detectAdapter(session: ModelSession, meta: Record<string, string>, path: string): 'htdemucs' | 'mdxnet' | 'gtcrn' {
  const ins = session.inputs;
  if (meta['sources'] || ins.some((v) => v.name === 'spec_real')) return 'htdemucs';
  if (ins.length === 2 && ins.some((v) => v.shape.length === 3) && ins.some((v) => v.shape.length === 4) && session.outputs.some((v) => v.shape.length === 5)) return 'htdemucs';
  // Contract D (model-io.md §1.3): one waveform [B,2,L] in, one [B,S,2,L] out.
  if (ins.length === 1 && ins[0]!.shape.length === 3 && session.outputs.length === 1 && session.outputs[0]!.shape.length === 4) return 'htdemucs';
  if (ins.length === 1 && ins[0]!.shape.length === 4 && ins[0]!.shape[1] === 4) return 'mdxnet';
  if (ins.some((v) => v.shape.length === 4 && v.shape[1] === 257 && v.shape[3] === 2)) return 'gtcrn';
  throw new DataError(`cannot tell which kind of separation model ${path} is`, {
    code: 'E_MODEL_CONTRACT',
    hint: `supported: HTDemucs exports, UVR MDX-Net, GTCRN; or use a registry id with modelPath (inputs: ${ins.map((v) => `${v.name}[${v.shape.join(',')}]`).join(' ')})`,
    details: { option: 'modelPath' },
  });
}

/** role → file for `entry` from a modelPath file or folder. */
function pathsFromModelPath(entry: ModelEntry, modelPath: string, spec: SeparatorSpec): Record<string, string> {
  if (!existsSync(modelPath)) {
    throw new UsageError(`modelPath ${modelPath} does not exist`, { code: 'E_MODEL_NOT_FOUND', hint: 'give the path of the model file (or folder)', details: { option: 'modelPath' } });
  }
  const isDir = statSync(modelPath).isDirectory();
  const files = entry.files;
  const out: Record<string, string> = {};
  if (isDir) {
    for (const f of files) out[f.role] = join(modelPath, f.name);
  } else if (files.length === 1) {
    out[files[0]!.role] = modelPath;
  } else {
    // A multi-file model given by one of its files: the others are its siblings under their registry names.
    const dir = dirname(modelPath);
    for (const f of files) out[f.role] = f.name === basename(modelPath) ? modelPath : join(dir, f.name);
    if (!Object.values(out).includes(modelPath)) out[files[0]!.role] = modelPath;
  }
  // A bag's sub-models that no written stem needs may be absent (a folder holding only the vocals specialist).
  const needed = bagRolesNeeded(entry, spec);
  const absent = Object.entries(out).filter(([role, p]) => (!needed || needed.includes(role)) && !existsSync(p)).map(([, p]) => p);
  if (absent.length > 0) {
    throw new UsageError(`model ${entry.id} needs ${files.map((f) => f.name).join(', ')}; missing: ${absent.join(', ')}`, {
      code: 'E_MODEL_NOT_FOUND',
      hint: `put the files side by side and pass the folder (or one of them) with modelPath`,
      details: { option: 'modelPath' },
    });
  }
  return out;
}

interface OutputPlan {
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

/**
 * Loads the model for `spec` (downloading it when needed, unless `modelPath` is given) and returns a
 * Separator that runs files one at a time.
 * @throws UsageError (64) bad options/ids; UnavailableError (69) model or device missing; DataError (65) bad model file.
 */
export async function loadSeparator(spec: SeparatorSpec, opts: { config: ResolvedConfig } & Observer): Promise<Separator> {
  const t0 = performance.now();
  validateSpec(spec);
  const { config } = opts;
  let threads = spec.threads ?? config.cpuThreads;
  const cores = availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`threads must be a whole number ≥ 1 (got ${threads})`, { hint: `e.g. threads: ${cores}` });
  if (threads > cores) {
    opts.onLog?.({ level: 'warn', message: `threads = ${threads} is more than the ${cores} logical cores of this machine; using ${cores}` });
    threads = cores;
  }
  const session: SessionOptions = { device: config.device, threads, gpu: config.gpu };
  const observer: Observer = {};
  if (opts.onProgress) observer.onProgress = opts.onProgress;
  if (opts.onLog) observer.onLog = opts.onLog;
  if (opts.signal) observer.signal = opts.signal;

  let model: StemModel;
  if (spec.model !== undefined && isPathLike(spec.model) && !spec.modelPath) {
    model = await loadFromPath(spec.model, spec, session);
  } else {
    let id = spec.model;
    if (id === undefined) {
      if (spec.mode !== undefined) {
        const installedIds = new Set<string>();
        for (const cand of ['htdemucs', 'htdemucs_6s']) if ((await installedPrecisions(getModel(cand), config)).length > 0) installedIds.add(cand);
        id = defaultModelForMode(spec.mode, (m) => installedIds.has(m));
        if (id === 'classic') {
          // Once per batch (a Separator serves every file): the embedded model works offline, the neural one is a pull away.
          opts.onLog?.({ level: 'info', message: `${spec.mode}-stem separation uses the embedded classic model (fast, modest quality); for neural quality run ${pullHint(getModel('htdemucs'))} once` });
        }
      } else id = 'classic';
    }
    const entry = getModel(id);
    if (entry.task !== 'separate') throw new UsageError(`model "${entry.id}" is a ${entry.task} model, not a separation model`, { hint: 'see `stemkit models list --task separate`' });
    let paths: Record<string, string>;
    if (spec.modelPath) paths = pathsFromModelPath(entry, spec.modelPath, spec);
    else {
      const ensureOpts: Parameters<typeof ensureModel>[1] = { config, ...observer };
      if (spec.precision !== undefined) ensureOpts.precision = spec.precision;
      const roles = bagRolesNeeded(entry, spec);
      if (roles) ensureOpts.roles = roles;
      paths = (await ensureModel(entry.id, ensureOpts)).paths;
    }
    model = await loadEntry(entry, paths, spec, session);
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const plan = planOutputs(model.stems, spec);
    opts.onLog?.({ level: 'debug', message: `model ${model.id} on ${model.provider}${model.provider === 'cpu' ? ` ×${model.threads}` : ''}, loaded in ${loadSeconds.toFixed(2)}s` });
    return createSeparator(model, plan, spec, config, loadSeconds);
  } catch (e) {
    await model.dispose();
    throw e;
  }
}

function validateSpec(spec: SeparatorSpec): void {
  const range = (name: string, v: number | undefined, lo: number, hi: number, int: boolean): void => {
    if (v === undefined) return;
    if (!Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v))) {
      throw new UsageError(`${name} must be ${int ? 'an integer' : 'a number'} in ${lo}..${hi} (got ${v})`, { hint: `e.g. ${name} ${int ? lo + 1 : 0.25}`, details: { option: name } });
    }
  };
  range('shifts', spec.shifts, 0, 20, true);
  range('overlap', spec.overlap, 0, 0.9, false);
  range('batchSize', spec.batchSize, 1, 64, true);
  range('seed', spec.seed, 0, 2 ** 32 - 1, true);
  if (spec.mode !== undefined && ![2, 4, 6].includes(spec.mode)) throw new UsageError(`mode must be 2, 4 or 6 (got ${String(spec.mode)})`, { hint: '2 = vocals + no_vocals, 4 = drums/bass/other/vocals, 6 = + guitar/piano', details: { option: 'mode' } });
}

async function loadFromPath(path: string, spec: SeparatorSpec, session: SessionOptions): Promise<StemModel> {
  if (!existsSync(path)) throw new UsageError(`model file ${path} does not exist`, { code: 'E_MODEL_NOT_FOUND', hint: 'check the path, or give a registry id (`stemkit models list`)' });
  const meta = await readOnnxMetadata(path);
  const probe = await createSession(path, session);
  let adapter: 'htdemucs' | 'mdxnet' | 'gtcrn';
  try {
    adapter = detectAdapter(probe, meta, path);
  } catch (e) {
    await probe.dispose();
    throw e;
  }
  // The probe session becomes the model's session (no second load of a large file).
  let reused = false;
  const create = async (p: string, o: SessionOptions): Promise<ModelSession> => {
    if (!reused && p === path) {
      reused = true;
      return probe;
    }
    return createSession(p, o);
  };
  const id = basename(path, extname(path));
  try {
    return await SEPARATION_ADAPTERS[adapter]({ ...adapterBase(id, spec, session, create), files: [path], file: () => path, params: undefined });
  } catch (e) {
    if (!reused) await probe.dispose();
    throw e;
  }
}

/**
 * For a bag of models with one-hot weights (htdemucs_ft), the roles of the sub-models the written stems need: only
 * those are downloaded and loaded (`stems: ['vocals']` → the vocals specialist). Undefined for every other model.
 */
function bagRolesNeeded(entry: ModelEntry, spec: SeparatorSpec): string[] | undefined {
  const sources = (entry.params?.['sources'] as string[] | undefined) ?? entry.stems;
  return sources ? rolesForStems(entry, planOutputs(sources, spec).wanted) : undefined;
}

async function loadEntry(entry: ModelEntry, paths: Record<string, string>, spec: SeparatorSpec, session: SessionOptions): Promise<StemModel> {
  if (!isSeparationAdapter(entry.adapter)) throw new UsageError(`model "${entry.id}" is not a separation model`, { hint: 'see `stemkit models list`' });
  const file = roleLookup(entry.id, paths);
  const input: AdapterInput = { ...adapterBase(entry.id, spec, session, createSession), files: entry.files.map((f) => file(f.role)), file, params: entry.params ?? {} };
  if (entry.adapter === 'htdemucs') {
    const sources = (entry.params?.['sources'] as string[] | undefined) ?? entry.stems;
    if (sources) {
      input.sources = sources;
      // Sub-models of a bag that no written stem needs are not even loaded (htdemucs_ft --stems vocals).
      input.onlyStems = planOutputs(sources, spec).wanted;
    }
  }
  return SEPARATION_ADAPTERS[entry.adapter](input);
}

/** The adapter input every architecture shares. */
function adapterBase(
  id: string,
  spec: SeparatorSpec,
  session: SessionOptions,
  create: AdapterInput['createSession'],
): Pick<AdapterInput, 'id' | 'denoise' | 'mdx' | 'session' | 'createSession'> {
  return { id, denoise: spec.denoise === true, mdx: spec.mdx, session, createSession: create };
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
const recipes = new WeakMap<Separator, (fopts: SeparateFileOptions) => Recipe>();

function createSeparator(model: StemModel, plan: OutputPlan, spec: SeparatorSpec, config: ResolvedConfig, loadSeconds: number): Separator {
  let loadPending = loadSeconds;
  const sep: Separator = {
    modelId: model.id,
    stems: plan.stems,
    sampleRate: model.sampleRate,
    provider: model.provider,
    threads: model.threads,
    loadSeconds,
    async separateFile(input, fopts = {}) {
      const load = loadPending;
      loadPending = 0;
      return separateOne(model, plan, spec, config, input, fopts, load);
    },
    dispose: () => model.dispose(),
  };
  recipes.set(sep, (fopts) => recipeFor(model, plan, spec, fopts));
  return sep;
}

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
function recipeFor(model: StemModel, plan: OutputPlan, spec: SeparatorSpec, fopts: SeparateFileOptions): Recipe {
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
function modelInputs(spec: SeparatorSpec): string[] {
  const out: string[] = [];
  if (spec.model !== undefined && isPathLike(spec.model)) out.push(resolve(spec.model));
  if (spec.modelPath !== undefined) out.push(resolve(spec.modelPath));
  return out;
}

/** How the batch decides to skip an input: its outputs exist and the manifest says this recipe wrote them. */
async function skipDecision(outputs: Record<string, string>, recipe: Recipe, force: boolean | undefined): Promise<{ skip: false; replacing?: string[] } | { skip: true; reason: 'done' | 'unverified'; files?: string[] }> {
  if (force) return { skip: false };
  const state = await outputsState(Object.values(outputs), recipe);
  if (state.state === 'done') return { skip: true, reason: 'done' };
  if (state.state === 'unknown') return { skip: true, reason: 'unverified', files: state.files };
  if (state.state === 'other') return { skip: false, replacing: state.models };
  return { skip: false };
}

function emptyTimes(load: number): PhaseTimes {
  return { load, decode: 0, infer: 0, write: 0, total: load };
}

async function separateOne(
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
      'choose another output folder (-o) or --filename',
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
  const streams: StemStream[] = Array.from({ length: layout.streams }, (_, i) => model.createStream(i === 0 ? { ...streamOpts, onInferProgress } : streamOpts));
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
    outResamplers.set(stem, createResampler(modelRate, outRate, C, rsOpts));
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
      const rs = outResamplers.get(stem)!;
      const w = stemWriters.get(stem)!;
      const block = merged[stem];
      const out = block && n > 0 ? rs.process(block) : undefined;
      const tail = final ? rs.flush() : undefined;
      if (out) await w.write(out);
      if (tail) await w.write(tail);
    }
  };

  const pushAll = async (block: RawAudio | null): Promise<void> => {
    let parts: StemBlocks[];
    if (block === null) {
      parts = [];
      for (const s of streams) parts.push(await s.flush());
    } else {
      mixQueue?.push(block.channels);
      // Streams run one after another: a model session is not shared across concurrent calls.
      parts = [];
      for (let i = 0; i < streams.length; i++) {
        const sub = layout.streams === 1 ? block : { channels: [block.channels[i]!], sampleRate: block.sampleRate };
        parts.push(await streams[i]!.push(sub));
      }
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

/** Options of a batch run. */
export interface SeparateBatchOptions extends Observer {
  config: ResolvedConfig;
  /** Expanded input files. */
  inputs: readonly string[];
  spec: SeparatorSpec;
  file: SeparateFileOptions;
  /** Wait for a free heavy (and, for videos, video) slot, or fail at once with BusyError (75). */
  wait?: boolean;
  timeoutSec?: number;
  /** Called after each file (for the CLI's per-file lines and JSON records). */
  onFile?(result: FileResult, index: number): void;
  /** Called once the model is loaded. */
  onLoaded?(separator: Separator): void;
  /** input → the folder its `{dir}` template field is relative to (expandInputs' roots); default: its own folder. */
  roots?: Readonly<Record<string, string>>;
  /** Inputs already known to be unusable (a folder that cannot be read): reported as failed files, first. */
  rejected?: ReadonlyArray<{ input: string; error: StemkitError }>;
}

export interface BatchResult {
  results: FileResult[];
  summary: BatchSummary;
  modelId: string;
  stems: string[];
  /**
   * 0 when no file failed; otherwise the exit code the failed files share (e.g. 66 when every failure is a
   * missing input), or 1 when they differ.
   */
  exitCode: number;
}

/**
 * Separates many files with one model load: files whose outputs all exist are skipped unless `force`,
 * a failing file does not stop the others, and each file holds a heavy job slot (plus a video slot for video
 * inputs) while it runs. Files run one after another: the model already uses the whole thread budget.
 * @throws InterruptedError (130) on abort; errors of loading the model (usage, unavailable, bad model).
 */
export async function separateBatch(opts: SeparateBatchOptions): Promise<BatchResult> {
  const t0 = performance.now();
  const observer: Observer = {};
  if (opts.onProgress) observer.onProgress = opts.onProgress;
  if (opts.onLog) observer.onLog = opts.onLog;
  if (opts.signal) observer.signal = opts.signal;
  const slotOptions = {
    config: opts.config,
    wait: opts.wait ?? true,
    ...(opts.timeoutSec !== undefined ? { timeoutSec: opts.timeoutSec } : {}),
    ...observer,
  };
  // The heavy slot is taken before the model is loaded and held for the whole batch: a job that is
  // waiting must not already hold a loaded model in memory (20 queued jobs would do exactly what the
  // limit exists to prevent). Video slots are per file, for video inputs only.
  const heavy = opts.inputs.length > 0 ? await acquireSlots({ pools: ['heavy'], ...slotOptions, ...(opts.inputs[0] ? { file: opts.inputs[0] } : {}) }) : undefined;
  let separator: Separator;
  try {
    separator = await loadSeparator(opts.spec, { config: opts.config, ...observer });
  } catch (e) {
    await heavy?.release();
    throw e;
  }
  const badRemux = (opts.file.remux ?? []).filter((s) => !separator.stems.includes(s));
  if (badRemux.length > 0) {
    await separator.dispose();
    await heavy?.release();
    throw new UsageError(`remux: ${badRemux.join(', ')} is not a stem of this run`, { hint: `choose from: ${separator.stems.join(', ')}`, details: { option: 'remux' } });
  }
  const fileOpts = (input: string): SeparateFileOptions => {
    const root = opts.roots?.[input];
    return root === undefined ? opts.file : { ...opts.file, inputRoot: root };
  };
  // Every output of the batch, checked against every input and every other output before the first file runs:
  // nothing is written when one output would replace an input or two inputs would write the same file.
  try {
    const writes = planBatch(opts.inputs, separator, fileOpts);
    const conflicts = findOutputConflicts([...opts.inputs, ...modelInputs(opts.spec)], writes);
    if (conflicts.length > 0) {
      const suggestion = suggestTemplate(conflicts, opts, separator);
      assertNoOutputConflicts(
        conflicts,
        suggestion !== undefined
          ? `a filename template that works for this batch: "${suggestion}"`
          : conflicts[0]!.kind === 'input'
            ? 'choose an output folder outside the inputs, or a filename template that cannot name an input'
            : 'rename one of the inputs, or use a filename template with more fields ({dir}, {trackext})',
        suggestion !== undefined ? { suggestedTemplate: suggestion } : {},
      );
    }
  } catch (e) {
    await separator.dispose();
    await heavy?.release();
    throw e;
  }
  opts.onLoaded?.(separator);
  const results: FileResult[] = [];
  try {
    let index = 0;
    for (const r of opts.rejected ?? []) {
      const result: FileResult = {
        input: r.input,
        status: 'failed',
        outputs: {},
        durationSec: 0,
        times: emptyTimes(0),
        rtf: 0,
        mbps: 0,
        provider: separator.provider,
        threads: separator.threads,
        warnings: [],
        error: { code: r.error.code, message: r.error.message, exitCode: r.error.exitCode, ...(r.error.hint ? { hint: r.error.hint } : {}) },
      };
      results.push(result);
      opts.onFile?.(result, index);
      index += 1;
    }
    const recipe = recipes.get(separator);
    let done = 0;
    for (const input of opts.inputs) {
      throwIfAborted(opts.signal);
      opts.onProgress?.({ stage: 'batch', status: done === 0 ? 'start' : 'progress', done, total: opts.inputs.length, unit: 'files' });
      const fo = fileOpts(input);
      // A file that will be skipped needs no job slot.
      const skip = recipe !== undefined && (await (async () => {
        try {
          return (await skipDecision(plannedOutputs(input, separator.stems, separator.modelId, fo), recipe(fo), fo.force)).skip;
        } catch {
          return false;
        }
      })());
      const lease = skip || !isVideoPath(input) ? { release: async () => {} } : await acquireSlots({ pools: ['video'], ...slotOptions, file: input });
      let result: FileResult;
      try {
        opts.onProgress?.({ stage: 'file', status: 'start', file: input, done: 0, total: 1 });
        result = await separator.separateFile(input, { ...fo, ...observer });
        opts.onProgress?.({ stage: 'file', status: 'done', file: input, done: 1, total: 1 });
      } finally {
        await lease.release();
      }
      results.push(result);
      opts.onFile?.(result, index);
      index += 1;
      done += 1;
    }
    opts.onProgress?.({ stage: 'batch', status: 'done', done: opts.inputs.length, total: opts.inputs.length, unit: 'files' });
  } finally {
    await separator.dispose();
    await heavy?.release();
  }
  const failedCodes = new Set(results.filter((r) => r.status === 'failed').map((r) => r.error?.exitCode ?? 1));
  const exitCode = failedCodes.size === 0 ? 0 : failedCodes.size === 1 ? [...failedCodes][0]! : 1;
  return { results, summary: summarizeBatch(results, (performance.now() - t0) / 1000), modelId: separator.modelId, stems: separator.stems, exitCode };
}

/** Every output of a batch, owned by its input. @throws UsageError (64) for a template that cannot work. */
function planBatch(inputs: readonly string[], separator: Separator, fileOpts: (input: string) => SeparateFileOptions): PlannedWrite[] {
  const writes: PlannedWrite[] = [];
  for (const input of inputs) {
    for (const output of Object.values(plannedOutputs(input, separator.stems, separator.modelId, fileOpts(input)))) writes.push({ output, owner: input });
  }
  return writes;
}

/**
 * A filename template under which the batch has no conflict, derived from the one in use: the input's folder
 * ({dir}) and/or its extension ({trackext}) added to {track}; undefined when none of them works.
 */
function suggestTemplate(conflicts: readonly OutputConflict[], opts: SeparateBatchOptions, separator: Separator): string | undefined {
  const base = opts.file.filename ?? DEFAULT_FILENAME_TEMPLATE;
  const withTrack = base.includes('{track}') ? base : `{track}/${base}`;
  const candidates = [
    withTrack.replace('{track}', '{dir}/{track}'),
    withTrack.replace('{track}', '{track}.{trackext}'),
    withTrack.replace('{track}', '{dir}/{track}.{trackext}'),
    `{dir}/{track}.{trackext}/{stem}.{ext}`,
  ].filter((t, i, all) => t !== base && all.indexOf(t) === i);
  if (conflicts.every((c) => c.kind === 'input')) candidates.push('{track}.stems/{stem}.{ext}', '{dir}/{track}.stems/{stem}.{ext}');
  for (const template of candidates) {
    try {
      const writes = planBatch(opts.inputs, separator, (input) => {
        const root = opts.roots?.[input];
        return { ...opts.file, filename: template, ...(root === undefined ? {} : { inputRoot: root }) };
      });
      if (findOutputConflicts([...opts.inputs, ...modelInputs(opts.spec)], writes).length === 0) return template;
    } catch {
      // this candidate cannot work; try the next
    }
  }
  return undefined;
}

/**
 * The one-line timing summary, e.g. `load 0.41s | decode 0.30s | infer 12.8s | write 0.52s | total 14.0s | RTF 0.06 | cpu ×4`.
 */
export function formatTimingLine(r: Pick<FileResult, 'times' | 'rtf' | 'provider' | 'threads'>): string {
  const s = (v: number): string => `${v < 10 ? v.toFixed(2) : v.toFixed(1)}s`;
  const t = r.times;
  const device = r.provider === 'cpu' ? `cpu ×${r.threads}` : r.provider;
  return `load ${s(t.load)} | decode ${s(t.decode)} | infer ${s(t.infer)} | write ${s(t.write)} | total ${s(t.total)} | RTF ${r.rtf.toFixed(2)} | ${device}`;
}
