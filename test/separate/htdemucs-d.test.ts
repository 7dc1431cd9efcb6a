/**
 * HTDemucs export contract D (StemSplit/demucs-onnx: `mix` [1,2,343980] → `stems` [1,S,2,343980], STFT inside the
 * graph) against a model built in code whose output depends on the segment it is given (a square term and the
 * segment mean). The expected stems come from an independent float64 transcription of demucs's own track pipeline
 * (api.py normalisation by the mono mix's mean and unbiased std; apply.py split=True, overlap 0.25, triangular
 * weights, centred zero-padded chunks, center_trim; model-io.md §1.5), so a wrong chunk placement, weight, padding or
 * (de)normalisation changes the result far beyond the tolerance.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession } from '../../src/runtime/onnx.js';
import { bindHtdemucs, HT } from '../../src/separate/htdemucs.js';
import { loadSeparator } from '../../src/separate/separate.js';
import type { RawAudio } from '../../src/audio/raw-audio.js';
import { htdemucsContractD } from '../helpers/separate-models.js';
import { maxAbsDiff, readAudio, sines, tempDir, testConfig, whiteNoise, writeWav } from '../helpers/separate-fixtures.js';

const RATE = 44100;
/** 2.2 segments: chunks at 0, 257985 and 515970, the last one short (240786), centred with real left context. */
const N = Math.round(2.2 * HT.segment);

interface Behaviour {
  gain: number[];
  square: number[];
  segMean: number[];
}

/**
 * demucs's pipeline in float64 for the model stems[s] = g·x + q·x² + m·mean_t(x) (per channel). `centred: false`
 * is the common simplification (each chunk starts at its offset, zero-padded on the right) for the sensitivity check.
 */
function reference(mix: RawAudio, b: Behaviour, centred = true): Float64Array[][] {
  const [l, r] = mix.channels as [Float32Array, Float32Array];
  const n = l.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += 0.5 * (l[i]! + r[i]!);
  const mu = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (0.5 * (l[i]! + r[i]!) - mu) ** 2;
  const sd = Math.sqrt(ss / (n - 1)) + 1e-8;
  const x = [l, r].map((ch) => Float64Array.from(ch, (v) => (v - mu) / sd));
  const seg = HT.segment;
  const stride = Math.floor(0.75 * seg);
  const half = Math.floor(seg / 2);
  const weight = Float64Array.from({ length: seg }, (_, i) => (i < half ? i + 1 : seg - i) / half);
  const S = b.gain.length;
  const acc = Array.from({ length: S }, () => [new Float64Array(n), new Float64Array(n)]);
  const sumW = new Float64Array(n);
  for (let offset = 0; offset < n; offset += stride) {
    const len = Math.min(seg, n - offset);
    const trim = centred ? Math.floor((seg - len) / 2) : 0; // center_trim
    const start = offset - trim; // TensorChunk.padded: centred, zeros outside the track
    for (let c = 0; c < 2; c++) {
      let m = 0;
      for (let i = 0; i < seg; i++) {
        const t = start + i;
        if (t >= 0 && t < n) m += x[c]![t]!;
      }
      m /= seg;
      for (let i = 0; i < len; i++) {
        const v = x[c]![start + trim + i]!;
        for (let s = 0; s < S; s++) acc[s]![c]![offset + i] += weight[i]! * (b.gain[s]! * v + b.square[s]! * v * v + b.segMean[s]! * m);
      }
    }
    for (let i = 0; i < len; i++) sumW[offset + i] += weight[i]!;
  }
  return acc.map((st) => st.map((ch) => ch.map((v, i) => (v / sumW[i]!) * sd + mu)));
}

describe('HTDemucs contract D (STFT inside the graph)', () => {
  const tmp = tempDir();
  const config = testConfig(tmp.dir);
  const mix = sines(N, RATE, 2, [55, 220, 1000, 3000], 0.3);
  // Noise, a DC offset (μ ≠ 0) and a slow 0.3 Hz swell, so the segment means differ per chunk and with placement.
  const noise = whiteNoise(N, 0.05, 7);
  for (const ch of mix.channels) for (let i = 0; i < N; i++) ch[i] = ch[i]! + noise[i]! + 0.03 + 0.2 * Math.sin((2 * Math.PI * 0.3 * i) / RATE);
  const mixPath = join(tmp.dir, 'mix.wav');
  const fileOpts = { outDir: join(tmp.dir, 'out'), bits: 32 as const, clip: 'none' as const, force: true };
  const behaviour: Behaviour = { gain: [0.1, 0.2, 0.3, 0.4], square: [0.05, -0.02, 0.01, 0.03], segMean: [2, -1, 0.5, 3] };

  beforeAll(async () => {
    await writeWav(mixPath, mix);
  });
  afterAll(() => tmp.cleanup());

  it('binds by rank: one waveform in, one [B,S,2,L] out, the stem count from the output', async () => {
    const path = join(tmp.dir, 'bind.onnx');
    htdemucsContractD(path, [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]);
    const s = await createSession(path, { device: 'cpu', threads: 1 });
    try {
      expect(bindHtdemucs(s.inputs, s.outputs, path)).toEqual({ contract: 'D', audioIn: 'mix', waveOut: 'stems', stems: 6, fixedBatch: 1 });
    } finally {
      await s.dispose();
    }
  });

  it('the track pipeline matches demucs: normalisation, centred zero-padded chunks, triangular overlap-add', async () => {
    const path = join(tmp.dir, 'd.onnx');
    htdemucsContractD(path, behaviour.gain, behaviour.square, behaviour.segMean);
    const sep = await loadSeparator({ model: path }, { config });
    try {
      expect(sep.stems).toEqual(['drums', 'bass', 'other', 'vocals']);
      const r = await sep.separateFile(mixPath, fileOpts);
      expect(r.error).toBeUndefined();
      const want = reference(mix, behaviour);
      for (const [k, stem] of sep.stems.entries()) {
        const got = await readAudio(r.outputs[stem]!);
        expect(got.channels[0]!.length).toBe(N);
        // float32 model arithmetic and normalisation against float64: values are O(1), errors O(1e-6).
        for (let c = 0; c < 2; c++) expect(maxAbsDiff(got.channels[c]!, want[k]![c]!)).toBeLessThan(2e-5);
      }
    } finally {
      await sep.dispose();
    }
  }, 60_000);

  it('the reference is sensitive: chunks without centring would differ by far more than the tolerance', () => {
    // The segment-mean term differs between the centred short last chunk and one starting at its offset.
    const want = reference(mix, behaviour);
    const uncentred = reference(mix, behaviour, false);
    expect(maxAbsDiff(want[3]![0]!, uncentred[3]![0]!)).toBeGreaterThan(1e-2);
  });

  it('a bag of D specialists (htdemucs_ft): stem k comes from specialist k; vocals alone needs only the vocals file', async () => {
    const dir = join(tmp.dir, 'ft');
    mkdirSync(dir, { recursive: true });
    const names = ['drums', 'bass', 'other', 'vocals'];
    // Specialist k outputs all four rows; only row k counts (one-hot bag weights). Row k has gain (k+1)/10, the
    // others a gain of 9 that would show at once if a wrong row were taken.
    names.forEach((stem, k) => {
      const gain = names.map((_, j) => (j === k ? (k + 1) / 10 : 9));
      htdemucsContractD(join(dir, `htdemucs_ft_${stem}.onnx`), gain, [0, 0, 0, 0], [0, 0, 0, 0]);
    });
    const sep = await loadSeparator({ model: 'htdemucs_ft', modelPath: dir }, { config });
    try {
      const r = await sep.separateFile(mixPath, fileOpts);
      expect(r.error).toBeUndefined();
      for (const [k, stem] of names.entries()) {
        const want = reference(mix, { gain: [(k + 1) / 10], square: [0], segMean: [0] })[0]!;
        const got = await readAudio(r.outputs[stem]!);
        for (let c = 0; c < 2; c++) expect(maxAbsDiff(got.channels[c]!, want[c]!)).toBeLessThan(2e-5);
      }
    } finally {
      await sep.dispose();
    }
    // Only the vocals specialist present: --stems vocals still runs.
    const only = join(tmp.dir, 'ft-vocals');
    mkdirSync(only, { recursive: true });
    htdemucsContractD(join(only, 'htdemucs_ft_vocals.onnx'), [9, 9, 9, 0.4], [0, 0, 0, 0], [0, 0, 0, 0]);
    const voc = await loadSeparator({ model: 'htdemucs_ft', modelPath: only, stems: ['vocals'] }, { config });
    try {
      expect(voc.stems).toEqual(['vocals']);
      const r = await voc.separateFile(mixPath, { ...fileOpts, outDir: join(tmp.dir, 'out-voc') });
      expect(r.error).toBeUndefined();
      const want = reference(mix, { gain: [0.4], square: [0], segMean: [0] })[0]!;
      const got = await readAudio(r.outputs['vocals']!);
      for (let c = 0; c < 2; c++) expect(maxAbsDiff(got.channels[c]!, want[c]!)).toBeLessThan(2e-5);
    } finally {
      await voc.dispose();
    }
  }, 90_000);

  it('rejects wrong D-shaped files with exit 65 (E_MODEL_CONTRACT) and never writes their stems', async () => {
    const { GraphBuilder } = await import('../../src/onnx/builder.js');
    const { writeFileSync, existsSync, readdirSync } = await import('node:fs');
    const axes = (g: InstanceType<typeof GraphBuilder>): string => g.constant(new BigInt64Array([1n]), [1]);
    // An int64 waveform input: another kind of model.
    const intIn = join(tmp.dir, 'int.onnx');
    const g = new GraphBuilder('bad');
    g.input('mix', 'int64', [1, 2, HT.segment]);
    g.op('Unsqueeze', ['mix', axes(g)], {}, 'stems');
    g.output('stems', 'int64', [1, 1, 2, HT.segment]);
    writeFileSync(intIn, g.build());
    await expect(loadSeparator({ model: intIn }, { config })).rejects.toMatchObject({ exitCode: 65, code: 'E_MODEL_CONTRACT' });
    // One stem where the registry's htdemucs has four.
    const one = join(tmp.dir, 'one.onnx');
    htdemucsContractD(one, [1], [0], [0]);
    await expect(loadSeparator({ model: 'htdemucs', modelPath: one }, { config })).rejects.toMatchObject({ exitCode: 65, code: 'E_MODEL_CONTRACT' });
    // A symbolic time axis that hides half-length output: caught at the first run, no stem written.
    const half = join(tmp.dir, 'half.onnx');
    const h = new GraphBuilder('bad2');
    h.input('mix', 'float32', ['B', 2, 'L']);
    const tiled = h.op('Tile', [h.op('Unsqueeze', ['mix', axes(h)]), h.constant(new BigInt64Array([1n, 4n, 1n, 1n]), [4])]);
    const i64 = (v: number): string => h.constant(new BigInt64Array([BigInt(v)]), [1]);
    // The end is computed from the input's length at run time, so no shape inference can see the half length.
    const end = h.op('Div', [h.op('Slice', [h.op('Shape', ['mix']), i64(2), i64(3)]), i64(2)]);
    h.op('Slice', [tiled, i64(0), end, i64(3)], {}, 'stems');
    h.output('stems', 'float32', [1, 4, 2, 'T']);
    writeFileSync(half, h.build());
    const sep = await loadSeparator({ model: half }, { config });
    try {
      const out = join(tmp.dir, 'out-half');
      const r = await sep.separateFile(mixPath, { ...fileOpts, outDir: out });
      expect(r.status).toBe('failed');
      expect(r.error).toMatchObject({ exitCode: 65, code: 'E_MODEL_CONTRACT' });
      // The track's folder may exist (created before the first block), but it holds no file, final or temporary.
      expect(existsSync(join(out, 'mix')) ? readdirSync(join(out, 'mix')) : []).toEqual([]);
    } finally {
      await sep.dispose();
    }
  });
});
