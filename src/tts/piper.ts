/**
 * Piper (VITS) voices (model-io.md §4): `<voice>.onnx` plus `<voice>.onnx.json` beside it.
 * Inputs `input` int64 [1, N], `input_lengths` int64 [1], `scales` float32 [3] =
 * [noise_scale, length_scale, noise_w], and `sid` int64 [1] only in multi-speaker voices; the output's
 * last axis is the audio at the config's sample rate.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { DataError, InputError, UsageError } from '../errors.js';
import type { ModelSession } from '../runtime/onnx.js';
import { SpanText } from './spans.js';
import type { SourceUnit } from './timing.js';

export interface PiperInferenceDefaults {
  noiseScale: number;
  lengthScale: number;
  noiseW: number;
}

export interface PiperConfig {
  /** The .onnx.json path. */
  path: string;
  sampleRate: number;
  /** espeak voice, e.g. `en-us`. */
  espeakVoice: string;
  /** `espeak` (default) or `text` (raw code points, no espeak). */
  phonemeType: 'espeak' | 'text';
  idMap: ReadonlyMap<string, readonly number[]>;
  /** Longest key of idMap, in code points (multi-code-point entries such as `aɪ` are merged greedily). */
  maxKeyLength: number;
  inference: PiperInferenceDefaults;
  numSpeakers: number;
  /** Speaker name → id (empty for single-speaker voices). */
  speakerIdMap: Readonly<Record<string, number>>;
  /** `phoneme_map`: one code point → several, applied before the ids. */
  phonemeMap: ReadonlyMap<string, readonly string[]>;
  /** `inference.phoneme_silence`: seconds of silence after a phoneme (one code point); empty for most voices. */
  phonemeSilence: ReadonlyMap<string, number>;
  /** Audio samples per duration frame (`hop_length`, default 256 as piper1-gpl src/piper/config.py): scales the alignment output. */
  hopLength: number;
}

/** `<model>.onnx.json`, or undefined when the model path does not end in .onnx. */
export function piperConfigPathFor(modelPath: string): string {
  return `${modelPath}.json`;
}

function bad(path: string, what: string): DataError {
  return new DataError(`Piper config ${path}: ${what}`, { code: 'E_PIPER_CONFIG', hint: 'Use the .onnx.json that was published with the voice (rhasspy/piper-voices).' });
}

/**
 * Reads and validates a voice's `.onnx.json`.
 * @throws InputError (66) when it is missing (the message names the expected path); DataError (65) when malformed.
 */
export async function loadPiperConfig(modelPath: string, configPath?: string): Promise<PiperConfig> {
  const path = configPath ?? piperConfigPathFor(modelPath);
  if (!existsSync(path)) {
    throw new InputError(`Piper voice config not found: ${path}`, {
      code: 'E_PIPER_CONFIG_MISSING',
      hint: `A Piper voice needs its .onnx.json beside the model: put it at ${path} (download both files of the voice).`,
    });
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw bad(path, `not valid JSON (${(cause as Error).message})`);
  }
  const audio = raw['audio'] as { sample_rate?: unknown } | undefined;
  const sampleRate = audio?.sample_rate;
  if (typeof sampleRate !== 'number' || !(sampleRate > 0)) throw bad(path, 'audio.sample_rate is missing');
  const mapRaw = raw['phoneme_id_map'];
  if (!mapRaw || typeof mapRaw !== 'object') throw bad(path, 'phoneme_id_map is missing');
  const idMap = new Map<string, number[]>();
  let maxKeyLength = 1;
  for (const [k, v] of Object.entries(mapRaw as Record<string, unknown>)) {
    const ids = Array.isArray(v) ? v : [v];
    if (!ids.every((x) => Number.isInteger(x))) throw bad(path, `phoneme_id_map["${k}"] is not a list of integers`);
    const key = k.normalize('NFD');
    idMap.set(key, ids as number[]);
    maxKeyLength = Math.max(maxKeyLength, [...key].length);
  }
  for (const req of ['^', '_', '$']) if (!idMap.has(req)) throw bad(path, `phoneme_id_map has no "${req}"`);
  const inf = (raw['inference'] ?? {}) as Record<string, unknown>;
  const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  const phonemeMap = new Map<string, string[]>();
  for (const [k, v] of Object.entries((raw['phoneme_map'] ?? {}) as Record<string, unknown>)) {
    if (Array.isArray(v)) phonemeMap.set(k, v.map(String));
  }
  const phonemeSilence = new Map<string, number>();
  const silenceRaw = inf['phoneme_silence'] ?? {};
  if (typeof silenceRaw !== 'object' || silenceRaw === null || Array.isArray(silenceRaw)) throw bad(path, 'inference.phoneme_silence is not an object of phoneme → seconds');
  for (const [k, v] of Object.entries(silenceRaw as Record<string, unknown>)) {
    // As piper's C++ runner: a key is one phoneme, i.e. one code point.
    if ([...k].length !== 1) throw bad(path, `inference.phoneme_silence["${k}"]: the key must be a single phoneme (one code point)`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 60) throw bad(path, `inference.phoneme_silence["${k}"] must be seconds between 0 and 60`);
    phonemeSilence.set(k, v);
  }
  const espeak = raw['espeak'] as { voice?: unknown } | undefined;
  return {
    path,
    sampleRate,
    espeakVoice: typeof espeak?.voice === 'string' ? espeak.voice : 'en-us',
    phonemeType: raw['phoneme_type'] === 'text' ? 'text' : 'espeak',
    idMap,
    maxKeyLength,
    inference: { noiseScale: num(inf['noise_scale'], 0.667), lengthScale: num(inf['length_scale'], 1), noiseW: num(inf['noise_w'], 0.8) },
    numSpeakers: num(raw['num_speakers'], 1),
    speakerIdMap: (raw['speaker_id_map'] ?? {}) as Record<string, number>,
    phonemeMap,
    phonemeSilence,
    hopLength: num(raw['hop_length'], 256),
  };
}

export interface PiperPhrase {
  phonemes: string;
  /** Silence after the phrase, in seconds. */
  silenceSec: number;
}

/**
 * Splits a sentence's phonemes into phrases after every phoneme that `inference.phoneme_silence` lists, as
 * piper's C++ runner does: each phrase ends with its listed phoneme, is synthesised on its own (own BOS/EOS and
 * peak normalisation) and is followed by that phoneme's silence. Without entries: one phrase, no silence.
 */
export function piperPhrases(phonemes: string, silence: ReadonlyMap<string, number>): PiperPhrase[] {
  return piperPhraseSpans(SpanText.source(phonemes), silence).map((p) => ({ phonemes: p.phonemes.text, silenceSec: p.silenceSec }));
}

/** piperPhrases keeping sources (spans.ts). */
export function piperPhraseSpans(phonemes: SpanText, silence: ReadonlyMap<string, number>): Array<{ phonemes: SpanText; silenceSec: number }> {
  if (silence.size === 0) return [{ phonemes, silenceSec: 0 }];
  const nfd = phonemes.nfd();
  const phrases: Array<{ phonemes: SpanText; silenceSec: number }> = [];
  let start = 0;
  for (const [c, i] of nfd.codePoints()) {
    const sec = silence.get(c);
    if (sec !== undefined) {
      phrases.push({ phonemes: nfd.slice(start, i + c.length), silenceSec: sec });
      start = i + c.length;
    }
  }
  if (start < nfd.length) phrases.push({ phonemes: nfd.slice(start), silenceSec: 0 });
  return phrases;
}

export interface PiperIds {
  ids: number[];
  /** Phonemes not in the map, skipped, with counts. */
  missing: Map<string, number>;
  /** Phonemes that got ids (n in `^ _ p1 _ … pn _ $`). */
  phonemes: number;
  /** `^`, each phoneme, `$` with the input they stand for; unit k owns `unitIds[k]` ids (its own and the pad after it). */
  units: SourceUnit[];
  unitIds: number[];
}

/**
 * The canonical id sequence `^ _ p1 _ p2 _ … pn _ $` (model-io.md §4.3, piper-phonemize / piper1-gpl):
 * the phoneme string is NFD-decomposed and split into code points; adjacent code points that form a
 * key of the map (e.g. `aɪ`) are merged greedily, longest first; phonemes missing from the map are skipped.
 */
export function piperIds(phonemes: string | SpanText, config: Pick<PiperConfig, 'idMap' | 'maxKeyLength' | 'phonemeMap'>): PiperIds {
  const nfd = (typeof phonemes === 'string' ? SpanText.source(phonemes) : phonemes).nfd();
  let cps: Array<{ c: string; lo: number; hi: number }> = [...nfd.codePoints()].map(([c, i]) => ({ c, lo: nfd.lo[i]!, hi: nfd.hi[i]! }));
  if (config.phonemeMap.size > 0) cps = cps.flatMap((p) => (config.phonemeMap.get(p.c) ?? [p.c]).map((c) => ({ ...p, c })));
  const map = config.idMap;
  const pad = map.get('_')!;
  const ids: number[] = [...map.get('^')!, ...pad];
  const units: SourceUnit[] = [{ phoneme: '^', lo: -1, hi: -1 }];
  const unitIds: number[] = [ids.length];
  const missing = new Map<string, number>();
  let count = 0;
  for (let i = 0; i < cps.length; ) {
    let matched = 0;
    for (let len = Math.min(config.maxKeyLength, cps.length - i); len >= 1; len--) {
      const part = cps.slice(i, i + len);
      const key = part.map((p) => p.c).join('');
      const v = map.get(key);
      if (v) {
        ids.push(...v, ...pad);
        const src = part.filter((p) => p.lo >= 0);
        units.push({ phoneme: key, lo: src.length ? Math.min(...src.map((p) => p.lo)) : -1, hi: src.length ? Math.max(...src.map((p) => p.hi)) : -1 });
        unitIds.push(v.length + pad.length);
        matched = len;
        count++;
        break;
      }
    }
    if (matched === 0) {
      missing.set(cps[i]!.c, (missing.get(cps[i]!.c) ?? 0) + 1);
      matched = 1;
    }
    i += matched;
  }
  ids.push(...map.get('$')!);
  units.push({ phoneme: '$', lo: -1, hi: -1 });
  unitIds.push(map.get('$')!.length);
  return { ids, missing, phonemes: count, units, unitIds };
}

/**
 * Resolves `--speaker` (a name from speaker_id_map, or a numeric id) to an id; undefined for single-speaker voices.
 * @throws UsageError (64) for an unknown speaker (listing valid ones), or a speaker given for a single-speaker voice.
 */
export function resolveSpeaker(config: Pick<PiperConfig, 'numSpeakers' | 'speakerIdMap'>, speaker: string | number | undefined, hasSid: boolean): number | undefined {
  if (!hasSid) {
    if (speaker !== undefined) {
      throw new UsageError(`this Piper voice is single-speaker; speaker "${speaker}" does not apply`, {
        code: 'E_UNKNOWN_SPEAKER',
        hint: 'Drop speaker, or pick a multi-speaker voice.',
        details: { option: 'speaker' },
      });
    }
    return undefined;
  }
  if (speaker === undefined) return 0;
  const names = Object.keys(config.speakerIdMap);
  const byName = config.speakerIdMap[String(speaker)];
  if (byName !== undefined) return byName;
  const n = Number(speaker);
  const count = Math.max(config.numSpeakers, names.length);
  if (Number.isInteger(n) && n >= 0 && n < count) return n;
  const shown = names.length > 20 ? `${names.slice(0, 20).join(', ')}, … (${names.length} in all)` : names.join(', ');
  throw new UsageError(`unknown speaker "${speaker}"`, {
    code: 'E_UNKNOWN_SPEAKER',
    hint: `valid speakers: ${names.length ? shown : `ids 0–${count - 1}`}${names.length ? ` (or an id 0–${count - 1})` : ''}; \`stemkit tts --list-voices\` lists them`,
    details: { speaker, valid: names },
  });
}

export interface PiperScales extends PiperInferenceDefaults {}

export class PiperEngine {
  readonly hasSid: boolean;

  constructor(
    private readonly session: ModelSession,
    readonly config: PiperConfig,
  ) {
    const names = session.inputs.map((i) => i.name);
    if (!names.includes('input') || !names.includes('scales')) {
      throw new DataError(`not a Piper model: its inputs are ${names.join(', ') || '(none)'}; expected input, input_lengths, scales[, sid]`, {
        code: 'E_MODEL_CONTRACT',
        hint: 'Use a Piper voice .onnx, or a Kokoro model with voices.',
        details: { hintOption: 'voices' },
      });
    }
    this.hasSid = names.includes('sid');
  }

  /**
   * Runs one sentence's ids. `sid` is fed only when the model has that input. Returns the raw float output
   * (last axis) and, for voices patched with piper1-gpl's alignment output (a second output: `w_ceil`, frames
   * per id; see timing.ts), the samples of each id. A count that does not match the ids is ignored.
   */
  async infer(ids: readonly number[], scales: PiperScales, sid: number | undefined): Promise<{ wave: Float32Array; idSamples?: number[] }> {
    const input = BigInt64Array.from(ids, (v) => BigInt(v));
    const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {
      input: { data: input, dims: [1, ids.length] },
      input_lengths: { data: BigInt64Array.from([BigInt(ids.length)]), dims: [1] },
      scales: { data: Float32Array.from([scales.noiseScale, scales.lengthScale, scales.noiseW]), dims: [3] },
    };
    if (this.hasSid) feeds['sid'] = { data: BigInt64Array.from([BigInt(sid ?? 0)]), dims: [1] };
    const out = await this.session.run(feeds);
    const audioName = 'output' in out ? 'output' : this.session.outputNames[0]!;
    const first = out[audioName];
    if (!first || !(first.data instanceof Float32Array)) throw new DataError('the Piper model did not return float audio', { code: 'E_MODEL_CONTRACT' });
    const alignName = this.session.outputNames.find((n) => n !== audioName);
    const align = alignName === undefined ? undefined : out[alignName];
    if (!align || align.data.length !== ids.length || typeof align.data[0] === 'string') return { wave: first.data };
    const hop = this.config.hopLength;
    return { wave: first.data, idSamples: Array.from(align.data as ArrayLike<number | bigint>, (v) => Math.round(Number(v)) * hop) };
  }
}

/**
 * Piper's per-sentence peak normalisation kept in float (model-io.md §4.4): x / max(0.01, max|x|),
 * the float equivalent of both runners' `x · 32767 / max(0.01, peak)` before int16 conversion. In place.
 */
export function peakNormalize(x: Float32Array): Float32Array {
  let peak = 0;
  for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]!));
  const g = 1 / Math.max(0.01, peak);
  for (let i = 0; i < x.length; i++) x[i]! *= g;
  return x;
}
