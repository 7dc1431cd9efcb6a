import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioSink, RawAudio } from '../../src/audio/raw-audio.js';
import { createSession } from '../../src/runtime/onnx.js';
import { synthesizeToSink, type SinkJobOptions } from '../../src/tts/job.js';
import { loadPiperConfig } from '../../src/tts/piper.js';
import { createKokoroModel, createPiperModel, type TtsModel } from '../../src/tts/synthesize.js';
import type { SentenceTimestamps, Timestamps } from '../../src/tts/timing.js';
import { npzVoiceStore } from '../../src/tts/voices.js';
import { KOKORO_VOCAB } from '../../src/tts/vocab.js';
import { TIMING_MARK, buildKokoroTimingModel, buildPiperTimingModel, npz, piperConfig, timingTruth as truth, voiceTable } from '../helpers/tts-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'stemkit-timing-'));

/** Collects what a job writes, concatenated, at the sink's rate. */
function memorySink(): AudioSink & { samples(): Float32Array; rate: number } {
  const blocks: RawAudio[] = [];
  return {
    path: 'mem',
    rate: 0,
    async write(b) {
      blocks.push(b);
      this.rate = b.sampleRate;
    },
    async finish() {},
    async abort() {},
    samples() {
      const n = blocks.reduce((a, b) => a + b.channels[0]!.length, 0);
      const out = new Float32Array(n);
      let off = 0;
      for (const b of blocks) {
        out.set(b.channels[0]!, off);
        off += b.channels[0]!.length;
      }
      return out;
    },
  };
}

async function kokoro(duration: boolean): Promise<TtsModel> {
  const session = await createSession(buildKokoroTimingModel({ duration }), { device: 'cpu', threads: 1 });
  return createKokoroModel(session, await npzVoiceStore(npz({ af_heart: voiceTable(0) }, 0), 'v.npz'), { id: 'k', loadSeconds: 0 });
}

async function piper(alignment: boolean): Promise<TtsModel> {
  const model = join(dir, `piper-${alignment}.onnx`);
  writeFileSync(model, buildPiperTimingModel({ alignment }));
  writeFileSync(`${model}.json`, JSON.stringify(piperConfig({ multiSpeaker: false })));
  const session = await createSession(model, { device: 'cpu', threads: 1 });
  return createPiperModel(session, await loadPiperConfig(model), { id: model, loadSeconds: 0 });
}

async function run(model: TtsModel, text: string, opts: SinkJobOptions = {}): Promise<{ ts: Timestamps; x: Float32Array; rate: number }> {
  const sink = memorySink();
  const r = await synthesizeToSink(model, text, sink, { ...opts, timestamps: true });
  return { ts: r.timestamps!, x: sink.samples(), rate: sink.rate };
}

const WORDS = [['Hello', 'world'], ['It', 'costs', '$5.50', 'friend']];
const TEXT = 'Hello world. It costs $5.50, friend.';

describe.each([
  { name: 'speed 1, 24 kHz', speed: 1, rate: undefined },
  { name: 'speed 1.6, silence 0.5 s', speed: 1.6, rate: undefined, silence: 0.5 },
  { name: 'speed 0.6, resampled to 16 kHz', speed: 0.6, rate: 16000 },
  { name: 'speed 1, resampled to 44.1 kHz, no trimming', speed: 1, rate: 44100, trim: false },
  { name: 'speed 0.6', speed: 0.6, rate: undefined },
  { name: 'no trimming', speed: 1, rate: undefined, trim: false },
])('Kokoro with a duration output: $name', ({ speed, rate, silence, trim }) => {
  let model: TtsModel;
  beforeAll(async () => {
    model = await kokoro(true);
  });
  afterAll(async () => model.dispose());

  it('each word and phoneme points at the samples its tokens produced (within one 600-sample unit)', async () => {
    const { ts, x, rate: outRate } = await run(model, TEXT, { speed, ...(rate ? { outputRate: rate } : {}), ...(silence !== undefined ? { sentenceSilence: silence } : {}), ...(trim === false ? { trim } : {}) });
    expect(outRate).toBe(rate ?? 24000);
    expect(ts.estimated).toBe(false);
    expect(ts.sampleRate).toBe(outRate);
    expect(ts.durationSec).toBeCloseTo(x.length / outRate, 3);
    const unit = (600 / 24000) * outRate;
    expect(ts.sentences.map((s) => s.words.map((w) => w.text))).toEqual(WORDS);
    // "$5.50" is one word of the input, spoken as several ("five dollars and fifty cents").
    const money = ts.sentences[1]!.words[2]!;
    expect(TEXT.slice(money.start, money.end)).toBe('$5.50');
    const ps = ts.sentences[1]!.phonemes;
    const inMoney = ps.slice(ps.findIndex((p) => p.word === 2), ps.findLastIndex((p) => p.word === 2) + 1);
    expect(inMoney.filter((p) => p.phoneme === ' ').length).toBeGreaterThanOrEqual(3);
    expect(inMoney.every((p) => p.word === 2 || p.word === null)).toBe(true);
    let from = 0;
    for (const s of ts.sentences) {
      expect(s.estimated).toBe(false);
      expect(TEXT.slice(s.start, s.end)).toBe(s.text);
      // One call per sentence: phoneme i is token position i + 1 (after the pad).
      const spans = s.phonemes.map((p, i) => (p.endSec > p.startSec ? truth(x, from, i + 1, KOKORO_VOCAB.get(p.phoneme), 1) : undefined));
      s.phonemes.forEach((p, i) => {
        const t = spans[i];
        if (!t) return;
        expect(Math.abs(p.startSec * outRate - t[0])).toBeLessThanOrEqual(unit);
        expect(Math.abs(p.endSec * outRate - t[1])).toBeLessThanOrEqual(unit);
      });
      s.words.forEach((w, k) => {
        const idx = s.phonemes.flatMap((p, i) => (p.word === k ? [i] : []));
        const first = spans[idx[0]!]!;
        const last = spans[idx[idx.length - 1]!]!;
        expect(Math.abs(w.startSec * outRate - first[0])).toBeLessThanOrEqual(unit);
        expect(Math.abs(w.endSec * outRate - last[1])).toBeLessThanOrEqual(unit);
        expect(w.estimated).toBe(false);
      });
      from = Math.round(s.endSec * outRate);
    }
    // The sentence silence lies between the sentences (trimming keeps a short quiet margin on each side).
    const gap = ts.sentences[1]!.startSec - ts.sentences[0]!.endSec;
    expect(gap).toBeGreaterThanOrEqual(silence ?? 0.2);
    expect(gap).toBeLessThan((silence ?? 0.2) + (trim === false ? 0.45 : 0.2));
  });
});

describe('Kokoro without a duration output', () => {
  let model: TtsModel;
  beforeAll(async () => {
    model = await kokoro(false);
  });
  afterAll(async () => model.dispose());

  it('shares each sentence\'s real audio among its phonemes and marks every time estimated', async () => {
    const { ts, x, rate } = await run(model, TEXT, { speed: 1.3 });
    expect(ts.estimated).toBe(true);
    expect(ts.sentences.map((s) => s.words.map((w) => w.text))).toEqual(WORDS);
    let from = 0;
    for (const s of ts.sentences) {
      expect(s.estimated).toBe(true);
      expect(s.words.every((w) => w.estimated) && s.phonemes.every((p) => p.estimated)).toBe(true);
      // The sentence bounds are the call's audio as kept by trimming: the first and last loud samples plus the
      // quiet margin trimming keeps (at most half a 2048-sample frame plus a 512-sample hop).
      const first = truth(x, from, 1, undefined, 1)[0];
      const last = truth(x, first, s.phonemes.length, undefined, 1)[1];
      expect(first - s.startSec * rate).toBeGreaterThanOrEqual(0);
      expect(first - s.startSec * rate).toBeLessThanOrEqual(1536);
      expect(s.endSec * rate - last).toBeGreaterThanOrEqual(0);
      expect(s.endSec * rate - last).toBeLessThanOrEqual(1536);
      // Equal shares: every phoneme lasts the same, to a sample.
      const lens = s.phonemes.map((p) => (p.endSec - p.startSec) * rate);
      // (times are rounded to 0.1 ms = 2.4 samples at each end)
      expect(Math.max(...lens) - Math.min(...lens)).toBeLessThanOrEqual(5);
      from = last;
    }
  });
});

describe.each([
  { name: 'length scale 1', speed: 1, rate: undefined },
  { name: 'speed 1.5 (length scale 2/3), resampled to 48 kHz', speed: 1.5, rate: 48000 },
])('Piper with the alignment output: $name', ({ speed, rate }) => {
  let model: TtsModel;
  beforeAll(async () => {
    model = await piper(true);
  });
  afterAll(async () => model.dispose());

  it('each phoneme owns its id and the pad after it, at the samples they produced', async () => {
    const { ts, x, rate: outRate } = await run(model, 'Hello world. Bye now!', { speed, sentenceSilence: 0.3, ...(rate ? { outputRate: rate } : {}) });
    expect(ts.estimated).toBe(false);
    expect(ts.sentences.map((s) => s.words.map((w) => w.text))).toEqual([['Hello', 'world'], ['Bye', 'now']]);
    // One Piper frame is 256 samples at 22.05 kHz.
    const unit = (256 / 22050) * outRate;
    let from = 0;
    for (const s of ts.sentences) {
      const gain = 1 / TIMING_MARK;
      s.phonemes.forEach((p, i) => {
        // ids: ^ _ p0 _ p1 _ …: phoneme i is its id at position 2 + 2i and the pad at 3 + 2i.
        const a = truth(x, from, 2 + 2 * i, undefined, gain);
        const b = truth(x, a[0], 3 + 2 * i, 0, gain);
        expect(Math.abs(p.startSec * outRate - a[0])).toBeLessThanOrEqual(unit);
        expect(Math.abs(p.endSec * outRate - b[1])).toBeLessThanOrEqual(unit);
      });
      from = Math.round(s.endSec * outRate);
    }
    expect(ts.sentences[1]!.startSec - ts.sentences[0]!.endSec).toBeGreaterThanOrEqual(0.3);
  });
});

describe('Piper without the alignment output', () => {
  it('estimates from the sentence audio and says so', async () => {
    const model = await piper(false);
    try {
      const { ts } = await run(model, 'Hello world. Bye now!');
      expect(ts.estimated).toBe(true);
      const all = ts.sentences.flatMap((s: SentenceTimestamps) => [s, ...s.words, ...s.phonemes]);
      expect(all.every((o) => o.estimated === true)).toBe(true);
      expect(ts.sentences[0]!.words.map((w) => w.text)).toEqual(['Hello', 'world']);
    } finally {
      await model.dispose();
    }
  });
});
