import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEvent } from '../../src/progress.js';
import { createSession, type ModelSession } from '../../src/runtime/onnx.js';
import { phonemizeSentences } from '../../src/tts/phonemize.js';
import { createKokoroModel, type TtsModel } from '../../src/tts/synthesize.js';
import { splitSentences } from '../../src/tts/text-split.js';
import { npzVoiceStore } from '../../src/tts/voices.js';
import { KOKORO_SPACE, tokenizeKokoro } from '../../src/tts/vocab.js';
import { KOKORO_ZEROS, buildKokoroModel, decodeKokoro, npz, voiceTable, type KokoroCall, HAS_ESPEAK } from '../helpers/tts-fixtures.js';


/** "həlˈoʊ wˈɜːld." through the §3.2 table: h ə l ˈ o ʊ ␠ w ˈ ɜ ː l d . */
const HELLO_WORLD = [50, 83, 54, 156, 57, 135, 16, 65, 156, 87, 158, 54, 46, 4];

async function makeModel(bytes: Uint8Array, logs: LogEvent[] = []): Promise<{ model: TtsModel; session: ModelSession }> {
  const session = await createSession(bytes, { device: 'cpu', threads: 1 });
  const store = await npzVoiceStore(npz({ af_heart: voiceTable(0), bf_emma: voiceTable(100) }, 6), 'voices.npz');
  return { model: createKokoroModel(session, store, { id: 'fixture', loadSeconds: 0, onLog: (e) => logs.push(e) }), session };
}

async function collect(model: TtsModel, text: string, opts: Parameters<TtsModel['synthesize']>[1] = {}): Promise<Float32Array[]> {
  const blocks: Float32Array[] = [];
  for await (const b of model.synthesize(text, opts)) {
    expect(b.sampleRate).toBe(24000);
    expect(b.channels.length).toBe(1);
    blocks.push(b.channels[0]!);
  }
  return blocks;
}

function expectRow(call: KokoroCall, base: number, tol = 0): void {
  const row = call.ids.length - 2 - 1; // n − 1 for n phoneme tokens (pads excluded)
  for (const c of [0, 1, 128, 255]) {
    if (tol === 0) expect(call.style[c]).toBe(base + row + c / 512);
    else expect(Math.abs(call.style[c]! - (base + row + c / 512))).toBeLessThan(tol);
  }
}

const contracts = [
  { ids: 'tokens', speed: 'float32' },
  { ids: 'input_ids', speed: 'float32' },
  { ids: 'input_ids', speed: 'int32' },
  { ids: 'tokens', speed: 'int32' },
] as const;

describe.each(contracts)('Kokoro contract $ids / speed $speed', (contract) => {
  let model: TtsModel;
  const logs: LogEvent[] = [];
  beforeAll(async () => {
    ({ model } = await makeModel(buildKokoroModel(contract), logs));
  });
  afterAll(async () => model.dispose());

  it('feeds [0, ids…, 0], style row n − 1 and the speed', async () => {
    const blocks = await collect(model, 'Hello world.', { speed: 1.25 });
    expect(blocks.length).toBe(1);
    const calls = decodeKokoro(blocks[0]!);
    expect(calls.length).toBe(1);
    expect(calls[0]!.ids).toEqual([0, ...HELLO_WORLD, 0]);
    // float32 speed is fed as is; int32 exports get the nearest integer ≥ 1, with a warning.
    expect(calls[0]!.speed).toBe(contract.speed === 'float32' ? 1.25 : 1);
    expectRow(calls[0]!, 0);
    expect(calls[0]!.style[0]).toBe(13); // 14 tokens → row 13
    const warned = logs.some((l) => l.level === 'warn' && /integer speed; using 1 instead of 1.25/.test(l.message));
    expect(warned).toBe(contract.speed === 'int32');
  });
});

describe('Kokoro synthesis', () => {
  let model: TtsModel;
  const logs: LogEvent[] = [];
  beforeAll(async () => {
    ({ model } = await makeModel(buildKokoroModel({ ids: 'input_ids', speed: 'float32' }), logs));
  });
  afterAll(async () => model.dispose());

  it('blends voice tables (weights normalised) before selecting the row', async () => {
    const [block] = await collect(model, 'Hello world.', { voice: 'bf_emma:3,af_heart:7' });
    const call = decodeKokoro(block!)[0]!;
    // 0.7·(r + c/512) + 0.3·(100 + r + c/512) = 30 + r + c/512; the +1000 offset leaves ~1e-4 of float32 rounding.
    expectRow(call, 30, 1e-3);
  });

  it('trims each call to the non-silent part and puts the sentence silence between sentences', async () => {
    const blocks = await collect(model, 'Hello world. Hello world.');
    expect(blocks.length).toBe(2);
    const leading = (x: Float32Array): number => x.findIndex((v) => v !== 0);
    // Trimming (frame 2048, hop 512, −60 dB) keeps between 512 and 1023 of the fixture's 4096 leading zeros.
    expect(leading(blocks[0]!)).toBeGreaterThanOrEqual(512);
    expect(leading(blocks[0]!)).toBeLessThan(1024);
    expect(leading(blocks[0]!)).toBeLessThan(KOKORO_ZEROS);
    // The second sentence starts with 0.2 s (4800 samples) of silence plus its own trimmed lead.
    expect(leading(blocks[1]!) - 4800).toBeGreaterThanOrEqual(512);
    expect(leading(blocks[1]!) - 4800).toBeLessThan(1024);
    expect(decodeKokoro(blocks[1]!)[0]!.ids).toEqual([0, ...HELLO_WORLD, 0]);
    const untrimmed = await collect(model, 'Hello world.', { trim: false });
    expect(leading(untrimmed[0]!)).toBe(KOKORO_ZEROS);
    const noGap = await collect(model, 'Hello world. Hello world.', { sentenceSilence: 0 });
    expect(leading(noGap[1]!)).toBeLessThan(1024);
  });

  it('reports progress per sentence, ending at the total', async () => {
    const events: Array<{ done: number; total: number; status: string }> = [];
    await collect(model, 'One. Two. Three.', { onProgress: (e) => events.push({ done: e.done, total: e.total, status: e.status }) });
    expect(events).toEqual([
      { done: 1, total: 3, status: 'progress' },
      { done: 2, total: 3, status: 'progress' },
      { done: 3, total: 3, status: 'done' },
    ]);
  });

  it('says a 20,000-character text completely: every id of the whole phonemisation is fed, ≤ 510 per call', async () => {
    const words = 'the quick brown fox jumps over the lazy dog while seven hundred people watch from a distance'.split(' ');
    const run = (n: number, sep: (i: number) => string): string => Array.from({ length: n }, (_, i) => words[i % words.length] + sep(i)).join('');
    const parts = [
      'Short sentence one. Another short one! And a question?',
      // ~2,900 characters with only commas: must be cut at commas.
      run(520, (i) => (i % 7 === 6 ? ', ' : ' ')).trim() + '.',
      // Semicolons and colons beat commas.
      run(420, (i) => (i % 9 === 8 ? '; ' : i % 5 === 4 ? ', ' : ' ')).trim() + '.',
      // No punctuation at all for ~2,300 characters: cut at word gaps.
      run(420, () => ' ').trim(),
      'Supercalifragilisticexpialidociousandthensomemorelettersaddedtomakeitverylong indeed.',
    ];
    let text = parts.join(' ');
    let i = 0;
    while (text.length < 20_000) text += ` Sentence number ${i++} talks about ${words[i % words.length]}, and ${words[(i + 3) % words.length]}.`;
    expect(text.length).toBeGreaterThanOrEqual(20_000);

    const sentences = splitSentences(text);
    // The whole text's phonemisation (this also fills the phonemizer's cache, so the synthesis below does not pay
    // for the slow WASM espeak-ng a second time; the check is about splitting and feeding, not about espeak).
    const expected = (await phonemizeSentences(sentences, { voice: 'en-us', punctuation: 'kokoro' })).map((ps) => tokenizeKokoro(ps).ids);
    const r = model.synthesize(text);
    const blocks: Float32Array[] = [];
    for await (const b of r) blocks.push(b.channels[0]!);
    expect(blocks.length).toBe(sentences.length);
    let longest = 0;
    let multi = 0;
    let fed = 0;
    blocks.forEach((block, k) => {
      const calls = decodeKokoro(block);
      if (calls.length > 1) multi++;
      const joined: number[] = [];
      for (const c of calls) {
        expect(c.ids[0]).toBe(0);
        expect(c.ids[c.ids.length - 1]).toBe(0);
        const inner = c.ids.slice(1, -1);
        longest = Math.max(longest, inner.length);
        fed += inner.length;
        expect(inner.length).toBeLessThanOrEqual(510);
        expect(c.style[0]).toBe(Math.min(509, inner.length - 1)); // row n − 1 of af_heart (base 0)
        if (joined.length) joined.push(KOKORO_SPACE);
        joined.push(...inner);
      }
      expect(joined).toEqual(expected[k]);
    });
    expect(multi).toBeGreaterThanOrEqual(3); // the comma, semicolon and no-punctuation sentences were split
    expect(longest).toBeGreaterThan(400); // pieces are packed close to the limit, not cut needlessly short
    expect(r.stats.hardCuts).toBe(0);
    expect(r.stats.tokens).toBe(fed);
    expect(r.stats.calls).toBe(blocks.reduce((a, b) => a + decodeKokoro(b).length, 0));
  });

  it('bad inputs: empty text 65, nothing speakable 65, unknown voice 64 (with the list), speed out of range 64', async () => {
    await expect(collect(model, '  \n ')).rejects.toMatchObject({ exitCode: 65, code: 'E_EMPTY_TEXT' });
    await expect(collect(model, '… — !? ((  ))')).rejects.toMatchObject({ exitCode: 65, code: 'E_NO_PHONEMES' });
    await expect(collect(model, 'Hi.', { voice: 'af_nope' })).rejects.toMatchObject({ exitCode: 64, hint: 'valid voices in voices.npz: af_heart, bf_emma' });
    await expect(collect(model, 'Hi.', { speed: 2.5 })).rejects.toMatchObject({ exitCode: 64, message: expect.stringContaining('between 0.5 and 2') });
  });

  it('warns about a sentence with nothing speakable but says the rest', async () => {
    const seen: LogEvent[] = [];
    const blocks = await collect(model, 'Hello world. (…) Hello world.', { onLog: (e) => seen.push(e) });
    expect(blocks.length).toBe(2);
    expect(seen.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual(['nothing speakable in sentence 2: "(…)"']);
  });

  it.skipIf(!HAS_ESPEAK)('other languages go through espeak-ng (--lang de), without the English fixes', async () => {
    const [block] = await collect(model, 'Hallo Welt.', { lang: 'de' });
    // espeak-ng 1.51 says "hˈaloː vˈɛlt": h ˈ a l o ː ␠ v ˈ ɛ l t, then the restored full stop.
    const ipa = execFileSync('espeak-ng', ['-q', '--ipa', '-v', 'de', 'Hallo Welt'], { encoding: 'utf8' }).trim();
    expect(decodeKokoro(block!)[0]!.ids).toEqual([0, ...tokenizeKokoro(`${ipa}.`).ids, 0]);
    if (ipa === 'hˈaloː vˈɛlt') expect(decodeKokoro(block!)[0]!.ids).toEqual([0, 50, 156, 43, 54, 57, 158, 16, 64, 156, 86, 54, 62, 4, 0]);
  });
});
