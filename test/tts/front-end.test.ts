import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { normalizeEnglish } from '../../src/tts/normalize.js';
import {
  MAX_WORD_CHARS,
  breakLongWords,
  createEspeakBackend,
  kokoroEnglishFixes,
  phonemizeSentences,
  splitSections,
  type G2PBackend,
} from '../../src/tts/phonemize.js';
import { splitSentences, splitTokenIds } from '../../src/tts/text-split.js';
import { HAS_ESPEAK } from '../helpers/tts-fixtures.js';
import { KOKORO_BREAK_CLASSES, KOKORO_SPACE, KOKORO_VOCAB, describeDropped, tokenizeKokoro } from '../../src/tts/vocab.js';


describe('Kokoro vocabulary (model-io §3.2)', () => {
  it('has the 114 entries of the spec with the pinned ids', () => {
    expect(KOKORO_VOCAB.size).toBe(114);
    const spot: Array<[string, number]> = [[';', 1], ['—', 9], ['…', 10], ['“', 14], [' ', 16], ['\u0303', 17], ['A', 24], ['a', 43], ['ɹ', 123], ['ˈ', 156], ['ᵻ', 177]];
    for (const [ch, id] of spot) expect(KOKORO_VOCAB.get(ch)).toBe(id);
    expect(Math.max(...KOKORO_VOCAB.values())).toBe(177);
    expect(KOKORO_VOCAB.has('g')).toBe(false); // Kokoro uses ɡ (U+0261), not ASCII g
  });

  it('drops and counts unknown symbols', () => {
    const t = tokenizeKokoro('həlˈoʊ g#g ʢ');
    expect(t.ids).toEqual([50, 83, 54, 156, 57, 135, 16, 16]);
    expect([...t.dropped]).toEqual([['g', 2], ['#', 1], ['ʢ', 1]]);
    expect(describeDropped(t.dropped)).toBe('"g" ×2, "#" ×1, "ʢ" ×1');
  });
});

describe('normalizeEnglish', () => {
  const cases: Array<{ input: string; target: string }> = [
    { input: 'Dr. Smith met Mr. Jones and Mrs. Brown.', target: 'Doctor Smith met Mister Jones and Missus Brown.' },
    { input: 'It costs $5.50 today.', target: 'It costs 5 dollars and 50 cents today.' },
    { input: 'It costs $1 or £2.05 or $0.99.', target: 'It costs 1 dollar or 2 pounds and 5 pence or 99 cents.' },
    { input: 'It is $3 million.', target: 'It is 3 million dollars.' },
    { input: 'Meet at 10:30, or 7:05 pm, or 9:00.', target: "Meet at 10 30, or 7 oh 5 P M, or 9 o'clock." },
    { input: 'In 1990 and the 1980s, 2005 and 1905.', target: 'In 19 90 and the 19 80s, 2005 and 19 oh 5.' },
    { input: 'There were 1,234,567 people, 50% of them.', target: 'There were 1234567 people, 50 percent of them.' },
    { input: 'Pages 5-10.', target: 'Pages 5 to 10.' },
    { input: 'St. Louis is on Main St. today.', target: 'Saint Louis is on Main Street today.' },
    { input: 'The U.S.A. is big.', target: 'The U S A is big.' },
  ];
  for (const c of cases) it(c.input, () => expect(normalizeEnglish(c.input)).toBe(c.target));
});

describe('splitSentences', () => {
  it('splits at terminators followed by space and at line breaks, keeping titles and initials', () => {
    expect(splitSentences('Hello there! How are you? Fine… thanks.\nNew line "quoted." Next')).toEqual([
      'Hello there!',
      'How are you?',
      'Fine…',
      'thanks.',
      'New line "quoted."',
      'Next',
    ]);
    expect(splitSentences('Dr. Smith and J. R. R. Tolkien met, e.g. at 3.14 pm. Then left.')).toEqual(['Dr. Smith and J. R. R. Tolkien met, e.g. at 3.14 pm.', 'Then left.']);
    expect(splitSentences('The U.S.A. is big. We live in the U.S.A. Next one.')).toEqual(['The U.S.A. is big.', 'We live in the U.S.A.', 'Next one.']);
  });

  it('never drops a character: the sentences are the input minus whitespace at the cuts', () => {
    const text = 'a. b! c? d… e.\n\n f. "g." (h.) i.j. k?! l. , m';
    const sentences = splitSentences(text);
    expect(sentences).toEqual(['a.', 'b!', 'c?', 'd…', 'e.', 'f.', '"g."', '(h.)', 'i.j. k?!', 'l.', ', m']); // "i.j." before a lower-case word is an initialism
    expect(sentences.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
  });
});

describe('splitTokenIds (waterfall, model-io §3.4)', () => {
  const opts = { max: 6, breakClasses: KOKORO_BREAK_CLASSES, space: KOKORO_SPACE };
  const P = 4; // .
  const C = 3; // ,
  const S = 1; // ;
  const _ = KOKORO_SPACE;
  const cases: Array<{ name: string; input: number[]; target: number[][]; hardCuts?: number }> = [
    { name: 'fits: one piece, outer spaces trimmed', input: [_, 50, 51, P, _], target: [[50, 51, P]] },
    { name: 'prefers the last full stop over later commas', input: [50, P, _, 51, C, _, 52, C, _, 53], target: [[50, P], [51, C, _, 52, C], [53]] },
    { name: 'semicolon beats comma', input: [50, C, 51, S, 52, C, 53, 54, 55], target: [[50, C, 51, S], [52, C, 53, 54, 55]] },
    { name: 'comma when nothing stronger fits', input: [50, 51, C, _, 52, 53, 54, 55], target: [[50, 51, C], [52, 53, 54, 55]] },
    { name: 'word gap when no punctuation fits', input: [50, 51, _, 52, 53, _, 54, 55, 56], target: [[50, 51, _, 52, 53], [54, 55, 56]] },
    { name: 'hard cut inside a word longer than the limit', input: [50, 51, 52, 53, 54, 55, 56, 57, _, 58], target: [[50, 51, 52, 53, 54, 55], [56, 57, _, 58]], hardCuts: 1 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = splitTokenIds(c.input, opts);
      expect(r.pieces).toEqual(c.target);
      expect(r.hardCuts).toBe(c.hardCuts ?? 0);
      for (const p of r.pieces) expect(p.length).toBeLessThanOrEqual(opts.max);
    });
  }
});

describe('phonemize front end', () => {
  // A fake backend makes the punctuation handling visible: each word run becomes <run in upper case>.
  const fake: G2PBackend = async (sections) => sections.map((s) => s.trim().toUpperCase());

  it('cuts text into word and punctuation runs that concatenate back to the input', () => {
    const text = 'Hello, world — "quoted" (x)!';
    const s = splitSections(text);
    expect(s.map((x) => x.text).join('')).toBe(text);
    expect(s.filter((x) => x.punct).map((x) => x.text)).toEqual([', ', ' — "', '" (', ')!']);
  });

  it('restores punctuation verbatim for Kokoro', async () => {
    const out = await phonemizeSentences(['Hello, world — "quoted" (x)!'], { voice: 'en-us', punctuation: 'kokoro', backend: fake, normalize: false, kokoroFixes: false });
    expect(out).toEqual(['HELLO, WORLD — "QUOTED" (X)!']);
  });

  it('keeps only clause marks for Piper, with a space after , : ; (model-io §4.4)', async () => {
    const out = await phonemizeSentences(['Hello, world — "quoted": yes; no… (x)!'], { voice: 'en-us', punctuation: 'piper', backend: fake, normalize: false });
    expect(out).toEqual(['HELLO, WORLD QUOTED: YES; NO. X!']);
  });

  it('cuts words longer than espeak-ng reads whole', () => {
    const long = 'x'.repeat(MAX_WORD_CHARS * 2 + 3);
    expect(breakLongWords(`a ${long} b`)).toEqual({ text: `a ${'x'.repeat(MAX_WORD_CHARS)} ${'x'.repeat(MAX_WORD_CHARS)} xxx b`, cut: 1 });
  });

  it('applies kokoro.js post-processing (model-io §3.3 step 4)', () => {
    expect(kokoroEnglishFixes('kəkˈoːɹoʊ rʲxɬ fˈaɪvhˈʌndɹɪd nˈaɪnti z.', true)).toBe('kˈoʊkəɹoʊ ɹjkl fˈaɪv hˈʌndɹɪd nˈaɪndiz.');
    expect(kokoroEnglishFixes('nˈaɪnti', false)).toBe('nˈaɪnti');
  });

  it('phonemises English offline with the bundled phonemizer and restores punctuation', async () => {
    const [ps] = await phonemizeSentences(['Hello world, this is Kokoro!'], { voice: 'en-us', punctuation: 'kokoro' });
    expect(ps).toBe('həlˈoʊ wˈɜːld, ðɪs ɪz kˈoʊkəɹoʊ!');
  });

  it('rejects a missing espeak-ng binary with exit 69 naming how to install it', async () => {
    const err = await phonemizeSentences(['Hallo Welt.'], { voice: 'de', punctuation: 'piper', espeakPath: '/nonexistent/espeak-ng' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 69, code: 'E_ESPEAK_MISSING' });
    expect((err as { hint: string }).hint).toMatch(/apt install espeak-ng/);
  });

  describe.skipIf(!HAS_ESPEAK)('system espeak-ng', () => {
    it('phonemises German with punctuation restored, one process for all sections', async () => {
      // Expected from espeak-ng itself, one call per word run (its output differs slightly between versions).
      const ipa = (t: string): string => execFileSync('espeak-ng', ['-q', '--ipa', '-v', 'de', t], { encoding: 'utf8' }).trim();
      const out = await phonemizeSentences(['Hallo Welt, wie geht es?', 'Gut.'], { voice: 'de', punctuation: 'piper' });
      expect(out).toEqual([`${ipa('Hallo Welt')}, ${ipa('wie geht es')}?`, `${ipa('Gut')}.`]);
      expect(out[0]).toMatch(/^h.*l.*, .*\?$/u);
    });

    it('unknown language → exit 64 pointing at --lang', async () => {
      const err = await createEspeakBackend()(['hallo'], 'xx-nope').catch((e: unknown) => e);
      expect(err).toMatchObject({ exitCode: 64, code: 'E_UNKNOWN_LANGUAGE' });
    });
  });
});
