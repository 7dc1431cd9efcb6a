import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { LogEvent } from '../../src/progress.js';
import { createSession } from '../../src/runtime/onnx.js';
import { loadPiperConfig, peakNormalize, piperIds, piperPhrases, resolveSpeaker, type PiperConfig } from '../../src/tts/piper.js';
import { createPiperModel, loadVoiceModel, type TtsModel } from '../../src/tts/synthesize.js';
import { buildPiperModel, decodePiper, piperCallSpans, piperConfig } from '../helpers/tts-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'stemkit-piper-'));

function writeVoice(name: string, multiSpeaker: boolean, extra: Record<string, unknown> = {}): string {
  const model = join(dir, `${name}.onnx`);
  writeFileSync(model, buildPiperModel({ multiSpeaker }));
  writeFileSync(`${model}.json`, JSON.stringify({ ...piperConfig({ multiSpeaker }), ...extra }));
  return model;
}

async function open(model: string): Promise<{ tts: TtsModel; config: PiperConfig }> {
  const config = await loadPiperConfig(model);
  const session = await createSession(model, { device: 'cpu', threads: 1 });
  return { tts: createPiperModel(session, config, { id: model, loadSeconds: 0 }), config };
}

async function blocks(model: TtsModel, text: string, opts: Parameters<TtsModel['synthesize']>[1] = {}): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for await (const b of model.synthesize(text, opts)) out.push(b.channels[0]!);
  return out;
}

/** Canonical ids `^ _ p1 _ … pn _ $` built from the fixture's own map (independent of piperIds). */
function canonical(config: PiperConfig, phonemes: string[]): number[] {
  const id = (p: string): number => config.idMap.get(p)![0]!;
  return [id('^'), id('_'), ...phonemes.flatMap((p) => [id(p), id('_')]), id('$')];
}

describe('Piper ids (model-io §4.3)', () => {
  it('maps to ^ _ p1 _ … pn _ $, merges multi-code-point entries greedily, skips unknown phonemes', async () => {
    const config = await loadPiperConfig(writeVoice('ids', false));
    const r = piperIds('bˈaɪʬ!', config);
    expect(r.ids).toEqual(canonical(config, ['b', 'ˈ', 'aɪ', '!']));
    expect(r.ids.slice(0, 2)).toEqual([1, 0]);
    expect(r.ids.slice(-2)).toEqual([0, 2]);
    expect(config.idMap.get('aɪ')).toEqual([200]);
    expect([...r.missing]).toEqual([['ʬ', 1]]);
    expect(r.phonemes).toBe(4);
  });

  it('peak-normalises per sentence with max(0.01, peak)', () => {
    expect(Array.from(peakNormalize(Float32Array.from([0.5, -0.25])))).toEqual([1, -0.5]);
    // A near-silent sentence is not blown up to full scale: the gain is capped at 1/0.01.
    expect(Array.from(peakNormalize(Float32Array.from([0.002, -0.001])))).toEqual([Math.fround(0.2), Math.fround(-0.1)]);
  });
});

describe('Piper single-speaker voice', () => {
  let tts: TtsModel;
  let config: PiperConfig;
  beforeAll(async () => {
    ({ tts, config } = await open(writeVoice('single', false)));
  });
  afterAll(async () => tts.dispose());

  it('feeds the canonical ids, input_lengths and the config scales; no sid input, none fed', async () => {
    expect(tts.sampleRate).toBe(22050);
    const out = await blocks(tts, 'Bye!');
    expect(out.length).toBe(1);
    const call = decodePiper(out[0]!, false);
    // "Bye!" → espeak "bˈaɪ!" with aɪ merged.
    expect(call.ids).toEqual(canonical(config, ['b', 'ˈ', 'aɪ', '!']));
    expect(call.inputLength).toBe(call.ids.length);
    // Float32 rounding through the fixture's offset and the 1e-4 gain: < 2e-4.
    expect(call.scales[0]).toBeCloseTo(0.667, 3);
    expect(call.scales[1]).toBeCloseTo(1, 3);
    expect(call.scales[2]).toBeCloseTo(0.8, 3);
    expect(call.sid).toBeUndefined();
    // Peak normalisation: the fixture's 10000 marker becomes exactly 1.
    expect(call.gain).toBeCloseTo(1e-4, 10);
    expect(out[0]!.find((v) => v !== 0)).toBe(1);
  });

  it('overrides scales; --speed divides the length scale', async () => {
    const a = decodePiper((await blocks(tts, 'Bye!', { noiseScale: 0.3, lengthScale: 1.7, noiseW: 0.1 }))[0]!, false);
    expect(a.scales.map((v) => Math.round(v * 1000) / 1000)).toEqual([0.3, 1.7, 0.1]);
    const b = decodePiper((await blocks(tts, 'Bye!', { speed: 2 }))[0]!, false);
    expect(Math.round(b.scales[1] * 1000) / 1000).toBe(0.5);
  });

  it('synthesises per sentence with the sentence silence between them', async () => {
    const out = await blocks(tts, 'Bye! Bye? Bye.');
    expect(out.length).toBe(3);
    const lead = (x: Float32Array): number => x.findIndex((v) => v !== 0);
    expect(lead(out[0]!)).toBe(256); // the fixture's own zeros
    expect(lead(out[1]!)).toBe(256 + 4410); // + 0.2 s at 22050 Hz
    expect(decodePiper(out[1]!, false).ids).toEqual(canonical(config, ['b', 'ˈ', 'aɪ', '?']));
    const slow = await blocks(tts, 'Bye! Bye.', { sentenceSilence: 0.5 });
    expect(lead(slow[1]!)).toBe(256 + 11025);
  });

  it('restores , as a phoneme followed by a space inside a sentence', async () => {
    const call = decodePiper((await blocks(tts, 'Bye, bye.'))[0]!, false);
    expect(call.ids).toEqual(canonical(config, ['b', 'ˈ', 'aɪ', ',', ' ', 'b', 'ˈ', 'aɪ', '.']));
  });

  it('a speaker for a single-speaker voice is a usage error', async () => {
    await expect(blocks(tts, 'Bye!', { speaker: 'bob' })).rejects.toMatchObject({ exitCode: 64, code: 'E_UNKNOWN_SPEAKER' });
  });

});

describe('Piper phoneme_silence (model-io §4.2, as the C++ runner)', () => {
  it('splits after each listed phoneme, which ends its phrase; no empty last phrase; no entries: one phrase', () => {
    const silence = new Map([[',', 0.5], ['.', 1]]);
    expect(piperPhrases('hˈaɪ, bˈaɪ.', silence)).toEqual([
      { phonemes: 'hˈaɪ,', silenceSec: 0.5 },
      { phonemes: ' bˈaɪ.', silenceSec: 1 },
    ]);
    expect(piperPhrases('bˈaɪ!', silence)).toEqual([{ phonemes: 'bˈaɪ!', silenceSec: 0 }]);
    expect(piperPhrases('a, b', new Map())).toEqual([{ phonemes: 'a, b', silenceSec: 0 }]);
  });

  it('synthesises each phrase on its own and inserts the silence between them', async () => {
    const model = writeVoice('phrases', false, { inference: { noise_scale: 0.667, length_scale: 1, noise_w: 0.8, phoneme_silence: { ',': 0.5 } } });
    const { tts, config } = await open(model);
    try {
      const out = await blocks(tts, 'Bye, bye.');
      expect(out.length).toBe(1);
      const x = out[0]!;
      const calls = piperCallSpans(x);
      expect(calls.length).toBe(2);
      const [a, b] = calls.map((c) => decodePiper(x.subarray(c.start, c.end), false));
      expect(a!.ids).toEqual(canonical(config, ['b', 'ˈ', 'aɪ', ',']));
      expect(b!.ids).toEqual(canonical(config, [' ', 'b', 'ˈ', 'aɪ', '.']));
      // Each phrase is peak-normalised on its own: the fixture's marker becomes exactly 1 in both.
      expect([x[calls[0]!.start], x[calls[1]!.start]]).toEqual([1, 1]);
      // Between them: the first call's trailing 256 zeros, 0.5 s at 22050 Hz, the second call's leading 256 zeros.
      expect(calls[1]!.start - calls[0]!.end).toBe(256 + 11025 + 256);
    } finally {
      await tts.dispose();
    }
  });
});

describe('Piper multi-speaker voice', () => {
  let tts: TtsModel;
  beforeAll(async () => {
    ({ tts } = await open(writeVoice('multi', true)));
  });
  afterAll(async () => tts.dispose());

  it('feeds sid from a name, an id, or 0 by default', async () => {
    expect(tts.listVoices()).toEqual(['alice', 'bob', 'carol']);
    expect(decodePiper((await blocks(tts, 'Bye!', { speaker: 'bob' }))[0]!, true).sid).toBe(1);
    expect(decodePiper((await blocks(tts, 'Bye!', { speaker: '2' }))[0]!, true).sid).toBe(2);
    expect(decodePiper((await blocks(tts, 'Bye!'))[0]!, true).sid).toBe(0);
  });

  it('unknown speaker → exit 64 listing the valid ones', async () => {
    await expect(blocks(tts, 'Bye!', { speaker: 'dave' })).rejects.toMatchObject({
      exitCode: 64,
      hint: expect.stringContaining('valid speakers: alice, bob, carol (or an id 0–2)'),
    });
    expect(() => resolveSpeaker({ numSpeakers: 3, speakerIdMap: {} }, 7, true)).toThrow(expect.objectContaining({ exitCode: 64 }));
  });
});

describe('Piper bad inputs', () => {
  const config = resolveConfig({ env: {}, cores: 2, flags: { device: 'cpu' } }).config;

  it('a missing .onnx.json is exit 66 naming the expected path', async () => {
    const model = join(dir, 'lonely.onnx');
    writeFileSync(model, buildPiperModel({ multiSpeaker: false }));
    await expect(loadVoiceModel(model, { config })).rejects.toMatchObject({ exitCode: 66, code: 'E_PIPER_CONFIG_MISSING', message: `Piper voice config not found: ${model}.json` });
  });

  it('a text with nothing the voice can say is exit 65 (phoneme_type text, symbols not in the map)', async () => {
    const model = writeVoice('text', false, { phoneme_type: 'text' });
    const tts = await loadVoiceModel(model, { config });
    try {
      expect(tts.kind).toBe('piper');
      const logs: LogEvent[] = [];
      await expect(blocks(tts, '日本語。', { onLog: (e) => logs.push(e) })).rejects.toMatchObject({ exitCode: 65, code: 'E_NO_PHONEMES' });
      expect(logs.some((l) => l.level === 'debug' && l.message.includes('"日" ×1'))).toBe(true);
      // Raw code points (NFD) go straight to the map.
      const call = decodePiper((await blocks(tts, 'abc.'))[0]!, false);
      expect(call.ids).toEqual(canonical(await loadPiperConfig(model), ['a', 'b', 'c', '.']));
    } finally {
      await tts.dispose();
    }
  });

  it('a phoneme_silence key that is not one phoneme, or a bad duration, is exit 65 naming the entry', async () => {
    const voice = (name: string, silence: unknown): string =>
      writeVoice(name, false, { inference: { noise_scale: 0.667, length_scale: 1, noise_w: 0.8, phoneme_silence: silence } });
    await expect(loadPiperConfig(voice('silence-key', { ab: 0.1 }))).rejects.toMatchObject({
      exitCode: 65,
      code: 'E_PIPER_CONFIG',
      message: expect.stringContaining('inference.phoneme_silence["ab"]: the key must be a single phoneme'),
    });
    await expect(loadPiperConfig(voice('silence-neg', { ',': -1 }))).rejects.toMatchObject({ exitCode: 65, message: expect.stringContaining('inference.phoneme_silence[","] must be seconds') });
    await expect(loadPiperConfig(voice('silence-list', [1]))).rejects.toMatchObject({ exitCode: 65, message: expect.stringContaining('not an object') });
  });

  it('a malformed config is exit 65', async () => {
    const model = join(dir, 'broken.onnx');
    writeFileSync(model, buildPiperModel({ multiSpeaker: false }));
    writeFileSync(`${model}.json`, '{"audio": {}}');
    await expect(loadPiperConfig(model)).rejects.toMatchObject({ exitCode: 65, message: expect.stringContaining('audio.sample_rate') });
  });
});
