/**
 * Basic English text normalisation before phonemisation, covering what kokoro.js's front end covers
 * (model-io.md §3.3 step 1): quotes, titles and common abbreviations, money, times, years, digit
 * grouping, decimals and numeric ranges. espeak-ng reads plain numbers itself; these rules only fix the
 * cases it reads badly ("$5.50" → "dollar five point five zero", "1990s" → "nineteen hundred ninety z")
 * and remove the full stops of abbreviations, which would otherwise end a sentence.
 */

import { SpanText } from './spans.js';

const ONES_UNIT: Record<string, [string, string]> = {
  $: ['dollar', 'dollars'],
  '£': ['pound', 'pounds'],
  '€': ['euro', 'euros'],
};
const CENTS_UNIT: Record<string, [string, string]> = {
  $: ['cent', 'cents'],
  '£': ['penny', 'pence'],
  '€': ['cent', 'cents'],
};

function plural(n: number, forms: [string, string]): string {
  return n === 1 ? forms[0] : forms[1];
}

function money(symbol: string, whole: string, fraction: string | undefined, scale: string | undefined): string {
  const units = ONES_UNIT[symbol]!;
  const cents = CENTS_UNIT[symbol]!;
  const w = Number(whole);
  if (scale) return `${whole}${fraction ? `.${fraction}` : ''} ${scale} ${units[1]}`;
  if (fraction === undefined || /^0+$/.test(fraction)) return `${whole} ${plural(w, units)}`;
  const c = Number(fraction.length === 1 ? `${fraction}0` : fraction.slice(0, 2));
  if (w === 0) return `${c} ${plural(c, cents)}`;
  return `${whole} ${plural(w, units)} and ${c} ${plural(c, cents)}`;
}

function time(h: string, m: string, suffix: string | undefined): string {
  const tail = suffix ? ` ${suffix.replace(/\./g, '').toUpperCase().split('').join(' ')}` : '';
  if (m === '00') return suffix ? `${Number(h)}${tail}` : `${Number(h)} o'clock`;
  if (m.startsWith('0')) return `${Number(h)} oh ${m[1]}${tail}`;
  return `${Number(h)} ${m}${tail}`;
}

function year(y: string, s: string): string {
  const n = Number(y);
  // 2000–2009 read naturally as "two thousand (and) n"; other years of the form ABCD split into AB CD.
  if (n >= 2000 && n <= 2009) return `${y}${s}`;
  const hi = y.slice(0, 2);
  const lo = y.slice(2);
  if (lo === '00') return `${hi} hundred${s ? 's' : ''}`;
  if (lo.startsWith('0')) return `${hi} oh ${lo[1]}${s}`;
  return `${hi} ${lo}${s}`;
}

/**
 * Normalises English text for espeak-ng. Pure and idempotent on its own output for the covered patterns.
 * Every word of the input is kept: rules only rewrite, never delete content.
 */
export function normalizeEnglish(text: string): string {
  return normalizeEnglishSpans(SpanText.source(text)).text;
}

/** normalizeEnglish keeping sources: a rewritten amount, time or title stands for the input it replaced (spans.ts). */
export function normalizeEnglishSpans(input: SpanText): SpanText {
  let t = input
    .replace(/[\u2018\u2019\u201b\u2032]/g, "'")
    .replace(/[«]/g, '\u201c')
    .replace(/[»]/g, '\u201d')
    .replace(/[\t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]/g, ' ');

  // Titles before a name; the full stop would otherwise end the sentence.
  t = t
    .replace(/\bDr\.(?=\s+[A-Z])/g, 'Doctor')
    .replace(/\bMrs\.(?=\s)/g, 'Missus')
    .replace(/\bMr\.(?=\s)/g, 'Mister')
    .replace(/\bMs\.(?=\s)/g, 'Miz')
    .replace(/\bProf\.(?=\s+[A-Z])/g, 'Professor')
    .replace(/\bSt\.(?=\s+[A-Z])/g, 'Saint')
    .replace(/(?<=[A-Z][a-z]+\s)St\.(?=\s|$)/g, 'Street')
    .replace(/(?<=[A-Z][a-z]+\s)Ave\.(?=\s|$)/g, 'Avenue')
    .replace(/\bJr\.(?=\s*(?:,|$|\s+[a-z]))/g, 'Junior')
    .replace(/\bSr\.(?=\s*(?:,|$|\s+[a-z]))/g, 'Senior')
    .replace(/\bvs\.(?=\s)/gi, 'versus')
    .replace(/\be\.g\.(?=\s|,)/gi, 'for example')
    .replace(/\bi\.e\.(?=\s|,)/gi, 'that is')
    .replace(/\betc\.(?=\s+[a-z,;:])/g, 'etcetera')
    .replace(/\bNo\.(?=\s*\d)/g, 'number');

  // Money before digit grouping so "$1,200.50" stays one amount.
  t = t.replace(/([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:\s?(hundred|thousand|million|billion|trillion)\b)?/g, (_m, sym: string, whole: string, frac: string | undefined, scale: string | undefined) =>
    money(sym, whole.replace(/,/g, ''), frac, scale),
  );
  // Digit grouping: 1,234,567 → 1234567 (espeak reads the plain number well).
  t = t.replace(/\b\d{1,3}(?:,\d{3})+\b/g, (m) => m.replace(/,/g, ''));
  // Times: 10:30, 7:05 pm.
  t = t.replace(/\b([01]?\d|2[0-3]):([0-5]\d)(?!:\d)(?:\s?([ap]\.?m\.?)(?=\W|$))?/gi, (_m, h: string, m: string, suf: string | undefined) => time(h, m, suf));
  // Years and decades: 1990 → 19 90, 1990s → 19 90s (not amounts with a leading $ — handled above).
  t = t.replace(/(?<![\d.,])\b(1[1-9]\d\d|20\d\d)(s?)\b(?![.,]\d)/g, (_m, y: string, s: string) => year(y, s));
  // Percentages and numeric ranges.
  t = t.replace(/(\d)\s?%/g, (_m, d: string) => `${d} percent`);
  t = t.replace(/(?<=\d)\s?[-–](?=\s?\d)/g, ' to ');
  // Dotted initialisms (U.S.A.) lose their full stops so they neither end a sentence nor get dropped.
  // A final full stop is kept where the initialism ends the text or a line (it then ends the sentence too).
  t = t.replace(/\b(?:[A-Za-z]\.){2,}(?=(\s|$|[,;:!?]))/g, (m: string, _next: string, offset: number, whole: string) => {
    const letters = m.slice(0, -1).replace(/\./g, ' ');
    const rest = whole.slice(offset + m.length);
    return /^\s*(?:\n|$)/.test(rest) ? `${letters}.` : letters;
  });
  return t;
}
