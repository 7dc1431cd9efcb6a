/**
 * When each phoneme, word and sentence is spoken.
 *
 * Exact where the model says how many samples each input token produced:
 * - Kokoro exports with a `duration` output (kokoro-onnx:scripts/export.py `output_names=["waveform",
 *   "duration"]`; hexgrad/kokoro:kokoro/model.py `forward_with_tokens` returns the rounded per-token
 *   `pred_dur`, already divided by speed): one int64 per input token, pads included, each unit 600 samples
 *   at 24 kHz (model-io.md §3.1).
 * - Piper voices patched for alignments (OHF-Voice/piper1-gpl:src/piper/patch_voice_with_alignment.py marks
 *   the duration predictor's `w_ceil` Ceil tensor as a second graph output; src/piper/voice.py reads it as
 *   `result[1]`, one value per phoneme id, times `hop_length` (config key, default 256:
 *   src/piper/config.py) = audio samples per id; a phoneme owns its ids plus the pad after it, `^` and `$`
 *   are units of their own).
 * Otherwise estimated: the call's real audio length shared equally among its phonemes, and marked
 * `estimated: true`.
 */

/** One phoneme (Kokoro: token; Piper: a phoneme's ids with the pad after it) and the input it stands for (spans.ts; lo = -1: none). */
export interface SourceUnit {
  phoneme: string;
  lo: number;
  hi: number;
}

/** A phoneme placed in the audio: [start, end) in samples of the block it belongs to. */
export interface TimedPhoneme extends SourceUnit {
  start: number;
  end: number;
}

/**
 * Places units in a call's audio of `length` samples. With `samples` (one count per unit) the boundaries
 * are the running sums, scaled to `length` when the model's audio is not exactly their total; without,
 * every unit gets an equal share.
 */
export function placeUnits(units: readonly SourceUnit[], samples: readonly number[] | undefined, length: number): TimedPhoneme[] {
  const n = units.length;
  const out: TimedPhoneme[] = [];
  if (n === 0) return out;
  const total = samples ? samples.reduce((a, b) => a + b, 0) : n;
  const scale = total > 0 ? length / total : 0;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const start = Math.round(acc * scale);
    acc += samples ? samples[i]! : 1;
    out.push({ ...units[i]!, start, end: Math.round(acc * scale) });
  }
  return out;
}

/** Moves phonemes by `offset` samples and clamps them to [min, max) (trimmed edges: a cut-off phoneme becomes empty). */
export function shiftPhonemes(ps: readonly TimedPhoneme[], offset: number, min: number, max: number): TimedPhoneme[] {
  const c = (x: number): number => Math.min(max, Math.max(min, x + offset));
  return ps.map((p) => ({ ...p, start: c(p.start), end: c(p.end) }));
}

/** A sentence's timing inside the block it was yielded in (samples at the model rate). */
export interface BlockTiming {
  /** The sentence's offsets in the input text. */
  start: number;
  end: number;
  /** True when the durations were shared out rather than reported by the model. */
  estimated: boolean;
  phonemes: TimedPhoneme[];
  /** Where the sentence's own audio starts in the block (after the silence before it). */
  speechStart: number;
}

export interface WordSpan {
  /** Input offsets the word stands for. */
  lo: number;
  hi: number;
  /** Phoneme index range [first, last]. */
  first: number;
  last: number;
}

/**
 * Groups phonemes into words: consecutive phonemes standing for overlapping input ranges form one word,
 * gaps and punctuation (standing for nothing) between them do not split it, so "$5.50", spoken as five
 * words, is one word of the input.
 */
export function groupWords(ps: readonly SourceUnit[]): WordSpan[] {
  const words: WordSpan[] = [];
  let cur: WordSpan | undefined;
  ps.forEach((p, i) => {
    if (p.lo < 0) return;
    if (cur && p.lo < cur.hi && p.hi > cur.lo) {
      cur.lo = Math.min(cur.lo, p.lo);
      cur.hi = Math.max(cur.hi, p.hi);
      cur.last = i;
      return;
    }
    cur = { lo: p.lo, hi: p.hi, first: i, last: i };
    words.push(cur);
  });
  return words;
}

/** Timestamps of one synthesis, as written by `--timestamps` (times in seconds of the file written). */
export interface Timestamps {
  /** Format version of this document. */
  version: 1;
  sampleRate: number;
  durationSec: number;
  /** True when any time in the document is estimated. */
  estimated: boolean;
  sentences: SentenceTimestamps[];
}

/** A stretch of the input and when it is spoken. */
export interface TimedText {
  /** The input text (a word after normalisation may be spoken as several: "$5.50"). */
  text: string;
  /** Offsets in the input text (UTF-16 code units, as JavaScript string indices). */
  start: number;
  end: number;
  startSec: number;
  endSec: number;
  estimated: boolean;
}

export interface SentenceTimestamps extends TimedText {
  words: WordTimestamps[];
  phonemes: PhonemeTimestamps[];
}

export type WordTimestamps = TimedText;

export interface PhonemeTimestamps {
  phoneme: string;
  startSec: number;
  endSec: number;
  /** Index into the sentence's words, or null for a pause, gap or punctuation. */
  word: number | null;
  estimated: boolean;
}

/** Seconds, rounded to 0.1 ms. */
export function sec(samples: number, rate: number): number {
  return Math.round((samples / rate) * 1e4) / 1e4;
}

/** Builds one sentence's timestamps; `offset` is the block's first sample in the output, `rate` the model rate. */
export function sentenceTimestamps(text: string, t: BlockTiming, offset: number, rate: number): SentenceTimestamps {
  const words = groupWords(t.phonemes);
  const wordOf = new Map<number, number>();
  words.forEach((w, k) => {
    for (let i = w.first; i <= w.last; i++) if (t.phonemes[i]!.lo >= 0) wordOf.set(i, k);
  });
  const speech = t.phonemes.filter((p) => p.end > p.start);
  const first = speech.length ? speech[0]!.start : t.speechStart;
  const last = speech.length ? speech[speech.length - 1]!.end : t.speechStart;
  return {
    text: text.slice(t.start, t.end),
    start: t.start,
    end: t.end,
    startSec: sec(offset + first, rate),
    endSec: sec(offset + last, rate),
    estimated: t.estimated,
    words: words.map((w) => ({
      text: text.slice(w.lo, w.hi),
      start: w.lo,
      end: w.hi,
      startSec: sec(offset + t.phonemes[w.first]!.start, rate),
      endSec: sec(offset + t.phonemes[w.last]!.end, rate),
      estimated: t.estimated,
    })),
    phonemes: t.phonemes.map((p, i) => ({ phoneme: p.phoneme, startSec: sec(offset + p.start, rate), endSec: sec(offset + p.end, rate), word: wordOf.get(i) ?? null, estimated: t.estimated })),
  };
}
