/**
 * Splitting that never drops text (landscape.md: silently dropped sentences and truncation at 510
 * tokens are the most common complaints about Kokoro tools).
 *
 * 1. `splitSentences`: text → sentences at `.!?…` (and CJK terminators) followed by a space, and at
 *    line breaks. Every non-space character of the input ends up in exactly one sentence.
 * 2. `splitTokenIds`: a sentence's token ids → pieces of at most `max` ids, cut at the last boundary
 *    that fits, strongest class first (`!.?…`, then `:;`, then `,—`: hexgrad KPipeline's
 *    "waterfall", model-io.md §3.4), then at the last word gap, and only for a single word longer than
 *    the limit in the middle of it. Pieces keep their punctuation; only the spaces at a cut are removed.
 */

const TERMINATORS = '.!?…。！？';
const CLOSERS = '"”’\')]}»」』';
/** Words whose full stop does not end a sentence (checked case-insensitively, without the stop). */
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'prof', 'st', 'jr', 'sr', 'vs', 'etc', 'e.g', 'i.e', 'no', 'inc', 'ltd', 'co', 'mt', 'fig', 'approx', 'dept', 'est', 'gen', 'gov', 'sgt', 'capt', 'col', 'lt', 'rev', 'ave', 'blvd', 'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov', 'dec',
]);

function lastWord(before: string): string {
  const m = /([\p{L}.]+)$/u.exec(before);
  return m ? m[1]!.replace(/\.$/, '') : '';
}

/** Whether a single full stop after `before`, followed by `nextWord`, is not a sentence end. */
function isNonTerminalStop(before: string, nextWord: string | undefined): boolean {
  if (nextWord === undefined) return false;
  const word = lastWord(before);
  // Titles before a name, and initials ("J. R. R. Tolkien").
  if (/^(?:Mr|Mrs|Ms|Dr|Prof|St)$/.test(word) || /^\p{Lu}$/u.test(word)) return true;
  // Dotted initialisms ("U.S.A. is") and other abbreviations only when the text goes on in lower case ("e.g. this", "etc. and").
  if (/^(?:\p{L}\.)+\p{L}$/u.test(word) && !/[\p{Lu}\d"“]/u.test(nextWord)) return true;
  return ABBREVIATIONS.has(word.toLowerCase()) && !/[\p{Lu}\d"“]/u.test(nextWord);
}

/**
 * Splits text into sentences. Whitespace between sentences is dropped; nothing else is.
 * A terminator run ends a sentence when followed by whitespace (or the end), unless the word before it
 * is an abbreviation or an initial and the next word starts in lower case or is a name after a title.
 */
export function splitSentences(text: string): string[] {
  return splitSentenceSpans(text).map((s) => s.text);
}

/** A sentence and where it lies in the text: `text === input.slice(start, end)`. */
export interface SentenceSpan {
  text: string;
  start: number;
  end: number;
}

/** splitSentences with each sentence's offsets in the input (for timestamps that point back at the text). */
export function splitSentenceSpans(text: string): SentenceSpan[] {
  const out: SentenceSpan[] = [];
  const push = (base: number, line: string, a: number, b: number): void => {
    const raw = line.slice(a, b);
    const s = raw.trim();
    if (s === '') return;
    const start = base + a + (raw.length - raw.trimStart().length);
    out.push({ text: s, start, end: start + s.length });
  };
  const lineBreak = /\r?\n|\r|\u2028|\u2029/g;
  let base = 0;
  const lines: Array<[number, string]> = [];
  for (const m of text.matchAll(lineBreak)) {
    lines.push([base, text.slice(base, m.index)]);
    base = m.index + m[0].length;
  }
  lines.push([base, text.slice(base)]);
  for (const [lineStart, line] of lines) {
    let start = 0;
    let i = 0;
    const n = line.length;
    while (i < n) {
      const ch = line[i]!;
      if (TERMINATORS.includes(ch)) {
        let j = i;
        while (j < n && TERMINATORS.includes(line[j]!)) j++;
        while (j < n && CLOSERS.includes(line[j]!)) j++;
        const atEnd = j >= n;
        const cjk = '。！？'.includes(line[j - 1]!) || '。！？'.includes(ch);
        if (atEnd || cjk || /\s/.test(line[j]!)) {
          const before = line.slice(start, i);
          const nextWord = /^\s*(\S)/.exec(line.slice(j))?.[1];
          const single = ch === '.' && j === i + 1;
          if (!(single && isNonTerminalStop(before, nextWord))) {
            push(lineStart, line, start, j);
            start = j;
          }
        }
        i = j;
        continue;
      }
      i++;
    }
    push(lineStart, line, start, n);
  }
  return out;
}

export interface TokenSplitOptions {
  /** Most ids per piece. */
  max: number;
  /** Boundary id classes, strongest first; a piece may end just after one of them. */
  breakClasses: readonly ReadonlySet<number>[];
  /** The word-gap id: a piece may end just before it (the gap itself is dropped). */
  space: number;
}

export interface TokenSplit {
  pieces: number[][];
  /** Where each piece lies in the input ids: pieces[k] = ids.slice(...ranges[k]). */
  ranges: Array<[number, number]>;
  /** Pieces that had to be cut inside a word (a single word longer than `max`). */
  hardCuts: number;
}

/** Splits one sentence's ids into pieces of at most `opts.max` ids (see the module comment). */
export function splitTokenIds(ids: readonly number[], opts: TokenSplitOptions): TokenSplit {
  const { max, space } = opts;
  const pieces: number[][] = [];
  const ranges: Array<[number, number]> = [];
  let hardCuts = 0;
  let start = 0;
  const skipSpaces = (): void => {
    while (start < ids.length && ids[start] === space) start++;
  };
  skipSpaces();
  let end = ids.length;
  while (end > start && ids[end - 1] === space) end--;
  while (end - start > max) {
    let cut = -1;
    let next = -1;
    for (const cls of opts.breakClasses) {
      // The last boundary whose piece (boundary included) fits.
      for (let j = start + max - 1; j > start; j--) {
        if (cls.has(ids[j]!)) {
          cut = j + 1;
          next = j + 1;
          break;
        }
      }
      if (cut >= 0) break;
    }
    if (cut < 0) {
      for (let j = start + max; j > start; j--) {
        if (ids[j] === space) {
          cut = j;
          next = j + 1;
          break;
        }
      }
    }
    if (cut < 0) {
      cut = start + max;
      next = cut;
      hardCuts++;
    }
    let pieceEnd = cut;
    while (pieceEnd > start && ids[pieceEnd - 1] === space) pieceEnd--;
    pieces.push(ids.slice(start, pieceEnd));
    ranges.push([start, pieceEnd]);
    start = next;
    skipSpaces();
  }
  if (end > start) {
    pieces.push(ids.slice(start, end));
    ranges.push([start, end]);
  }
  return { pieces, ranges, hardCuts };
}
