/**
 * The separator: resolves a model (registry id, file, or the default of a mode) through the dispatch table
 * (adapters.ts), loads it once and returns a Separator whose separateFile runs the pipeline (pipeline.ts)
 * on one file. Batches of files are batch.ts. The public job types live here.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type { ResolvedConfig } from '../config/schema.js';
import { DataError, UsageError } from '../errors.js';
import type { Observer } from '../progress.js';
import { type AudioFormat } from '../audio/open.js';
import { defaultModelForMode, getModel, pullHint, rolesForStems, type ModelEntry } from '../models/registry.js';
import { ensureModel } from '../models/ensure.js';
import { installedPrecisions } from '../models/cache.js';
import { createSession, type ModelSession, type SessionOptions } from '../runtime/onnx.js';
import { SEPARATION_ADAPTERS, isSeparationAdapter, roleLookup, type AdapterInput } from './adapters.js';
import type { MdxOverrides } from './mdxnet.js';
import { readOnnxMetadata } from './onnx-metadata.js';
import { type ClipMode } from './writer.js';
import type { StemModel } from './types.js';
import { isPathLike, planOutputs, recipeFor, recipes, separateOne, type OutputPlan } from './pipeline.js';

export { planOutputs, plannedOutputs } from './pipeline.js';

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
