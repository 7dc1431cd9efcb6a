/**
 * Kokoro's phoneme vocabulary (model-io.md §3.2): one Unicode code point per token, 114 entries,
 * ids up to 177. Id 0 is the pad placed at both ends of every call; it is not a phoneme.
 */
import { SpanText } from './spans.js';
import type { SourceUnit } from './timing.js';

/** Phoneme character → token id, exactly the table of model-io.md §3.2 (kokoro-onnx config.json `vocab`). */
export const KOKORO_VOCAB: ReadonlyMap<string, number> = new Map<string, number>([
  [';', 1], [':', 2], [',', 3], ['.', 4], ['!', 5], ['?', 6], ['—', 9], ['…', 10], ['"', 11], ['(', 12], [')', 13],
  ['\u201c', 14], ['\u201d', 15], [' ', 16], ['\u0303', 17], ['ʣ', 18], ['ʥ', 19], ['ʦ', 20], ['ʨ', 21], ['ᵝ', 22], ['ꭧ', 23],
  ['A', 24], ['I', 25], ['O', 31], ['Q', 33], ['S', 35], ['T', 36], ['W', 39], ['Y', 41], ['ᵊ', 42],
  ['a', 43], ['b', 44], ['c', 45], ['d', 46], ['e', 47], ['f', 48], ['h', 50], ['i', 51], ['j', 52], ['k', 53], ['l', 54], ['m', 55],
  ['n', 56], ['o', 57], ['p', 58], ['q', 59], ['r', 60], ['s', 61], ['t', 62], ['u', 63], ['v', 64], ['w', 65], ['x', 66], ['y', 67], ['z', 68],
  ['ɑ', 69], ['ɐ', 70], ['ɒ', 71], ['æ', 72], ['β', 75], ['ɔ', 76], ['ɕ', 77], ['ç', 78],
  ['ɖ', 80], ['ð', 81], ['ʤ', 82], ['ə', 83], ['ɚ', 85], ['ɛ', 86], ['ɜ', 87], ['ɟ', 90], ['ɡ', 92], ['ɥ', 99], ['ɨ', 101], ['ɪ', 102],
  ['ʝ', 103], ['ɯ', 110], ['ɰ', 111], ['ŋ', 112], ['ɳ', 113], ['ɲ', 114], ['ɴ', 115],
  ['ø', 116], ['ɸ', 118], ['θ', 119], ['œ', 120], ['ɹ', 123], ['ɾ', 125], ['ɻ', 126], ['ʁ', 128], ['ɽ', 129], ['ʂ', 130], ['ʃ', 131],
  ['ʈ', 132], ['ʧ', 133], ['ʊ', 135], ['ʋ', 136], ['ʌ', 138], ['ɣ', 139], ['ɤ', 140],
  ['χ', 142], ['ʎ', 143], ['ʒ', 147], ['ʔ', 148], ['ˈ', 156], ['ˌ', 157], ['ː', 158], ['ʰ', 162], ['ʲ', 164],
  ['↓', 169], ['→', 171], ['↗', 172], ['↘', 173], ['ᵻ', 177],
]);

/** The pad token placed at both ends of each Kokoro call. */
export const KOKORO_PAD = 0;
/** Phoneme tokens per Kokoro call, pads excluded (model-io.md §3.1: MAX_PHONEME_LENGTH = 510). */
export const KOKORO_MAX_TOKENS = 510;
/** Rows in a Kokoro voice table (one style vector per phoneme-token count). */
export const KOKORO_STYLE_ROWS = 510;
/** Width of one style vector. */
export const KOKORO_STYLE_DIM = 256;
/** Output sample rate of every Kokoro model (model-io.md §3.1). */
export const KOKORO_SAMPLE_RATE = 24_000;

/** Token ids of the split classes of model-io.md §3.4, strongest first: `!.?…`, then `:;`, then `,—`. */
export const KOKORO_BREAK_CLASSES: readonly ReadonlySet<number>[] = [new Set([5, 4, 6, 10]), new Set([2, 1]), new Set([3, 9])];
/** The space token: the word boundary used when no punctuation boundary fits. */
export const KOKORO_SPACE = 16;

export interface Tokenized {
  ids: number[];
  /** Per id: the phoneme and the input it stands for (spans.ts). */
  units: SourceUnit[];
  /** Code points not in the vocabulary, dropped, with how often each occurred. */
  dropped: Map<string, number>;
}

/** Maps a phoneme string to Kokoro ids; unknown code points are dropped and counted (never silently: callers log them). */
export function tokenizeKokoro(phonemes: string | SpanText): Tokenized {
  const ps = typeof phonemes === 'string' ? SpanText.source(phonemes) : phonemes;
  const ids: number[] = [];
  const units: SourceUnit[] = [];
  const dropped = new Map<string, number>();
  for (const [ch, i] of ps.codePoints()) {
    const id = KOKORO_VOCAB.get(ch);
    if (id === undefined) dropped.set(ch, (dropped.get(ch) ?? 0) + 1);
    else {
      ids.push(id);
      units.push({ phoneme: ch, lo: ps.lo[i]!, hi: ps.hi[i]! });
    }
  }
  return { ids, units, dropped };
}

/** Human-readable list of dropped symbols for a debug log, e.g. `"ʢ" ×2, U+0361 ×1`. */
export function describeDropped(dropped: ReadonlyMap<string, number>): string {
  return [...dropped]
    .map(([ch, n]) => {
      const cp = ch.codePointAt(0) ?? 0;
      const printable = /\p{L}|\p{P}|\p{S}/u.test(ch) ? `"${ch}"` : `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
      return `${printable} ×${n}`;
    })
    .join(', ');
}
