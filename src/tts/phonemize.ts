/**
 * Text → IPA phonemes with the punctuation restored around clauses.
 *
 * English goes through the npm `phonemizer` package (espeak-ng compiled to WASM, offline, no system
 * dependency); every other language goes through the system `espeak-ng` binary (`-q --ipa -v <voice>`).
 * Both drop punctuation, so — like kokoro.js (model-io.md §3.3) — the text is first cut into runs of
 * punctuation and runs of words; only the word runs are phonemised and the punctuation is put back
 * between them: verbatim for Kokoro (its vocabulary has `;:,.!?—…"()“”`), reduced to the clause
 * terminators `.?!,:;` for Piper (model-io.md §4.4, where `,:;` are followed by a space).
 */
import { InternalError, UnavailableError, UsageError, throwIfAborted } from '../errors.js';
import type { LogCallback } from '../progress.js';
import { normalizeEnglishSpans } from './normalize.js';
import { NO_SOURCE, SpanText } from './spans.js';

/** Phonemises word runs (no punctuation inside): one phoneme string per input, same order and count. */
export type G2PBackend = (sections: readonly string[], voice: string, signal?: AbortSignal) => Promise<string[]>;

/** The espeak voices the npm phonemizer accepts (it throws "Invalid language identifier" for others). */
export const PHONEMIZER_VOICES: readonly string[] = [
  'en',
  'en-us',
  'en-gb',
  'en-029',
  'en-gb-scotland',
  'en-gb-x-gbclan',
  'en-gb-x-gbcwmd',
  'en-gb-x-rp',
  'en-us-nyc',
];

/** True when the voice is English and can be phonemised offline by the bundled phonemizer. */
export function isPhonemizerVoice(voice: string): boolean {
  return PHONEMIZER_VOICES.includes(voice.toLowerCase());
}

const PUNCT_CHARS = ';:,.!?¡¿—…"«»“”(){}[]';
const PUNCT_RUN = /(?:\s*[;:,.!?¡¿—…"«»“”(){}[\]]+\s*)+/gu;
/** espeak's language-switch markers such as `(en)` … `(cmn)` (model-io.md §4.4 step 1). */
const LANG_SWITCH = /\([a-z]{2,3}(?:-[a-z0-9]+)*\)/g;
/**
 * espeak-ng truncates very long words (spelled-out letters after about 39, other words after about 130
 * characters), so longer runs without spaces are cut into pieces of this many characters first.
 */
export const MAX_WORD_CHARS = 32;

export interface Section {
  text: string;
  /** True for a run of punctuation (with the whitespace around it). */
  punct: boolean;
}

/** Cuts text into alternating word and punctuation runs; concatenating the texts gives the input back. */
export function splitSections(text: string): Section[] {
  const out: Section[] = [];
  let last = 0;
  for (const m of text.matchAll(PUNCT_RUN)) {
    const at = m.index;
    if (at > last) out.push({ text: text.slice(last, at), punct: false });
    out.push({ text: m[0], punct: true });
    last = at + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last), punct: false });
  return out;
}

/** Inserts spaces into words longer than MAX_WORD_CHARS so espeak-ng reads all of them. Returns the count of words cut. */
export function breakLongWords(text: string): { text: string; cut: number } {
  const r = breakLongWordSpans(SpanText.source(text));
  return { text: r.text.text, cut: r.cut };
}

function breakLongWordSpans(text: SpanText): { text: SpanText; cut: number } {
  let cut = 0;
  const re = new RegExp(`\\S{${MAX_WORD_CHARS + 1},}`, 'gu');
  const out = text.replace(re, (w: string) => {
    cut += 1;
    const chars = [...w];
    const parts: string[] = [];
    for (let i = 0; i < chars.length; i += MAX_WORD_CHARS) parts.push(chars.slice(i, i + MAX_WORD_CHARS).join(''));
    return parts.join(' ');
  });
  return { text: out, cut };
}

interface PhonemizerModule {
  phonemize(text: string, language?: string): Promise<string[]>;
}
let phonemizerPromise: Promise<PhonemizerModule> | undefined;

/**
 * Results of the bundled phonemizer by voice and text. espeak-ng is deterministic and its WASM build is slow
 * (~0.3 ms per character), so repeated sections — a batch re-using phrases, a re-run of a text — are not
 * phonemised twice. Bounded: the oldest entry goes first.
 */
const cache = new Map<string, string>();
const CACHE_ENTRIES = 4096;

/** The npm phonemizer backend (English only). Loaded lazily: it embeds a ~1.3 MB WASM espeak-ng. */
export const phonemizerBackend: G2PBackend = async (sections, voice, signal) => {
  phonemizerPromise ??= import('phonemizer') as Promise<PhonemizerModule>;
  const mod = await phonemizerPromise;
  const lang = voice.toLowerCase();
  const out: string[] = [];
  for (const s of sections) {
    throwIfAborted(signal);
    if (s.trim() === '') {
      out.push('');
      continue;
    }
    const key = `${lang}\u0000${s}`;
    let ps = cache.get(key);
    if (ps === undefined) {
      // The package returns one string per clause; the clause breaks inside a word run are spaces.
      ps = (await mod.phonemize(s, lang)).join(' ');
      if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
      cache.set(key, ps);
    }
    out.push(ps);
  }
  return out;
};

/**
 * Loads the bundled phonemizer and runs it once. Its first calls are slow (~1 s: the embedded espeak-ng
 * WASM and its data are instantiated and warmed up), so model loading overlaps this with session creation.
 */
export async function warmUpPhonemizer(): Promise<void> {
  await phonemizerBackend(['a'], 'en-us');
}

export interface EspeakOptions {
  /** The espeak-ng executable (default `espeak-ng` on PATH). */
  espeakPath?: string;
}

function espeakMissing(voice: string, cause: unknown): UnavailableError {
  return new UnavailableError(`language "${voice}" needs the espeak-ng program, which was not found`, {
    code: 'E_ESPEAK_MISSING',
    cause,
    hint: 'Install espeak-ng (Debian/Ubuntu: `sudo apt install espeak-ng`; macOS: `brew install espeak-ng`; Windows: the espeak-ng .msi). English works without it.',
  });
}

function unknownVoice(voice: string, stderr: string): UsageError {
  return new UsageError(`espeak-ng does not know the language/voice "${voice}"${stderr ? ` (${stderr.trim().split('\n')[0]})` : ''}`, {
    code: 'E_UNKNOWN_LANGUAGE',
    hint: 'Pass an espeak-ng voice with lang, e.g. de, fr-fr, es, pt-br; `espeak-ng --voices` lists them.',
    details: { option: 'lang' },
  });
}

/**
 * The system espeak-ng backend. All sections go to one process, separated by blank lines (espeak-ng
 * prints one line per paragraph when the text has no clause punctuation); if the line count does not
 * match, each section is phonemised on its own so nothing can shift or vanish.
 */
export function createEspeakBackend(opts: EspeakOptions = {}): G2PBackend {
  const bin = opts.espeakPath ?? 'espeak-ng';
  const run = async (input: string, voice: string, signal?: AbortSignal): Promise<string[]> => {
    const { execa } = await import('execa');
    let result;
    try {
      result = await execa(bin, ['-q', '--ipa', '-v', voice, '--stdin'], {
        input,
        reject: false,
        stripFinalNewline: false,
        ...(signal ? { cancelSignal: signal } : {}),
      });
    } catch (cause) {
      throw espeakMissing(voice, cause);
    }
    throwIfAborted(signal);
    if ((result as { code?: string }).code === 'ENOENT' || (result.failed && result.exitCode === undefined)) throw espeakMissing(voice, result);
    if (result.exitCode !== 0 || /voice does not exist/i.test(String(result.stderr))) throw unknownVoice(voice, String(result.stderr));
    return String(result.stdout)
      .split('\n')
      .map((l) => l.replace(LANG_SWITCH, '').trim())
      .filter((l, i, all) => l !== '' || i < all.length - 1);
  };
  return async (sections, voice, signal) => {
    const idx = sections.map((s, i) => (s.trim() === '' ? -1 : i)).filter((i) => i >= 0);
    const out = sections.map(() => '');
    if (idx.length === 0) return out;
    const lines = (await run(idx.map((i) => sections[i]!.replace(/\s+/g, ' ').trim()).join('\n\n') + '\n', voice, signal)).filter((l) => l !== '');
    if (lines.length === idx.length) {
      idx.forEach((i, k) => (out[i] = lines[k]!));
      return out;
    }
    for (const i of idx) {
      throwIfAborted(signal);
      out[i] = (await run(sections[i]!.replace(/\s+/g, ' ').trim() + '\n', voice, signal)).filter((l) => l !== '').join(' ');
    }
    return out;
  };
}

export type PunctuationStyle = 'kokoro' | 'piper';

export interface PhonemizeOptions {
  /** espeak voice / language code, e.g. `en-us`, `en`, `de`, `fr-fr`. */
  voice: string;
  /** How punctuation is put back (see the module comment). */
  punctuation: PunctuationStyle;
  /** Apply English normalisation (default: true for English voices). */
  normalize?: boolean;
  /** Apply kokoro.js's English post-processing (model-io.md §3.3 step 4). Default: Kokoro style and an English voice. */
  kokoroFixes?: boolean;
  /** Override the backend (tests); default: phonemizer for English, system espeak-ng otherwise. */
  backend?: G2PBackend;
  espeakPath?: string;
  signal?: AbortSignal;
  onLog?: LogCallback;
}

const PIPER_KEEP = new Set(['.', ',', ':', ';', '!', '?']);

function restorePunct(run: string, style: PunctuationStyle, atEnd: boolean): string {
  if (style === 'kokoro') return run;
  // Piper: keep the clause marks (… counts as a full stop), everything else becomes a word gap.
  let marks = '';
  for (const ch of run) {
    if (PIPER_KEEP.has(ch)) marks += ch;
    else if (ch === '…') marks += '.';
  }
  if (marks === '') return ' ';
  return atEnd ? marks : `${marks} `;
}

/** kokoro.js's English fixes (model-io.md §3.3 step 4), in its order. */
export function kokoroEnglishFixes(ps: string, american: boolean): string {
  return kokoroEnglishFixSpans(SpanText.source(ps), american).text;
}

function kokoroEnglishFixSpans(ps: SpanText, american: boolean): SpanText {
  let out = ps
    .replace(/kəkˈoːɹoʊ/g, 'kˈoʊkəɹoʊ')
    .replace(/kəkˈɔːɹəʊ/g, 'kˈəʊkəɹəʊ')
    .replace(/ʲ/g, 'j')
    .replace(/r/g, 'ɹ')
    .replace(/x/g, 'k')
    .replace(/ɬ/g, 'l')
    .replace(/(?<=[a-zɹː])(?=hˈʌndɹɪd)/g, ' ')
    .replace(/ z(?=[;:,.!?¡¿—…"«»“” ]|$)/g, 'z');
  if (american) out = out.replace(/(?<=nˈaɪn)ti(?!ː)/g, 'di');
  return out;
}

/** The backend for a voice: the bundled phonemizer for English, system espeak-ng otherwise. */
export function backendFor(voice: string, espeakPath?: string): G2PBackend {
  return isPhonemizerVoice(voice) ? phonemizerBackend : createEspeakBackend(espeakPath === undefined ? {} : { espeakPath });
}

/**
 * Phonemises several sentences in one backend call. Returns one phoneme string per sentence
 * (whitespace collapsed, trimmed), with the punctuation restored per `opts.punctuation`.
 * @throws UnavailableError (69) when a non-English language needs espeak-ng and it is not installed.
 */
export async function phonemizeSentences(sentences: readonly string[], opts: PhonemizeOptions): Promise<string[]> {
  return (await phonemizeSpans(sentences.map((s) => SpanText.source(s)), opts)).map((p) => p.text);
}

/**
 * Splits `costs.length` items into `groups` contiguous non-empty groups whose sizes best match `targets`
 * (least squares, after scaling to the same total): a small dynamic programme. Returns each group's end.
 */
function segment(costs: readonly number[], targets: readonly number[]): number[] {
  const n = costs.length;
  const g = targets.length;
  const scale = targets.reduce((a, b) => a + b, 0) / Math.max(1, costs.reduce((a, b) => a + b, 0));
  const prefix = [0];
  for (const c of costs) prefix.push(prefix[prefix.length - 1]! + c * scale);
  // best[j][i]: least cost of the first j groups covering the first i items.
  const best = Array.from({ length: g + 1 }, () => new Float64Array(n + 1).fill(Infinity));
  const from = Array.from({ length: g + 1 }, () => new Int32Array(n + 1));
  best[0]![0] = 0;
  for (let j = 1; j <= g; j++) {
    for (let i = j; i <= n - (g - j); i++) {
      for (let h = j - 1; h < i; h++) {
        const d = prefix[i]! - prefix[h]! - targets[j - 1]!;
        const c = best[j - 1]![h]! + d * d;
        if (c < best[j]![i]!) {
          best[j]![i] = c;
          from[j]![i] = h;
        }
      }
    }
  }
  const ends: number[] = [];
  for (let j = g, i = n; j > 0; j--) {
    ends.unshift(i);
    i = from[j]![i]!;
  }
  return ends;
}

/**
 * The phoneme words of one word run, each standing for the text word(s) it was read from. espeak-ng
 * usually gives one phoneme word per text word. When it joins words ("of the" → "ʌvðə") or splits one,
 * the longer list is cut into as many contiguous groups as the shorter has items, matching lengths
 * (letters vs phonemes), so a joined reading stands for the words it joined and order is always kept.
 */
function alignRun(run: SpanText, phonemes: string): SpanText {
  const wordMatches = [...run.text.matchAll(/\S+/g)];
  const words = wordMatches.map((m) => run.range(m.index, m.index + m[0].length));
  const pw = phonemes.trim().split(/\s+/).filter((w) => w !== '');
  const letters = wordMatches.map((m) => m[0].replace(/[^\p{L}\p{N}]/gu, '').length || 1);
  const sounds = pw.map((w) => w.replace(/[ˈˌːˑ]/g, '').length || 1);
  const union = (rs: ReadonlyArray<[number, number] | undefined>): [number, number] | undefined => {
    const ok = rs.filter((r): r is [number, number] => r !== undefined);
    return ok.length ? [Math.min(...ok.map((r) => r[0])), Math.max(...ok.map((r) => r[1]))] : undefined;
  };
  // Source range of each phoneme word.
  let ranges: Array<[number, number] | undefined>;
  if (pw.length === words.length) ranges = words;
  else if (pw.length < words.length) {
    const ends = segment(letters, sounds);
    ranges = ends.map((e, j) => union(words.slice(j === 0 ? 0 : ends[j - 1]!, e)));
  } else {
    const ends = segment(sounds, letters);
    ranges = pw.map((_w, i) => words[ends.findIndex((e) => i < e)]);
  }
  const parts: SpanText[] = [];
  pw.forEach((w, j) => {
    if (j > 0) parts.push(SpanText.covering(' ', NO_SOURCE, NO_SOURCE));
    const r = ranges[j];
    parts.push(r ? SpanText.covering(w, r[0], r[1]) : SpanText.covering(w, NO_SOURCE, NO_SOURCE));
  });
  return SpanText.concat(parts);
}

/**
 * phonemizeSentences keeping sources: each phoneme character stands for the input word it was read
 * from (spans.ts); restored punctuation and word gaps stand for nothing. The text of the result is exactly
 * what phonemizeSentences returns.
 */
export async function phonemizeSpans(sentences: readonly SpanText[], opts: PhonemizeOptions): Promise<SpanText[]> {
  const english = opts.voice.toLowerCase().startsWith('en');
  const normalize = opts.normalize ?? english;
  const fixes = opts.kokoroFixes ?? (opts.punctuation === 'kokoro' && english);
  const backend = opts.backend ?? backendFor(opts.voice, opts.espeakPath);

  const perSentence: Array<Array<{ text: SpanText; punct: boolean }>> = [];
  const words: SpanText[] = [];
  let cutWords = 0;
  for (const sentence of sentences) {
    const norm = normalize ? normalizeEnglishSpans(sentence) : sentence;
    let at = 0;
    const sections = splitSections(norm.text).map((s) => {
      const piece = { text: norm.slice(at, at + s.text.length), punct: s.punct };
      at += s.text.length;
      return piece;
    });
    for (const s of sections) {
      if (!s.punct) {
        const b = breakLongWordSpans(s.text);
        cutWords += b.cut;
        s.text = b.text;
        words.push(s.text);
      }
    }
    perSentence.push(sections);
  }
  if (cutWords > 0) opts.onLog?.({ level: 'debug', message: `cut ${cutWords} word(s) longer than ${MAX_WORD_CHARS} characters into pieces so espeak-ng reads them whole` });
  const phon = words.length > 0 ? await backend(words.map((w) => w.text), opts.voice, opts.signal) : [];
  if (phon.length !== words.length) throw new InternalError(`G2P backend returned ${phon.length} results for ${words.length} sections`);
  let k = 0;
  const gap = (t: string): SpanText => SpanText.covering(t, NO_SOURCE, NO_SOURCE);
  return perSentence.map((sections) => {
    const parts: SpanText[] = [];
    sections.forEach((s, i) => {
      if (s.punct) {
        parts.push(gap(restorePunct(s.text.text, opts.punctuation, i === sections.length - 1)));
      } else {
        const p = phon[k++]!;
        // Keep a word gap where the text had one, so words of adjacent runs do not fuse.
        if (p.trim() === '') parts.push(gap(s.text.text.trim() === '' ? s.text.text : ' '));
        else parts.push(gap(/^\s/.test(s.text.text) ? ' ' : ''), alignRun(s.text, p), gap(/\s$/.test(s.text.text) ? ' ' : ''));
      }
    });
    let ps = SpanText.concat(parts).replace(/\s+/g, ' ').trim();
    if (fixes) ps = kokoroEnglishFixSpans(ps, opts.voice.toLowerCase() === 'en-us');
    return ps;
  });
}

/** Exported for tests: the punctuation characters that delimit word runs. */
export const PUNCTUATION = PUNCT_CHARS;
