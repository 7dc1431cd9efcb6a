/**
 * The TTS engine API: `loadVoiceModel(spec)` → a `TtsModel` whose `synthesize(text)` yields audio one
 * sentence at a time (so output can be streamed while later sentences are still being synthesised).
 *
 * Guarantees: every sentence of the text is synthesised or reported; a Kokoro sentence longer than
 * 510 phoneme tokens is split (text-split.ts), never truncated; symbols the model cannot say are
 * dropped with a debug log that names and counts them; a text with nothing speakable is an error.
 */
import { existsSync, statSync } from 'node:fs';
import type { Device, ResolvedConfig } from '../config/schema.js';
import { DataError, InputError, UsageError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';
import type { RawAudio } from '../audio/raw-audio.js';
import { warmUpPhonemizer } from './phonemize.js';
import { loadPiperConfig, piperConfigPathFor } from './piper.js';
import type { BlockTiming } from './timing.js';
import { now } from './pipeline.js';
import { TTS_ENGINES, requireVoices } from './engines.js';

export { createKokoroModel, kokoroLanguage } from './kokoro-model.js';
export { createPiperModel } from './piper-model.js';
export { looksLikeSsml, plainUtterances, type Utterance, type UtterancePart } from './pipeline.js';

/** A model to load: a registry id / `piper:<voice>` / a path to an .onnx file, or explicit local files. */
export type VoiceModelSpec =
  | string
  | { kind: 'kokoro'; model: string; voices: string; id?: string }
  | { kind: 'piper'; model: string; config?: string; id?: string };

export interface LoadVoiceModelOptions extends Observer {
  config: ResolvedConfig;
  /** Kokoro voices file/folder; overrides the registry's voices and is required for a local Kokoro .onnx. */
  voices?: string;
  /** Precision for registry models (`auto`, `fp32`, `fp16`, `int8`). */
  precision?: string;
  /** Overrides config.device. */
  device?: Device;
  /** Overrides config.cpuThreads. */
  threads?: number;
  /** espeak-ng executable for non-English languages (default `espeak-ng` on PATH). */
  espeakPath?: string;
}

export interface SynthesizeOptions extends Observer {
  /** Kokoro voice or blend (`af_heart`, `af_heart:0.7,bf_emma:0.3`). Default af_heart (or the first voice). */
  voice?: string;
  /** Kokoro: 0.5–2 (> 1 faster). Piper: divides the length scale unless `lengthScale` is given. */
  speed?: number;
  /** Piper multi-speaker voices: a name from speaker_id_map or a numeric id. */
  speaker?: string | number;
  lengthScale?: number;
  noiseScale?: number;
  noiseW?: number;
  /** Seconds of silence between sentences (default 0.2, as piper's C++ runner). */
  sentenceSilence?: number;
  /** espeak voice / language for phonemisation when the voice does not imply the right one. */
  lang?: string;
  /** Kokoro: trim each call's leading/trailing silence before joining (default true; see trim.ts). */
  trim?: boolean;
  /** Read the text as SSML (ssml.ts). Default: when it starts with `<speak`. */
  ssml?: boolean;
}

export interface SynthesisStats {
  characters: number;
  sentences: number;
  /** Model calls (Kokoro splits long sentences into several). */
  calls: number;
  /** Phoneme tokens fed, pads excluded. */
  tokens: number;
  /** Sentences with nothing speakable (reported as warnings). */
  unspoken: number;
  /** Symbols not in the model's vocabulary/map, dropped, with counts. */
  dropped: Record<string, number>;
  /** Sentences cut inside a word because a single word exceeded the token limit. */
  hardCuts: number;
  samples: number;
  sampleRate: number;
  phonemizeSec: number;
  inferSec: number;
}

/** One sentence's audio (with the silence before it) and when its phonemes are spoken in it. */
export interface SpeechBlock extends RawAudio {
  timing: BlockTiming;
}

/** The audio of a synthesis, one block per sentence (silence between sentences is prepended to the later one). */
export interface TtsRun extends AsyncIterable<SpeechBlock> {
  /** Filled in as the run goes; complete once iteration ends. */
  readonly stats: SynthesisStats;
}

export interface TtsModel {
  readonly kind: 'kokoro' | 'piper';
  /** Registry id, or the model file path. */
  readonly id: string;
  readonly sampleRate: number;
  readonly provider: string;
  readonly threads: number;
  readonly loadSeconds: number;
  /** Kokoro: voice names. Piper: speaker names (empty for a single-speaker voice, or ids when unnamed). */
  listVoices(): string[];
  /**
   * Synthesises `text`, one RawAudio (mono) per sentence.
   * @throws DataError (65) for an empty text or one with nothing speakable; UsageError (64) for an unknown voice/speaker or a speed out of range.
   */
  synthesize(text: string, opts?: SynthesizeOptions): TtsRun;
  dispose(): Promise<void>;
}

interface ResolvedSpec {
  kind: 'kokoro' | 'piper' | 'auto';
  model: string;
  voices?: string | undefined;
  config?: string | undefined;
  id: string;
}

async function resolveSpec(spec: VoiceModelSpec, opts: LoadVoiceModelOptions): Promise<ResolvedSpec> {
  if (typeof spec !== 'string') {
    return spec.kind === 'kokoro'
      ? { kind: 'kokoro', model: spec.model, voices: opts.voices ?? spec.voices, id: spec.id ?? spec.model }
      : { kind: 'piper', model: spec.model, config: spec.config, id: spec.id ?? spec.model };
  }
  const looksLikePath = /\.onnx$/i.test(spec) || spec.includes('/') || spec.includes('\\');
  if (looksLikePath) {
    if (!existsSync(spec) || !statSync(spec).isFile()) {
      throw new InputError(`model file not found: ${spec}`, { code: 'E_MODEL_NOT_FOUND', hint: 'Check the path, or use a registry id such as kokoro or piper:en_US-lessac-medium (`stemkit models list`).' });
    }
    if (existsSync(piperConfigPathFor(spec))) return { kind: 'piper', model: spec, id: spec };
    if (opts.voices !== undefined) return { kind: 'kokoro', model: spec, voices: opts.voices, id: spec };
    return { kind: 'auto', model: spec, id: spec };
  }
  const { resolveModelRef } = await import('../models/registry.js');
  const { ensureModel } = await import('../models/ensure.js');
  const piperPrefixed = /^piper:/i.test(spec);
  const id = piperPrefixed ? spec.slice(spec.indexOf(':') + 1) : spec;
  const ref = resolveModelRef(id);
  if (ref.entry.task !== 'tts' || (piperPrefixed && ref.entry.adapter !== 'piper')) {
    throw new UsageError(`"${spec}" is not a ${piperPrefixed ? 'Piper voice' : 'text-to-speech model'}`, {
      code: 'E_UNKNOWN_MODEL',
      hint: 'Use model kokoro, piper:<voice> (e.g. piper:en_US-lessac-medium) or a path to an .onnx file; `stemkit models list` shows the TTS models.',
      details: { hintOption: 'model' },
    });
  }
  const installed = await ensureModel(id, {
    config: opts.config,
    ...(opts.precision !== undefined ? { precision: opts.precision } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.onLog ? { onLog: opts.onLog } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const model = installed.paths['model'];
  if (!model) throw new DataError(`registry entry ${ref.entry.id} has no model file`, { code: 'E_MODEL_CONTRACT' });
  if (ref.entry.adapter === 'kokoro') return { kind: 'kokoro', model, voices: opts.voices ?? installed.paths['voices'], id: ref.entry.id };
  return { kind: 'piper', model, config: installed.paths['config'], id: ref.entry.id };
}

/**
 * Loads a Kokoro or Piper model.
 * - a string spec: `kokoro` (and other registry ids/aliases, e.g. `kokoro-int8`), `piper:<voice>`, or a path
 *   to an `.onnx` file (Piper when `<file>.onnx.json` exists, Kokoro when `opts.voices` is given, otherwise
 *   decided from the model's inputs);
 * - registry models are downloaded when missing unless offline (see ensureModel).
 * Piper runs on the CPU when the device is `auto` (it is slower on CUDA in published measurements).
 * @throws InputError (66) for a missing model/voices/.onnx.json; DataError (65) for a model that is neither
 *   contract or a malformed voices file; UsageError (64) for an unknown id; UnavailableError (69) offline/no device.
 */
export async function loadVoiceModel(spec: VoiceModelSpec, opts: LoadVoiceModelOptions): Promise<TtsModel> {
  const t0 = now();
  const r = await resolveSpec(spec, opts);
  throwIfAborted(opts.signal);
  const { createSession } = await import('../runtime/onnx.js');
  const engine = r.kind === 'auto' ? undefined : TTS_ENGINES[r.kind];
  let device = opts.device ?? opts.config.device;
  if (engine?.autoDevice && device === 'auto') {
    device = engine.autoDevice.device;
    opts.onLog?.({ level: 'debug', message: engine.autoDevice.why, option: engine.autoDevice.option });
  }
  // Validate cheap inputs before the (slow) session creation.
  const prepared = await engine?.prepare(r);
  // English front-end start-up (~1 s of WASM instantiation) overlaps the session creation; it counts as load time.
  const english = prepared?.english ?? true;
  const warm = english ? warmUpPhonemizer().catch(() => undefined) : undefined;
  const session = await createSession(r.model, { device, threads: opts.threads ?? opts.config.cpuThreads, gpu: opts.config.gpu });
  await warm;
  try {
    if (!prepared) {
      const names = session.inputs.map((i) => i.name);
      if (names.includes('input') && names.includes('scales')) {
        // A Piper model without its config: loadPiperConfig throws the "missing .onnx.json" error.
        await loadPiperConfig(r.model, r.config);
      }
      if (names.includes('style')) requireVoices(r);
      throw new DataError(`${r.model} is neither a Kokoro nor a Piper model (inputs: ${names.join(', ')})`, { code: 'E_MODEL_CONTRACT', hint: 'Use a Kokoro v1.0 ONNX export with voices, or a Piper voice with its .onnx.json.', details: { hintOption: 'voices' } });
    }
    return prepared.create(session, { id: r.id, loadSeconds: now() - t0, espeakPath: opts.espeakPath, ...(opts.onLog ? { onLog: opts.onLog } : {}) });
  } catch (e) {
    await session.dispose();
    throw e;
  }
}
