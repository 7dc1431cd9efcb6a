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
import type { ModelSession } from '../runtime/onnx.js';
import { KOKORO_SPEED_RANGE, KokoroEngine } from './kokoro.js';
import { isPhonemizerVoice, phonemizeSpans, warmUpPhonemizer } from './phonemize.js';
import { PiperEngine, loadPiperConfig, peakNormalize, piperConfigPathFor, piperIds, piperPhraseSpans, resolveSpeaker, type PiperConfig } from './piper.js';
import { NO_SOURCE, SpanText } from './spans.js';
import { splitSentenceSpans, splitTokenIds } from './text-split.js';
import { placeUnits, shiftPhonemes, type BlockTiming, type TimedPhoneme } from './timing.js';
import { fadeEdges, nonSilentRange } from './trim.js';
import { blendVoices, openVoiceStore, parseVoiceSpec, selectStyle, type VoiceStore } from './voices.js';
import { KOKORO_BREAK_CLASSES, KOKORO_MAX_TOKENS, KOKORO_SAMPLE_RATE, KOKORO_SPACE, describeDropped, tokenizeKokoro } from './vocab.js';

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

/** Kokoro voice prefix → espeak language (model-io.md §3.3/§3.5; kokoro.js uses `en` for British voices). */
const KOKORO_LANG: Record<string, string> = { a: 'en-us', b: 'en', e: 'es', f: 'fr-fr', h: 'hi', i: 'it', p: 'pt-br', j: 'ja', z: 'cmn' };

/** The espeak language a Kokoro voice implies (en-us for names without a known prefix). */
export function kokoroLanguage(voice: string): string {
  const first = voice.split(',')[0]!.trim();
  return /^[a-z][fm]_/.test(first) ? KOKORO_LANG[first[0]!] ?? 'en-us' : 'en-us';
}

function emptyStats(sampleRate: number, characters: number): SynthesisStats {
  return { characters, sentences: 0, calls: 0, tokens: 0, unspoken: 0, dropped: {}, hardCuts: 0, samples: 0, sampleRate, phonemizeSec: 0, inferSec: 0 };
}

function concat(parts: Float32Array[], lead: number): Float32Array {
  const total = lead + parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(total);
  let off = lead;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function checkText(text: string): void {
  if (text.trim() === '') {
    throw new DataError('the text is empty', { code: 'E_EMPTY_TEXT', hint: 'Pass the text as an argument, with -f <file>, or on stdin with `-`.' });
  }
}

function nothingSpeakable(dropped: Record<string, number>): DataError {
  const what = Object.keys(dropped).length ? `; dropped: ${describeDropped(new Map(Object.entries(dropped)))}` : '';
  return new DataError(`the text contains nothing this voice can speak${what}`, {
    code: 'E_NO_PHONEMES',
    hint: 'Check the text encoding and the language (lang); the voice supports the symbols of its language only.',
    details: { option: 'lang' },
  });
}

const now = (): number => performance.now() / 1000;

/** What one part of an utterance says: text to phonemise, or phonemes given directly (SSML `<phoneme>`). */
export type UtterancePart = { text: SpanText } | { phonemes: SpanText };

/**
 * A stretch of the input synthesised with uniform options: a sentence of plain text, or the part of an SSML
 * sentence with its own voice, speed or language. Each becomes one block (and one timestamps sentence).
 */
export interface Utterance {
  parts: UtterancePart[];
  /** Offsets of the stretch in the input text. */
  start: number;
  end: number;
  voice?: string;
  speed?: number;
  lang?: string;
  /** Seconds of silence before it; default the sentence silence (none before the first utterance). */
  pauseBefore?: number;
}

/** Plain text → one utterance per sentence (text-split.ts), each part standing for its place in the text. */
export function plainUtterances(text: string): Utterance[] {
  return splitSentenceSpans(text).map((s) => ({ parts: [{ text: SpanText.source(s.text, s.start) }], start: s.start, end: s.end }));
}

/** True when a text is SSML by its look: it starts with a `<speak` element (after an optional XML declaration). */
export function looksLikeSsml(text: string): boolean {
  return /^\s*(?:<\?xml[^>]*\?>\s*)?<speak[\s>/]/.test(text);
}

async function utterancesOf(text: string, opts: SynthesizeOptions): Promise<Utterance[]> {
  if (!(opts.ssml ?? looksLikeSsml(text))) return plainUtterances(text);
  const { ssmlUtterances } = await import('./ssml.js');
  return ssmlUtterances(text, opts.onLog ? { onLog: opts.onLog } : {});
}

type Phonemizer = (texts: SpanText[], lang: string) => Promise<SpanText[]>;

/** Phonemises utterances in look-ahead batches: the first alone (fast first audio), then up to 16. */
async function* phonemizedUtterances(
  utterances: readonly Utterance[],
  defaultLang: (u: Utterance) => string,
  phon: Phonemizer,
  stats: SynthesisStats,
): AsyncGenerator<[Utterance, SpanText, SpanText[]]> {
  let i = 0;
  while (i < utterances.length) {
    const size = i === 0 ? 1 : 16;
    const batch = utterances.slice(i, i + size);
    const t0 = now();
    // One backend call per language in the batch.
    const byLang = new Map<string, SpanText[]>();
    for (const u of batch) for (const p of u.parts) if ('text' in p) byLang.set(defaultLang(u), [...(byLang.get(defaultLang(u)) ?? []), p.text]);
    const results = new Map<SpanText, SpanText>();
    for (const [lang, texts] of byLang) {
      const ps = await phon(texts, lang);
      texts.forEach((t, k) => results.set(t, ps[k]!));
    }
    stats.phonemizeSec += now() - t0;
    for (const u of batch) {
      const given: SpanText[] = [];
      const pieces = u.parts.map((p) => {
        if ('text' in p) return results.get(p.text)!;
        given.push(p.phonemes);
        return p.phonemes;
      });
      const gap = SpanText.covering(' ', NO_SOURCE, NO_SOURCE);
      const joined = SpanText.concat(pieces.filter((p) => p.length > 0).flatMap((p, k) => (k === 0 ? [p] : [gap, p])));
      yield [u, joined, given];
    }
    i += size;
  }
}

function addDropped(stats: SynthesisStats, dropped: ReadonlyMap<string, number>): void {
  for (const [ch, n] of dropped) stats.dropped[ch] = (stats.dropped[ch] ?? 0) + n;
}

function makeRun(stats: SynthesisStats, gen: () => AsyncGenerator<SpeechBlock>): TtsRun {
  return { stats, [Symbol.asyncIterator]: gen };
}

function silenceSamples(seconds: number | undefined, sampleRate: number): number {
  const s = seconds ?? 0.2;
  if (!Number.isFinite(s) || s < 0 || s > 60) throw new UsageError(`sentenceSilence must be between 0 and 60 seconds (got ${seconds})`, { code: 'E_BAD_OPTION', details: { option: 'sentenceSilence' } });
  return Math.round(s * sampleRate);
}

/** The silence before an utterance: its own pause (SSML), else the sentence silence after the first block. */
function leadSamples(u: Utterance, yielded: number, gap: number, rate: number): number {
  if (u.pauseBefore !== undefined) return Math.round(u.pauseBefore * rate);
  return yielded > 0 ? gap : 0;
}

/** A phoneme given directly (SSML `<phoneme ph>`) that the voice has no symbol for: bad data, named. */
function unknownPhonemes(missing: ReadonlyMap<string, number>, voice: string): DataError {
  return new DataError(`<phoneme ph> uses symbols ${voice} does not have: ${describeDropped(missing)}`, {
    code: 'E_SSML_PHONEME',
    hint: 'Use the IPA symbols of the voice (Kokoro: model-io.md §3.2; Piper: the keys of phoneme_id_map in its .onnx.json).',
  });
}

function sentenceProgress(opts: Observer, done: number, total: number): void {
  opts.onProgress?.({ stage: 'synthesize', status: done === total ? 'done' : 'progress', done, total, unit: 'sentences' });
}

function shortText(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

/** A Kokoro model ready to synthesise. Exported for tests and library users with a session of their own. */
export function createKokoroModel(
  session: ModelSession,
  voices: VoiceStore,
  meta: { id: string; loadSeconds: number; espeakPath?: string | undefined; onLog?: Observer['onLog'] },
): TtsModel {
  const engine = new KokoroEngine(session, meta.onLog);
  const tables = new Map<string, Float32Array>();
  const defaultVoice = voices.names.includes('af_heart') ? 'af_heart' : voices.names[0]!;
  return {
    kind: 'kokoro',
    id: meta.id,
    sampleRate: KOKORO_SAMPLE_RATE,
    provider: session.provider,
    threads: session.threads,
    loadSeconds: meta.loadSeconds,
    listVoices: () => [...voices.names],
    dispose: () => session.dispose(),
    synthesize(text, opts = {}) {
      const stats = emptyStats(KOKORO_SAMPLE_RATE, text.length);
      return makeRun(stats, async function* () {
        checkText(text);
        const checkSpeed = (speed: number): void => {
          if (!(speed >= KOKORO_SPEED_RANGE[0] && speed <= KOKORO_SPEED_RANGE[1])) {
            throw new UsageError(`speed must be between ${KOKORO_SPEED_RANGE[0]} and ${KOKORO_SPEED_RANGE[1]} for Kokoro (got ${speed})`, { code: 'E_BAD_OPTION', details: { option: 'speed' } });
          }
        };
        checkSpeed(opts.speed ?? 1);
        const tableFor = async (voiceSpec: string): Promise<Float32Array> => {
          let table = tables.get(voiceSpec);
          if (!table) {
            table = await blendVoices(voices, parseVoiceSpec(voiceSpec));
            tables.set(voiceSpec, table);
          }
          return table;
        };
        await tableFor(opts.voice ?? defaultVoice);
        const gap = silenceSamples(opts.sentenceSilence, KOKORO_SAMPLE_RATE);
        const trim = opts.trim ?? true;
        // 5 ms fades at trimmed edges: long enough to avoid a click, far shorter than the ≥ 21 ms quiet margin trimming leaves.
        const fade = Math.round(0.005 * KOKORO_SAMPLE_RATE);
        const utterances = await utterancesOf(text, opts);
        stats.sentences = utterances.length;
        let yielded = 0;
        let done = 0;
        const phon: Phonemizer = (batch, lang) =>
          phonemizeSpans(batch, {
            voice: lang,
            punctuation: 'kokoro',
            ...(meta.espeakPath ? { espeakPath: meta.espeakPath } : {}),
            ...(opts.signal ? { signal: opts.signal } : {}),
            ...(opts.onLog ? { onLog: opts.onLog } : {}),
          });
        const langOf = (u: Utterance): string => u.lang ?? opts.lang ?? kokoroLanguage(u.voice ?? opts.voice ?? defaultVoice);
        for await (const [u, ps, given] of phonemizedUtterances(utterances, langOf, phon, stats)) {
          throwIfAborted(opts.signal);
          const voiceSpec = u.voice ?? opts.voice ?? defaultVoice;
          // SSML <prosody rate> scales the requested speed.
          const speed = (opts.speed ?? 1) * (u.speed ?? 1);
          checkSpeed(speed);
          const table = await tableFor(voiceSpec);
          for (const g of given) {
            const bad = tokenizeKokoro(g).dropped;
            for (const ch of [...bad.keys()]) if (/\s/.test(ch)) bad.delete(ch);
            if (bad.size > 0) throw unknownPhonemes(bad, 'Kokoro');
          }
          const { ids, units, dropped } = tokenizeKokoro(ps);
          addDropped(stats, dropped);
          if (dropped.size > 0) opts.onLog?.({ level: 'debug', message: `dropped symbols not in Kokoro's vocabulary: ${describeDropped(dropped)}` });
          done++;
          // Punctuation (ids 1–15) and spaces alone are not speech.
          if (ids.every((id) => id <= KOKORO_SPACE)) {
            stats.unspoken++;
            opts.onLog?.({ level: 'warn', message: `nothing speakable in sentence ${done}: "${shortText(text.slice(u.start, u.end))}"` });
            sentenceProgress(opts, done, utterances.length);
            continue;
          }
          const { pieces, ranges, hardCuts } = splitTokenIds(ids, { max: KOKORO_MAX_TOKENS, breakClasses: KOKORO_BREAK_CLASSES, space: KOKORO_SPACE });
          stats.hardCuts += hardCuts;
          if (pieces.length > 1) opts.onLog?.({ level: 'debug', message: `sentence ${done} has ${ids.length} phoneme tokens; split into ${pieces.length} calls of ≤ ${KOKORO_MAX_TOKENS}` });
          const lead = leadSamples(u, yielded, gap, KOKORO_SAMPLE_RATE);
          const audio: Float32Array[] = [];
          const phonemes: TimedPhoneme[] = [];
          let estimated = false;
          let pos = lead;
          for (let k = 0; k < pieces.length; k++) {
            const piece = pieces[k]!;
            throwIfAborted(opts.signal);
            const t0 = now();
            const out = await engine.infer(piece, selectStyle(table, piece.length), speed);
            stats.inferSec += now() - t0;
            stats.calls++;
            stats.tokens += piece.length;
            const [a, b] = trim ? nonSilentRange(out.wave) : [0, out.wave.length];
            const kept = out.wave.slice(a, b);
            if (trim) fadeEdges(kept, fade);
            const pieceUnits = units.slice(...ranges[k]!);
            if (out.tokenSamples) {
              // The pads own the silence at both ends; only the phonemes between them are kept.
              const pad = { phoneme: '', lo: NO_SOURCE, hi: NO_SOURCE };
              const placed = placeUnits([pad, ...pieceUnits, pad], out.tokenSamples, out.wave.length).slice(1, -1);
              phonemes.push(...shiftPhonemes(placed, pos - a, pos, pos + kept.length));
            } else {
              estimated = true;
              phonemes.push(...shiftPhonemes(placeUnits(pieceUnits, undefined, kept.length), pos, pos, pos + kept.length));
            }
            audio.push(kept);
            pos += kept.length;
          }
          const block = concat(audio, lead);
          stats.samples += block.length;
          yielded++;
          sentenceProgress(opts, done, utterances.length);
          yield { channels: [block], sampleRate: KOKORO_SAMPLE_RATE, timing: { start: u.start, end: u.end, estimated, phonemes, speechStart: lead } };
        }
        if (yielded === 0) throw nothingSpeakable(stats.dropped);
      });
    },
  };
}

/** A Piper voice ready to synthesise. Exported for tests and library users with a session of their own. */
export function createPiperModel(
  session: ModelSession,
  config: PiperConfig,
  meta: { id: string; loadSeconds: number; espeakPath?: string | undefined },
): TtsModel {
  const engine = new PiperEngine(session, config);
  const speakers = Object.keys(config.speakerIdMap);
  return {
    kind: 'piper',
    id: meta.id,
    sampleRate: config.sampleRate,
    provider: session.provider,
    threads: session.threads,
    loadSeconds: meta.loadSeconds,
    listVoices: () => (engine.hasSid ? (speakers.length ? speakers : Array.from({ length: config.numSpeakers }, (_, i) => String(i))) : []),
    dispose: () => session.dispose(),
    synthesize(text, opts = {}) {
      const rate = config.sampleRate;
      const stats = emptyStats(rate, text.length);
      return makeRun(stats, async function* () {
        checkText(text);
        const sid = resolveSpeaker(config, opts.speaker, engine.hasSid);
        if (opts.speed !== undefined && !(opts.speed > 0.1 && opts.speed <= 10)) throw new UsageError(`speed must be between 0.1 and 10 (got ${opts.speed})`, { code: 'E_BAD_OPTION', details: { option: 'speed' } });
        const scales = {
          noiseScale: opts.noiseScale ?? config.inference.noiseScale,
          lengthScale: opts.lengthScale ?? config.inference.lengthScale / (opts.speed ?? 1),
          noiseW: opts.noiseW ?? config.inference.noiseW,
        };
        for (const [k, v] of Object.entries(scales)) {
          if (!Number.isFinite(v) || v < 0) throw new UsageError(`${k} must be a number ≥ 0 (got ${v})`, { code: 'E_BAD_OPTION' });
        }
        const gap = silenceSamples(opts.sentenceSilence, rate);
        const utterances = await utterancesOf(text, opts);
        stats.sentences = utterances.length;
        const phon: Phonemizer = async (batch, lang) =>
          config.phonemeType === 'text'
            ? batch.map((s) => s.nfd())
            : phonemizeSpans(batch, {
                voice: lang,
                punctuation: 'piper',
                ...(meta.espeakPath ? { espeakPath: meta.espeakPath } : {}),
                ...(opts.signal ? { signal: opts.signal } : {}),
                ...(opts.onLog ? { onLog: opts.onLog } : {}),
              });
        const langOf = (u: Utterance): string => u.lang ?? opts.lang ?? config.espeakVoice;
        let yielded = 0;
        let done = 0;
        for await (const [u, ps, given] of phonemizedUtterances(utterances, langOf, phon, stats)) {
          throwIfAborted(opts.signal);
          for (const g of given) {
            const bad = piperIds(g.text.replace(/\s+/g, ''), config).missing;
            if (bad.size > 0) throw unknownPhonemes(bad, 'this Piper voice');
          }
          // An SSML <voice name> picks a speaker; <prosody rate> divides the length scale like --speed.
          const uSid = u.voice !== undefined ? resolveSpeaker(config, u.voice, engine.hasSid) : sid;
          const uScales = u.speed !== undefined && opts.lengthScale === undefined ? { ...scales, lengthScale: config.inference.lengthScale / (u.speed * (opts.speed ?? 1)) } : scales;
          const r = piperIds(ps, config);
          addDropped(stats, r.missing);
          if (r.missing.size > 0) opts.onLog?.({ level: 'debug', message: `skipped phonemes missing from the voice's phoneme_id_map: ${describeDropped(r.missing)}` });
          done++;
          const speakable = [...ps.text.normalize('NFD')].some((c) => c.trim() !== '' && config.idMap.has(c) && !/[.,:;!?]/.test(c));
          if (r.phonemes === 0 || !speakable) {
            stats.unspoken++;
            opts.onLog?.({ level: 'warn', message: `nothing speakable in sentence ${done}: "${shortText(text.slice(u.start, u.end))}"` });
            sentenceProgress(opts, done, utterances.length);
            continue;
          }
          const lead = leadSamples(u, yielded, gap, rate);
          const parts: Float32Array[] = [];
          const phonemes: TimedPhoneme[] = [];
          let estimated = false;
          let pos = lead;
          for (const phrase of piperPhraseSpans(ps, config.phonemeSilence)) {
            // Most voices list no phoneme: one phrase, the sentence itself, whose ids are already known.
            const p = phrase.phonemes === ps ? r : piperIds(phrase.phonemes, config);
            // A phrase with no known phoneme (only unknown ones) has nothing to say: skipped with its silence.
            if (p.phonemes === 0) continue;
            const t0 = now();
            const out = await engine.infer(p.ids, uScales, uSid);
            const wave = peakNormalize(out.wave);
            stats.inferSec += now() - t0;
            stats.calls++;
            stats.tokens += p.phonemes;
            let unitSamples: number[] | undefined;
            if (out.idSamples) {
              // A phoneme owns its ids and the pad after it (piper1-gpl voice.py's alignment grouping).
              let at = 0;
              unitSamples = p.unitIds.map((n) => {
                const sum = out.idSamples!.slice(at, at + n).reduce((x, y) => x + y, 0);
                at += n;
                return sum;
              });
            } else estimated = true;
            // `^` and `$` own the lead-in and tail; only the phonemes between them are listed.
            phonemes.push(...shiftPhonemes(placeUnits(p.units, unitSamples, wave.length).slice(1, -1), pos, pos, pos + wave.length));
            parts.push(wave);
            pos += wave.length;
            if (phrase.silenceSec > 0) {
              const sil = Math.round(phrase.silenceSec * rate);
              parts.push(new Float32Array(sil));
              pos += sil;
            }
          }
          const block = concat(parts, lead);
          stats.samples += block.length;
          yielded++;
          sentenceProgress(opts, done, utterances.length);
          yield { channels: [block], sampleRate: rate, timing: { start: u.start, end: u.end, estimated, phonemes, speechStart: lead } };
        }
        if (yielded === 0) throw nothingSpeakable(stats.dropped);
      });
    },
  };
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
      hint: 'Use --model kokoro, piper:<voice> (e.g. piper:en_US-lessac-medium) or a path to an .onnx file; `stemkit models list` shows the TTS models.',
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
  let device = opts.device ?? opts.config.device;
  if (r.kind === 'piper' && device === 'auto') {
    device = 'cpu';
    opts.onLog?.({ level: 'debug', message: 'Piper runs on the CPU with device auto (it is slower on CUDA); pass device cuda to force it', option: 'device' });
  }
  // Validate cheap inputs before the (slow) session creation.
  const piperConfig = r.kind === 'piper' ? await loadPiperConfig(r.model, r.config) : undefined;
  const voices = r.kind === 'kokoro' ? await openVoiceStore(requireVoices(r)) : undefined;
  // English front-end start-up (~1 s of WASM instantiation) overlaps the session creation; it counts as load time.
  const english = r.kind !== 'piper' || (piperConfig?.phonemeType === 'espeak' && isPhonemizerVoice(piperConfig.espeakVoice));
  const warm = english ? warmUpPhonemizer().catch(() => undefined) : undefined;
  const session = await createSession(r.model, { device, threads: opts.threads ?? opts.config.cpuThreads, gpu: opts.config.gpu });
  await warm;
  try {
    let kind = r.kind;
    if (kind === 'auto') {
      const names = session.inputs.map((i) => i.name);
      if (names.includes('input') && names.includes('scales')) {
        // A Piper model without its config: loadPiperConfig throws the "missing .onnx.json" error.
        await loadPiperConfig(r.model, r.config);
      }
      if (names.includes('style')) requireVoices(r);
      throw new DataError(`${r.model} is neither a Kokoro nor a Piper model (inputs: ${names.join(', ')})`, { code: 'E_MODEL_CONTRACT', hint: 'Use a Kokoro v1.0 ONNX export with --voices, or a Piper voice with its .onnx.json.' });
    }
    const meta = { id: r.id, loadSeconds: now() - t0, espeakPath: opts.espeakPath };
    if (kind === 'kokoro') return createKokoroModel(session, voices!, { ...meta, ...(opts.onLog ? { onLog: opts.onLog } : {}) });
    return createPiperModel(session, piperConfig!, meta);
  } catch (e) {
    await session.dispose();
    throw e;
  }
}

function requireVoices(r: ResolvedSpec): string {
  if (r.voices === undefined) {
    throw new UsageError(`the Kokoro model ${r.model} needs voices`, {
      code: 'E_VOICES_REQUIRED',
      hint: 'Pass --voices <voices-v1.0.bin | file.npz | folder of .bin files>.',
    });
  }
  return r.voices;
}
