import { mkdtempSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioSink, RawAudio } from '../../src/audio/raw-audio.js';
import { isStemkitError } from '../../src/errors.js';
import type { LogEvent } from '../../src/progress.js';
import { createSession } from '../../src/runtime/onnx.js';
import { synthesizeToSink } from '../../src/tts/job.js';
import { loadPiperConfig } from '../../src/tts/piper.js';
import { phonemizeSentences } from '../../src/tts/phonemize.js';
import { ssmlUtterances } from '../../src/tts/ssml.js';
import { createKokoroModel, createPiperModel, looksLikeSsml, type TtsModel, type Utterance } from '../../src/tts/synthesize.js';
import { buildCues } from '../../src/tts/subtitles.js';
import type { Timestamps } from '../../src/tts/timing.js';
import { npzVoiceStore } from '../../src/tts/voices.js';
import { KOKORO_VOCAB, tokenizeKokoro } from '../../src/tts/vocab.js';
import { buildKokoroModel, buildKokoroTimingModel, buildPiperModel, decodeKokoro, decodePiper, npz, piperConfig, timingTruth, voiceTable } from '../helpers/tts-fixtures.js';
import { runTtsCli } from '../helpers/tts-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'stemkit-ssml-'));

/** What each utterance says, as plain strings: text parts as they are, phoneme parts as /…/. */
function said(us: Utterance[]): string[][] {
  return us.map((u) => u.parts.map((p) => ('text' in p ? p.text.text : `/${p.phonemes.text}/`)));
}

function ssmlError(src: string): { message: string; exitCode: number; code: string } {
  try {
    ssmlUtterances(src);
  } catch (e) {
    if (isStemkitError(e)) return { message: e.message, exitCode: e.exitCode, code: e.code };
    throw e;
  }
  throw new Error('no error');
}

describe('ssmlUtterances', () => {
  it('detects SSML by its <speak> root', () => {
    expect(looksLikeSsml('<speak>Hi</speak>')).toBe(true);
    expect(looksLikeSsml('  <?xml version="1.0"?>\n<speak version="1.1">Hi</speak>')).toBe(true);
    expect(looksLikeSsml('Hi <speak>')).toBe(false);
    expect(looksLikeSsml('<speaker>')).toBe(false);
  });

  it('<s> and <p> and sentence ends make utterances; text keeps its offsets in the source', () => {
    const src = '<speak><p><s>One two</s><s>Three.</s></p>Four. Five</speak>';
    const us = ssmlUtterances(src);
    expect(said(us)).toEqual([['One two'], ['Three.'], ['Four.'], ['Five']]);
    for (const u of us) expect(src.slice(u.start, u.end)).toBe(said([u])[0]![0]);
  });

  it('<break time|strength> sets the pause before what follows (sums, replaces the sentence silence)', () => {
    const us = ssmlUtterances('<speak>A<break time="500ms"/>B<break strength="strong"/><break time="1.5s"/>Cat. Dog<break/>E</speak>');
    expect(said(us)).toEqual([['A'], ['B'], ['Cat.'], ['Dog'], ['E']]);
    expect(us.map((u) => u.pauseBefore)).toEqual([undefined, 0.5, 0.7 + 1.5, undefined, 0.4]);
    expect(ssmlError('<speak>A<break time="soon"/></speak>')).toMatchObject({ exitCode: 65, message: expect.stringMatching(/line 1, column 28: <break time="soon"> is not a duration/) });
    expect(ssmlError('<speak>A<break strength="huge"/></speak>').message).toMatch(/not one of none, x-weak/);
  });

  it('<prosody rate> scales the speed, nested rates multiply, and a change mid-sentence adds no silence', () => {
    const us = ssmlUtterances('<speak>Now <prosody rate="slow">slowly <prosody rate="200%">fast</prosody></prosody> and back.</speak>');
    expect(said(us)).toEqual([['Now'], ['slowly'], ['fast'], ['and back.']]);
    expect(us.map((u) => u.speed)).toEqual([1, 0.8, 1.6, 1]);
    expect(us.map((u) => u.pauseBefore)).toEqual([undefined, 0, 0, 0]);
    expect(ssmlUtterances('<speak><prosody rate="-25%">x</prosody><prosody rate="x-fast">y</prosody><prosody rate="1.1">z</prosody></speak>').map((u) => u.speed)).toEqual([0.75, 1.6, 1.1]);
    expect(ssmlError('<speak><prosody rate="zippy">x</prosody></speak>').message).toMatch(/line 1, column 29: <prosody rate="zippy"> is not a rate/);
  });

  it.each([
    ['characters', 'ABC', 'A B C'],
    ['spell-out', 'NASA', 'N A S A'],
    ['cardinal', '1,234', '1234'],
    ['ordinal', '3', '3rd'],
    ['ordinal', '12', '12th'],
    ['digits', '2024', '2 0 2 4'],
    ['date', '2024-03-05', 'March 5th 2024'],
    ['time', '14:30', '14:30'],
    ['telephone', '555-1234', '5 5 5, 1 2 3 4'],
  ])('<say-as interpret-as="%s">%s</say-as> → "%s", standing for the element\'s text', (kind, text, target) => {
    const src = `<speak>Call <say-as interpret-as="${kind}">${text}</say-as> now</speak>`;
    const [u] = ssmlUtterances(src);
    const part = u!.parts[1]!;
    expect('text' in part && part.text.text).toBe(target);
    const r = ('text' in part ? part.text : part.phonemes).range()!;
    expect(src.slice(...r)).toBe(text);
  });

  it('<say-as> with a date format, and values it cannot read', () => {
    expect(said(ssmlUtterances('<speak><say-as interpret-as="date" format="dmy">5/3/2024</say-as></speak>'))).toEqual([['March 5th 2024']]);
    expect(ssmlError('<speak>\n<say-as interpret-as="ordinal">many</say-as></speak>').message).toMatch(/line 2, column 31: say-as ordinal needs a whole number/);
    expect(ssmlError('<speak><say-as interpret-as="currency">5</say-as></speak>').message).toMatch(/interpret-as="currency" is not supported/);
  });

  it('<sub alias> speaks the alias for the element text; <phoneme ph> gives the phonemes', () => {
    const src = '<speak><sub alias="World Wide Web">WWW</sub> is <phoneme alphabet="ipa" ph="həlˈoʊ">hullo</phoneme>.</speak>';
    const [u] = ssmlUtterances(src);
    expect(said([u!])[0]).toEqual(['World Wide Web', 'is', '/həlˈoʊ/', '.']);
    const ph = u!.parts[2]!;
    expect('phonemes' in ph && src.slice(...ph.phonemes.range()!)).toBe('hullo');
    expect(ssmlError('<speak><phoneme alphabet="x-sampa" ph="h">x</phoneme></speak>').message).toMatch(/alphabet="x-sampa"> is not supported/);
    expect(ssmlError('<speak><sub>x</sub></speak>').message).toMatch(/<sub> needs alias/);
  });

  it('<voice name> and <lang xml:lang> switch for their content and restore after it', () => {
    const us = ssmlUtterances('<speak>A <voice name="bf_emma">B <lang xml:lang="en-GB">C</lang></voice> D</speak>');
    expect(said(us)).toEqual([['A'], ['B'], ['C'], ['D']]);
    expect(us.map((u) => [u.voice, u.lang])).toEqual([[undefined, undefined], ['bf_emma', undefined], ['bf_emma', 'en-gb'], [undefined, undefined]]);
  });

  it('unknown elements: one warning naming each, their text spoken', () => {
    const logs: LogEvent[] = [];
    const us = ssmlUtterances('<speak>A <emphasis>big</emphasis> <emphasis>deal</emphasis> <mark name="x"/>done</speak>', { onLog: (e) => logs.push(e) });
    expect(said(us)).toEqual([['A', 'big', 'deal', 'done']]);
    expect(logs.map((l) => l.message)).toEqual(['SSML <emphasis> is not supported (line 1); its text is spoken as is', 'SSML <mark> is not supported (line 1); its text is spoken as is']);
  });

  it.each([
    // Columns are 1-based and name the last character read: the end of the offending tag or entity.
    ['<speak>\n  Hello <b>world</speak>', /line 2, column 24: unexpected close tag/],
    ['<speak>Hello &nbsp; world</speak>', /line 1, column 19: undefined entity/],
    ['<speak>Hello <break time="1s"></speak>', /line 1, column 38: unexpected close tag/],
    ['<speak>a</speak><speak>b</speak>', /line 1, column 23: .*(document|root)/i],
    ['<speak>unclosed', /line 1, column 15: .*(unclosed|end)/i],
    ['<p>not speak</p>', /line 1, column 3: the root element must be <speak>, not <p>/],
  ])('malformed %j → 65 with line and column', (src, msg) => {
    const e = ssmlError(src);
    expect(e.exitCode).toBe(65);
    expect(e.code).toBe('E_SSML');
    expect(e.message).toMatch(msg);
  });
});

/** Collects what a job writes. */
function memorySink(): AudioSink & { samples(): Float32Array } {
  const blocks: RawAudio[] = [];
  return {
    path: 'mem',
    async write(b) {
      blocks.push(b);
    },
    async finish() {},
    async abort() {},
    samples() {
      const out = new Float32Array(blocks.reduce((a, b) => a + b.channels[0]!.length, 0));
      let off = 0;
      for (const b of blocks) {
        out.set(b.channels[0]!, off);
        off += b.channels[0]!.length;
      }
      return out;
    },
  };
}

describe('SSML through Kokoro', () => {
  let fed: TtsModel;
  let timed: TtsModel;
  beforeAll(async () => {
    const store = await npzVoiceStore(npz({ af_heart: voiceTable(0), bf_emma: voiceTable(100) }, 0), 'v.npz');
    fed = createKokoroModel(await createSession(buildKokoroModel({ ids: 'input_ids', speed: 'float32' }), { device: 'cpu', threads: 1 }), store, { id: 'fed', loadSeconds: 0 });
    timed = createKokoroModel(await createSession(buildKokoroTimingModel({ duration: true }), { device: 'cpu', threads: 1 }), store, { id: 'timed', loadSeconds: 0 });
  });
  afterAll(async () => {
    await fed.dispose();
    await timed.dispose();
  });

  it('feeds what the elements ask for: speed × rate, the voice\'s style table, the given phonemes', async () => {
    const blocks: Float32Array[] = [];
    for await (const b of fed.synthesize('<speak>Hi <prosody rate="slow">there</prosody> <voice name="bf_emma"><phoneme ph="həlˈoʊ">x</phoneme></voice></speak>', { speed: 1.5 })) blocks.push(b.channels[0]!);
    const calls = blocks.map((b) => decodeKokoro(b)[0]!);
    // (the fixture adds 1000 to what it encodes, so float32 keeps the speed to ~6e-5)
    expect(calls.map((c) => c.speed)).toEqual([1.5, expect.closeTo(1.2, 4), 1.5]);
    expect(calls[2]!.ids).toEqual([0, ...tokenizeKokoro('həlˈoʊ').ids, 0]);
    expect(calls[2]!.style[0]).toBe(100 + 5); // bf_emma (base 100), 6 tokens → row 5
    expect(calls[0]!.style[0]).toBeLessThan(100); // af_heart
  });

  it('<lang xml:lang> phonemises its text in that language (British "hello" inside American text)', async () => {
    const blocks: Float32Array[] = [];
    for await (const b of fed.synthesize('<speak>Hello <lang xml:lang="en-GB-x-rp">hello</lang></speak>')) blocks.push(b.channels[0]!);
    const [us, gb] = await Promise.all(['en-us', 'en-gb-x-rp'].map((voice) => phonemizeSentences(['hello'], { voice, punctuation: 'kokoro' })));
    expect(us![0]).not.toBe(gb![0]);
    expect(blocks.map((b) => decodeKokoro(b)[0]!.ids)).toEqual([
      [0, ...tokenizeKokoro(us![0]!).ids, 0],
      [0, ...tokenizeKokoro(gb![0]!).ids, 0],
    ]);
  });

  it('<phoneme ph> with a symbol Kokoro does not have is bad data (65) naming it', async () => {
    const run = async (): Promise<void> => {
      for await (const _ of fed.synthesize('<speak><phoneme ph="hʬ">x</phoneme></speak>')) void _;
    };
    await expect(run()).rejects.toMatchObject({ exitCode: 65, code: 'E_SSML_PHONEME', message: expect.stringMatching(/"ʬ" ×1/) });
  });

  it('subtitles show the words as written in the source, punctuation after markup included', async () => {
    const src = '<speak>Call <sub alias="World Wide Web">WWW</sub>, <emphasis>now</emphasis>.</speak>';
    const r = await synthesizeToSink(timed, src, memorySink(), { timestamps: true });
    expect(buildCues(r.timestamps!, src).map((c) => c.text)).toEqual(['Call WWW, now.']);
  });

  it('timestamps stay exact across break, prosody, sub, say-as, phoneme and voice', async () => {
    const src = '<speak>Hello <break time="700ms"/><prosody rate="fast">quick <sub alias="World Wide Web">WWW</sub></prosody> <voice name="bf_emma">call <say-as interpret-as="digits">42</say-as> <phoneme ph="bˈaɪ">goodbye</phoneme></voice></speak>';
    const sink = memorySink();
    const r = await synthesizeToSink(timed, src, sink, { timestamps: true, speed: 1.2 });
    const ts = r.timestamps as Timestamps;
    const x = sink.samples();
    expect(ts.estimated).toBe(false);
    expect(ts.sentences.flatMap((s) => s.words.map((w) => w.text))).toEqual(['Hello', 'quick', 'WWW', 'call', '42', 'goodbye']);
    for (const w of ts.sentences.flatMap((s) => s.words)) expect(src.slice(w.start, w.end)).toBe(w.text);
    // The break: 0.7 s of silence (plus the trimmed margins) between "Hello" and "quick".
    expect(ts.sentences[1]!.startSec - ts.sentences[0]!.endSec).toBeGreaterThanOrEqual(0.7);
    expect(ts.sentences[1]!.startSec - ts.sentences[0]!.endSec).toBeLessThan(0.8);
    let from = 0;
    for (const s of ts.sentences) {
      s.phonemes.forEach((p, i) => {
        if (p.endSec <= p.startSec) return;
        const t = timingTruth(x, from, i + 1, KOKORO_VOCAB.get(p.phoneme), 1);
        expect(Math.abs(p.startSec * 24000 - t[0])).toBeLessThanOrEqual(600);
        expect(Math.abs(p.endSec * 24000 - t[1])).toBeLessThanOrEqual(600);
      });
      from = Math.round(s.endSec * 24000);
    }
  });
});

describe('SSML through Piper and the CLI', () => {
  const voice = join(dir, 'multi.onnx');
  beforeAll(() => {
    writeFileSync(voice, buildPiperModel({ multiSpeaker: true }));
    writeFileSync(`${voice}.json`, JSON.stringify(piperConfig({ multiSpeaker: true })));
  });

  it('<voice name> picks a Piper speaker; <phoneme> is checked against phoneme_id_map', async () => {
    const session = await createSession(voice, { device: 'cpu', threads: 1 });
    const model = createPiperModel(session, await loadPiperConfig(voice), { id: 'p', loadSeconds: 0 });
    try {
      const sids: Array<number | undefined> = [];
      for await (const b of model.synthesize('<speak>A <voice name="carol">b</voice> c</speak>')) sids.push(decodePiper(b.channels[0]!, true).sid);
      expect(sids).toEqual([0, 2, 0]); // carol is speaker 2 of the fixture's map
      const bad = async (): Promise<void> => {
        for await (const _ of model.synthesize('<speak><phoneme ph="ʬa">x</phoneme></speak>')) void _;
      };
      await expect(bad()).rejects.toMatchObject({ exitCode: 65, code: 'E_SSML_PHONEME' });
    } finally {
      await model.dispose();
    }
  });

  it('malformed SSML from the CLI: exit 65 with line and column, no output file', async () => {
    const out = join(dir, 'bad.wav');
    const r = await runTtsCli(['<speak>\n  Hello <b>world</speak>', '-m', voice, '-o', out], { STEMKIT_RUNTIME_DIR: join(dir, 'run'), STEMKIT_CACHE_DIR: join(dir, 'cache') });
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/SSML error at line 2, column 24: unexpected close tag/);
    expect(existsSync(out)).toBe(false);
  });

  it('--ssml forces SSML reading: text outside <speak> is an error', async () => {
    const r = await runTtsCli(['Hello', '--ssml', '-m', voice, '-o', join(dir, 'x.wav')], { STEMKIT_RUNTIME_DIR: join(dir, 'run'), STEMKIT_CACHE_DIR: join(dir, 'cache') });
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/SSML error at line 1, column \d+: /);
  });
});
