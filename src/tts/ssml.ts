/**
 * The SSML subset stemkit speaks, turned into utterances (synthesize.ts) whose text still points at the
 * SSML source, so timestamps stay exact and words map back to the input:
 *
 * | element | effect |
 * |---|---|
 * | `<speak>` | the root (required) |
 * | `<break time="500ms"/>`, `<break strength="…"/>` | a pause; replaces the sentence silence there |
 * | `<prosody rate="slow">` | speed: x-slow 0.6, slow 0.8, medium 1, fast 1.25, x-fast 1.6, `N%`, `+N%`/`-N%`, or a factor |
 * | `<say-as interpret-as="…">` | characters / spell-out, cardinal, ordinal, digits, date, time, telephone |
 * | `<sub alias="…">` | speaks the alias; the timestamps word is the element's text |
 * | `<phoneme alphabet="ipa" ph="…">` | speaks the IPA given (checked against the voice's symbols) |
 * | `<p>`, `<s>` | paragraph / sentence boundaries |
 * | `<voice name="…">` | Kokoro voice or blend, Piper speaker |
 * | `<lang xml:lang="…">` | the espeak-ng language of the text inside |
 *
 * Unknown elements are reported by name once (a warning) and their text is spoken. XML that is not
 * well-formed, or an attribute value stemkit cannot use, is bad data (65) naming the line and column.
 * saxes (a maintained, dependency-light streaming XML parser) does the XML: it reports exact positions and
 * every well-formedness error, which a hand-written tag scanner would not.
 */
import { SaxesParser, type SaxesTag } from 'saxes';
import { DataError } from '../errors.js';
import type { LogCallback } from '../progress.js';
import { NO_SOURCE, SpanText } from './spans.js';
import type { Utterance, UtterancePart } from './synthesize.js';
import { splitSentenceSpans } from './text-split.js';

interface Context {
  voice?: string;
  speed: number;
  lang?: string;
}

const RATES: Record<string, number> = { 'x-slow': 0.6, slow: 0.8, medium: 1, default: 1, fast: 1.25, 'x-fast': 1.6 };
/** Pause lengths of `<break strength>` (seconds): the usual reading of the SSML 1.1 scale. */
const STRENGTHS: Record<string, number> = { none: 0, 'x-weak': 0.1, weak: 0.2, medium: 0.4, strong: 0.7, 'x-strong': 1.2 };
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** English ordinal suffix, so espeak-ng reads "3rd" as "third". */
function ordinal(n: string): string {
  const v = Number(n);
  const t = v % 100;
  const suffix = t >= 11 && t <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][v % 10] ?? 'th';
  return `${v}${suffix}`;
}

/** What `<say-as>` makes of its text, or an error message. */
function sayAs(kind: string, format: string | undefined, text: string): string | { error: string } {
  const t = text.trim();
  switch (kind) {
    case 'characters':
    case 'spell-out':
      return [...t.replace(/\s+/g, '')].join(' ');
    case 'cardinal':
    case 'number': {
      const n = t.replace(/[,\s]/g, '');
      return /^-?\d+(?:\.\d+)?$/.test(n) ? n : { error: `say-as cardinal needs a number (got "${t}")` };
    }
    case 'ordinal': {
      const n = t.replace(/[,\s]/g, '').replace(/(st|nd|rd|th|\.)$/i, '');
      return /^\d+$/.test(n) ? ordinal(n) : { error: `say-as ordinal needs a whole number (got "${t}")` };
    }
    case 'digits':
      return /^[\d\s]+$/.test(t) ? [...t.replace(/\s+/g, '')].join(' ') : { error: `say-as digits needs digits (got "${t}")` };
    case 'telephone': {
      const groups = t.split(/[^\d+]+/).filter((g) => g !== '');
      if (groups.length === 0) return { error: `say-as telephone needs a number (got "${t}")` };
      // Digit by digit, a short pause (comma) between the groups as written.
      return groups.map((g) => [...g.replace('+', 'plus ')].join(' ').replace(/p l u s {2}/, 'plus ')).join(', ');
    }
    case 'date': {
      const parts = t.split(/[-/.\s]+/).filter((p) => p !== '').map(Number);
      const order = (format ?? (/^\d{4}/.test(t) ? 'ymd' : 'mdy')).toLowerCase();
      if (parts.some((p) => !Number.isInteger(p)) || parts.length !== order.length || !/^[dmy]+$/.test(order)) {
        return { error: `say-as date: "${t}" does not match the format "${order}"` };
      }
      const get = (c: string): number | undefined => (order.includes(c) ? parts[order.indexOf(c)] : undefined);
      const m = get('m');
      const d = get('d');
      const y = get('y');
      if (m !== undefined && (m < 1 || m > 12)) return { error: `say-as date: month ${m} is not 1–12` };
      if (d !== undefined && (d < 1 || d > 31)) return { error: `say-as date: day ${d} is not 1–31` };
      return [m !== undefined ? MONTHS[m - 1] : undefined, d !== undefined ? ordinal(String(d)) : undefined, y !== undefined ? String(y) : undefined].filter((x) => x !== undefined).join(' ');
    }
    case 'time': {
      const m = /^(\d{1,2})(?::(\d{2}))?(?::\d{2})?\s*([ap]\.?m\.?)?$/i.exec(t);
      if (!m) return { error: `say-as time needs hh:mm (got "${t}")` };
      // normalize.ts reads "10:30" and "7:05 pm".
      return `${Number(m[1])}:${m[2] ?? '00'}${m[3] ? ` ${m[3]}` : ''}`;
    }
    default:
      return { error: `say-as interpret-as="${kind}" is not supported; use characters, spell-out, cardinal, ordinal, digits, date, time or telephone` };
  }
}

/** Seconds of `<break time>`: `500ms`, `1.5s`, or a bare number of milliseconds. */
function breakTime(v: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const s = m[2] === 's' ? n : n / 1000;
  return s <= 60 ? s : undefined;
}

function rate(v: string): number | undefined {
  if (v in RATES) return RATES[v];
  const pct = /^([+-]?)(\d+(?:\.\d+)?)%$/.exec(v.trim());
  if (pct) return pct[1] === '' ? Number(pct[2]) / 100 : 1 + (pct[1] === '-' ? -1 : 1) * (Number(pct[2]) / 100);
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Decodes a raw text run of the source (entities and character references) keeping each character's source. */
function decodeRaw(src: string, a: number, b: number): SpanText {
  const parts: SpanText[] = [];
  let i = a;
  let run = a;
  const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
  while (i < b) {
    if (src[i] === '&') {
      const m = /^&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/.exec(src.slice(i, Math.min(b, i + 16)));
      if (m) {
        if (i > run) parts.push(SpanText.source(src.slice(run, i), run));
        const e = m[1]!;
        const ch = e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : named[e] ?? m[0];
        parts.push(SpanText.covering(ch, i, i + m[0].length));
        i += m[0].length;
        run = i;
        continue;
      }
    }
    i++;
  }
  if (b > run) parts.push(SpanText.source(src.slice(run, b), run));
  return SpanText.concat(parts);
}

export interface SsmlOptions {
  onLog?: LogCallback;
}

/**
 * Parses SSML into utterances (see the module comment).
 * @throws DataError (65, E_SSML) for XML that is not well-formed, a root that is not `<speak>`, or an attribute value
 *   stemkit cannot use; the message names the line and column.
 */
export function ssmlUtterances(src: string, opts: SsmlOptions = {}): Utterance[] {
  const parser = new SaxesParser({ position: true });
  const fail = (msg: string, line = parser.line, column = parser.column): never => {
    throw new DataError(`SSML error at line ${line}, column ${column}: ${msg}`, {
      code: 'E_SSML',
      hint: 'Fix the SSML (the README lists the elements stemkit speaks), or drop ssml to read the text as plain text.',
      details: { line, column, option: 'ssml' },
    });
  };
  const out: Utterance[] = [];
  const stack: Array<{ name: string; ctx: Context; open: number }> = [];
  const unknown = new Set<string>();
  let ctx: Context = { speed: 1 };
  let parts: UtterancePart[] = [];
  let partsCtx: Context = ctx;
  let pause: number | undefined;
  /** True while the current sentence has not ended (a split then is mid-sentence: no sentence silence). */
  let midSentence = false;
  let lastEnd = 0;
  /** Set while inside sub / say-as / phoneme: their text is replaced, not spoken. */
  let replaced: { name: string; attrs: Record<string, string>; open: number; line: number; column: number } | undefined;
  let depthSeen = 0;

  const flush = (sentenceEnd: boolean): void => {
    const ranges = parts.map((p) => ('text' in p ? p.text : p.phonemes).range()).filter((r): r is [number, number] => r !== undefined);
    if (ranges.length > 0) {
      const u: Utterance = { parts, start: Math.min(...ranges.map((r) => r[0])), end: Math.max(...ranges.map((r) => r[1])), speed: partsCtx.speed };
      if (partsCtx.voice !== undefined) u.voice = partsCtx.voice;
      if (partsCtx.lang !== undefined) u.lang = partsCtx.lang;
      if (pause !== undefined) u.pauseBefore = pause;
      else if (midSentence && out.length > 0) u.pauseBefore = 0;
      out.push(u);
      pause = undefined;
    }
    parts = [];
    partsCtx = ctx;
    midSentence = !sentenceEnd && ranges.length > 0;
  };
  const addPart = (p: UtterancePart): void => {
    if (parts.length === 0) partsCtx = ctx;
    parts.push(p);
  };
  const addText = (t: SpanText): void => {
    if (t.text.trim() === '') return;
    // Sentence ends inside plain text end the utterance (as in plain text).
    const sentences = splitSentenceSpans(t.text);
    sentences.forEach((s, k) => {
      addPart({ text: t.slice(s.start, s.end) });
      const ends = /[.!?…。！？]["”’')\]}»]*$/.test(s.text);
      if (k < sentences.length - 1 || ends) flush(true);
    });
  };
  const setCtx = (next: Context): void => {
    if (parts.length > 0 && (next.voice !== ctx.voice || next.speed !== ctx.speed || next.lang !== ctx.lang)) flush(false);
    ctx = next;
  };

  parser.on('error', (e) => {
    fail(e.message.replace(/^\d+:\d+:\s*/, '').replace(/\.$/, ''));
  });
  parser.on('text', (t) => {
    if (stack.length === 0) {
      if (t.trim() !== '') fail('text outside the <speak> element');
      lastEnd = parser.position;
      return;
    }
    const end = parser.position - 1;
    const text = decodeRaw(src, lastEnd, end);
    if (!replaced) addText(text);
    lastEnd = parser.position - 1;
  });
  parser.on('opentag', (tag: SaxesTag) => {
    const at = { line: parser.line, column: parser.column };
    const attrs = tag.attributes as Record<string, string>;
    const name = tag.name;
    if (depthSeen === 0 && name !== 'speak') fail(`the root element must be <speak>, not <${name}>`);
    depthSeen++;
    const next: Context = { ...ctx };
    if (replaced) fail(`<${name}> inside <${replaced.name}> is not supported`);
    switch (name) {
      case 'speak':
      case 'lang':
        if (attrs['xml:lang'] !== undefined) next.lang = attrs['xml:lang'].toLowerCase();
        else if (name === 'lang') fail('<lang> needs xml:lang="…"');
        break;
      case 'p':
      case 's':
        flush(true);
        if (attrs['xml:lang'] !== undefined) next.lang = attrs['xml:lang'].toLowerCase();
        break;
      case 'voice': {
        const v = attrs['name'];
        if (!v) fail('<voice> needs name="…" (a Kokoro voice or blend, or a Piper speaker)');
        next.voice = v!;
        break;
      }
      case 'prosody': {
        if (attrs['rate'] !== undefined) {
          const r = rate(attrs['rate']);
          if (r === undefined) fail(`<prosody rate="${attrs['rate']}"> is not a rate: use x-slow, slow, medium, fast, x-fast, N%, +N%, -N% or a factor`);
          next.speed = ctx.speed * r!;
        }
        const other = Object.keys(attrs).filter((k) => k !== 'rate');
        if (other.length) opts.onLog?.({ level: 'warn', message: `SSML <prosody ${other.join(', ')}> is not supported; only rate is applied` });
        break;
      }
      case 'break': {
        let s: number | undefined = 0;
        if (attrs['time'] !== undefined) {
          s = breakTime(attrs['time']);
          if (s === undefined) fail(`<break time="${attrs['time']}"> is not a duration: use e.g. 500ms or 1.5s (at most 60 s)`);
        } else {
          const st = attrs['strength'] ?? 'medium';
          s = STRENGTHS[st];
          if (s === undefined) fail(`<break strength="${st}"> is not one of ${Object.keys(STRENGTHS).join(', ')}`);
        }
        flush(false);
        pause = (pause ?? 0) + s!;
        break;
      }
      case 'say-as':
      case 'sub':
      case 'phoneme':
        if (name === 'sub' && attrs['alias'] === undefined) fail('<sub> needs alias="…"');
        if (name === 'say-as' && attrs['interpret-as'] === undefined) fail('<say-as> needs interpret-as="…"');
        if (name === 'phoneme') {
          if ((attrs['alphabet'] ?? 'ipa').toLowerCase() !== 'ipa') fail(`<phoneme alphabet="${attrs['alphabet']}"> is not supported; use alphabet="ipa"`);
          if (!attrs['ph']) fail('<phoneme> needs ph="…" (IPA)');
        }
        replaced = { name, attrs, open: parser.position, ...at };
        break;
      default:
        if (!unknown.has(name)) {
          unknown.add(name);
          opts.onLog?.({ level: 'warn', message: `SSML <${name}> is not supported (line ${at.line}); its text is spoken as is` });
        }
    }
    lastEnd = parser.position;
    if (!tag.isSelfClosing) {
      stack.push({ name, ctx, open: parser.position });
      setCtx(next);
    }
  });
  parser.on('closetag', (tag) => {
    const name = tag.name;
    if (tag.isSelfClosing) {
      lastEnd = parser.position;
      return;
    }
    const top = stack.pop()!;
    if (replaced && replaced.name === name) {
      const r = replaced;
      replaced = undefined;
      // The element's own text (between its tags) is what the spoken replacement stands for.
      const inner = src.slice(r.open, parser.position - `</${name}>`.length);
      const innerStart = r.open;
      const innerEnd = r.open + inner.length;
      const lo = innerEnd > innerStart && inner.trim() !== '' ? innerStart + (inner.length - inner.trimStart().length) : r.open;
      const hi = innerEnd > innerStart && inner.trim() !== '' ? innerEnd - (inner.length - inner.trimEnd().length) : r.open;
      const shownLo = hi > lo ? lo : NO_SOURCE;
      const plain = decodeRaw(src, innerStart, innerEnd).text;
      if (name === 'sub') addPart({ text: SpanText.covering(r.attrs['alias']!, shownLo, hi) });
      else if (name === 'phoneme') addPart({ phonemes: SpanText.covering(r.attrs['ph']!.normalize('NFC'), shownLo, hi) });
      else {
        const said = sayAs(r.attrs['interpret-as']!.toLowerCase(), r.attrs['format'], plain);
        if (typeof said !== 'string') fail(said.error, r.line, r.column);
        addPart({ text: SpanText.covering(said as string, shownLo, hi) });
      }
    }
    if (name === 'p' || name === 's') flush(true);
    lastEnd = parser.position;
    setCtx(top.ctx);
  });
  parser.write(src).close();
  flush(true);
  return out;
}
