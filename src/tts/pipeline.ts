/**
 * The TTS pipeline every engine shares: text (plain or SSML) → utterances → sentences → phonemes (the English
 * WASM front end or espeak-ng), with the statistics, silences, dropped-symbol accounting and progress of a run.
 * The engines (kokoro-model.ts, piper-model.ts) turn its phonemes into audio.
 */
import { DataError, UsageError } from '../errors.js';
import type { Observer } from '../progress.js';
import { NO_SOURCE, SpanText } from './spans.js';
import { splitSentenceSpans } from './text-split.js';
import { describeDropped } from './vocab.js';
import type { SpeechBlock, SynthesisStats, SynthesizeOptions, TtsRun } from './synthesize.js';

export function emptyStats(sampleRate: number, characters: number): SynthesisStats {
  return { characters, sentences: 0, calls: 0, tokens: 0, unspoken: 0, dropped: {}, hardCuts: 0, samples: 0, sampleRate, phonemizeSec: 0, inferSec: 0 };
}

export function concat(parts: Float32Array[], lead: number): Float32Array {
  const total = lead + parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(total);
  let off = lead;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function checkText(text: string): void {
  if (text.trim() === '') {
    throw new DataError('the text is empty', { code: 'E_EMPTY_TEXT', hint: 'Pass the text as an argument, with -f <file>, or on stdin with `-`.' });
  }
}

export function nothingSpeakable(dropped: Record<string, number>): DataError {
  const what = Object.keys(dropped).length ? `; dropped: ${describeDropped(new Map(Object.entries(dropped)))}` : '';
  return new DataError(`the text contains nothing this voice can speak${what}`, {
    code: 'E_NO_PHONEMES',
    hint: 'Check the text encoding and the language (lang); the voice supports the symbols of its language only.',
    details: { option: 'lang' },
  });
}

export const now = (): number => performance.now() / 1000;

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

export async function utterancesOf(text: string, opts: SynthesizeOptions): Promise<Utterance[]> {
  if (!(opts.ssml ?? looksLikeSsml(text))) return plainUtterances(text);
  const { ssmlUtterances } = await import('./ssml.js');
  return ssmlUtterances(text, opts.onLog ? { onLog: opts.onLog } : {});
}

export type Phonemizer = (texts: SpanText[], lang: string) => Promise<SpanText[]>;

/** Phonemises utterances in look-ahead batches: the first alone (fast first audio), then up to 16. */
export async function* phonemizedUtterances(
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

export function addDropped(stats: SynthesisStats, dropped: ReadonlyMap<string, number>): void {
  for (const [ch, n] of dropped) stats.dropped[ch] = (stats.dropped[ch] ?? 0) + n;
}

export function makeRun(stats: SynthesisStats, gen: () => AsyncGenerator<SpeechBlock>): TtsRun {
  return { stats, [Symbol.asyncIterator]: gen };
}

export function silenceSamples(seconds: number | undefined, sampleRate: number): number {
  const s = seconds ?? 0.2;
  if (!Number.isFinite(s) || s < 0 || s > 60) throw new UsageError(`sentenceSilence must be between 0 and 60 seconds (got ${seconds})`, { code: 'E_BAD_OPTION', details: { option: 'sentenceSilence' } });
  return Math.round(s * sampleRate);
}

/** The silence before an utterance: its own pause (SSML), else the sentence silence after the first block. */
export function leadSamples(u: Utterance, yielded: number, gap: number, rate: number): number {
  if (u.pauseBefore !== undefined) return Math.round(u.pauseBefore * rate);
  return yielded > 0 ? gap : 0;
}

/** A phoneme given directly (SSML `<phoneme ph>`) that the voice has no symbol for: bad data, named. */
export function unknownPhonemes(missing: ReadonlyMap<string, number>, voice: string): DataError {
  return new DataError(`<phoneme ph> uses symbols ${voice} does not have: ${describeDropped(missing)}`, {
    code: 'E_SSML_PHONEME',
    hint: 'Use the IPA symbols of the voice (Kokoro: model-io.md §3.2; Piper: the keys of phoneme_id_map in its .onnx.json).',
  });
}

export function sentenceProgress(opts: Observer, done: number, total: number): void {
  opts.onProgress?.({ stage: 'synthesize', status: done === total ? 'done' : 'progress', done, total, unit: 'sentences' });
}

export function shortText(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}
