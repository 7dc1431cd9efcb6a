import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLASSIC_PARAMS,
  REFINER_FEATURES,
  buildClassicModel,
  createClassicModel,
  medianNetwork,
  parseRefiner,
  refinerBasis,
  type RefinerWeights,
} from '../../src/separate/classic.js';
import { createSession } from '../../src/runtime/onnx.js';
import type { StemModel } from '../../src/separate/types.js';
import { separateStream } from '../helpers/stem-stream.js';

const MODEL = join(import.meta.dirname, '..', '..', 'models', 'classic.onnx');
const REFINER = join(import.meta.dirname, '..', '..', 'models', 'classic-refiner.json');
/** The last stage's context: the modulation cues' ±12 frames plus the refiner's ±timeRadius. */
const VCTX = 12 + CLASSIC_PARAMS.refiner.timeRadius;

/** Graphs built by the test (the cascade alone, or with chosen refiner weights), as files for ONNX Runtime. */
const graphDir = mkdtempSync(join(tmpdir(), 'stemkit-classic-test-'));
afterAll(() => rmSync(graphDir, { recursive: true, force: true }));
function graphFile(name: string, refiner?: RefinerWeights): string {
  const path = join(graphDir, `${name}.onnx`);
  writeFileSync(path, buildClassicModel(refiner));
  return path;
}
const STEMS = ['drums', 'bass', 'other', 'vocals'] as const;
const RATE = 44100;
/** Stems of x/4 against stems of x, ×4: measured 1.3e-6 (float32 rounding of values up to ~1). */
const TOL_GAIN = 1e-5;

/** Deterministic LCG noise in [-1, 1). */
function noise(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}

/** A music-like stereo test signal in [-1, 1]: a centred 220 Hz voice-band tone with vibrato, a panned bass, clicks and noise. */
function testSignal(frames: number): Float32Array[] {
  const nl = noise(frames, 1);
  const nr = noise(frames, 2);
  const l = new Float32Array(frames);
  const r = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    const t = i / RATE;
    const centre = 0.3 * Math.sin(2 * Math.PI * 220 * t + 3 * Math.sin(2 * Math.PI * 5 * t));
    const bass = 0.3 * Math.sin(2 * Math.PI * 55 * t);
    const click = i % 11025 < 200 ? 0.3 * nl[i]! : 0;
    l[i] = centre + 0.8 * bass + click + 0.05 * nl[i]!;
    r[i] = centre + 0.4 * bass + click + 0.05 * nr[i]!;
  }
  return [l, r];
}

function separate(model: StemModel, x: Float32Array[], blocks: number[]): Promise<Record<string, Float32Array[]>> {
  return separateStream(model, x, blocks);
}

describe('medianNetwork', () => {
  it.each([3, 5, 9, 17])('selects the exact median of %i values', (m) => {
    const net = medianNetwork(m);
    for (let trial = 0; trial < 500; trial++) {
      const v = Array.from(noise(m, 100 + trial));
      const w = [...v];
      for (const [a, b, keepMin, keepMax] of net) {
        const lo = Math.min(w[a]!, w[b]!);
        const hi = Math.max(w[a]!, w[b]!);
        if (keepMin) w[a] = lo;
        if (keepMax) w[b] = hi;
      }
      expect(w[(m - 1) / 2]).toBe([...v].sort((p, q) => p - q)[(m - 1) / 2]);
    }
  });
  it('needs 124 Min/Max operations for 17 values', () => {
    expect(medianNetwork(17).reduce((a, [, , x, y]) => a + Number(x) + Number(y), 0)).toBe(124);
  });
});

describe('models/classic.onnx', () => {
  it('is what buildClassicModel() generates from models/classic-refiner.json, byte for byte, on every run', () => {
    const weights = parseRefiner(readFileSync(REFINER, 'utf8'));
    const a = buildClassicModel(weights);
    const b = buildClassicModel(parseRefiner(readFileSync(REFINER, 'utf8')));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const sha = (x: Uint8Array): string => createHash('sha256').update(x).digest('hex');
    expect(sha(readFileSync(MODEL))).toBe(sha(a));
    expect(a.length).toBeLessThan(350_000); // the cascade ~90 kB; the refiner (weights, basis, bin maps, priors) ~190 kB
  });

  it('computes the documented cascade masks for a centred, a one-sided and a silent bin', async () => {
    const s = await createSession(graphFile('cascade'), { device: 'cpu', threads: 1 });
    try {
      const fb = CLASSIC_PARAMS.vocals.nFft / 2 + 1;
      const zeros = (frames: number, bins: number) => ({ data: new Float32Array(2 * frames * bins), dims: [2, frames, bins] });
      // Bass and drums stages: 17 frames (1 + 2·8 context); the centre frame is what they output.
      const fbBass = CLASSIC_PARAMS.bass.nFft / 2 + 1;
      const fd = CLASSIC_PARAMS.drums.nFft / 2 + 1;
      // Bass stage: a steady (harmonic) spectrum, identical in L and R, magnitude 1 everywhere except the centre
      // frame's right channel, which is silent (one-sided), and constant over time.
      const bassRe = new Float32Array(2 * 17 * fbBass).fill(1);
      // Vocals stage: 3 output frames plus VCTX = 14 context frames on each side (the modulation cues need
      // ±(2 + 10) frames, the refiner ±2; without it the outer two are unused). Output frames 0–2 of the residual (channels 0–1): identical L/R (centre), left only,
      // silence; the bass and drums estimates (channels 2–3, 4–5) are silent except in frame 2, so the post-filter
      // only matters there. The context frames alternate a centred magnitude 3 and silence, so both modulation
      // ratios are ~0.32–0.36 (numpy mirror of the graph) on the output frames, far above speechModulation (0.05)
      // and sustainModulation (0.1): the speech cue is 1 and the sustain cue moves nothing.
      const vctx = VCTX;
      const W = 3 + 2 * vctx;
      const vRe = new Float32Array(6 * W * fb);
      const at = (c: number, u: number): number => (c * W + vctx + u) * fb;
      for (let u = -vctx; u < 3 + vctx; u++) {
        if ((u >= 0 && u < 3) || (u + vctx) % 2 === 1) continue;
        vRe.fill(3, at(0, u), at(0, u) + fb);
        vRe.fill(3, at(1, u), at(1, u) + fb);
      }
      vRe.fill(1, at(0, 0), at(0, 0) + fb); // L, frame 0
      vRe.fill(1, at(1, 0), at(1, 0) + fb); // R, frame 0
      vRe.fill(1, at(0, 1), at(0, 1) + fb); // L, frame 1
      // Frame 2 (post-filter): centred residual of magnitude 1, bass estimate 1 in both channels, drums 2 in the
      // left channel only (mean-power magnitude √2): shares 1 : 1 : √2 of the mixture.
      vRe.fill(1, at(0, 2), at(0, 2) + fb);
      vRe.fill(1, at(1, 2), at(1, 2) + fb);
      vRe.fill(1, at(2, 2), at(2, 2) + fb);
      vRe.fill(1, at(3, 2), at(3, 2) + fb);
      vRe.fill(2, at(4, 2), at(4, 2) + fb);
      const out = await s.run({
        bass_re: { data: bassRe, dims: [2, 17, fbBass] },
        bass_im: zeros(17, fbBass),
        drums_re: zeros(17, fd),
        drums_im: zeros(17, fd),
        vocals_re: { data: vRe, dims: [6, W, fb] },
        vocals_im: { data: new Float32Array(6 * W * fb), dims: [6, W, fb] },
      });
      const v = out['vocals_mask']!.data as Float32Array;
      const b = out['bass_mask']!.data as Float32Array;
      const bin = (hz: number): number => Math.round((hz * CLASSIC_PARAMS.vocals.nFft) / RATE);
      // Centre frame: vocals own the voice band (and nothing outside it).
      expect(v[bin(1000)]).toBeCloseTo(1, 6); // float32 Pow of an exact 1
      expect(v[bin(50)]).toBe(0);
      expect(v[bin(12000)]).toBe(0);
      // Left-only frame: similarity 0, so no vocals.
      expect(v[fb + bin(1000)]).toBe(0);
      // Post-filter frame: each estimate gets its magnitude share 1/(2+√2) = 0.2929 or √2/(2+√2) = 0.4142 of the
      // mixture; the residual's share goes to vocals inside the voice band, to other outside it, except below
      // otherZeroHz (80 Hz), where other's share goes to bass.
      const fbm = out['final_bass_mask']!.data as Float32Array;
      const fdm = out['final_drums_mask']!.data as Float32Array;
      const share = 1 / (2 + Math.SQRT2);
      for (const hz of [50, 1000, 12000]) {
        expect(fbm[2 * fb + bin(hz)]).toBeCloseTo(hz === 50 ? 2 * share : share, 6); // float32 sqrt/div, ~1e-7
        expect(fdm[2 * fb + bin(hz)]).toBeCloseTo(Math.SQRT2 * share, 6);
      }
      expect(v[2 * fb + bin(1000)]).toBeCloseTo(share, 6);
      expect(v[2 * fb + bin(50)]).toBe(0);
      // Frames without bass/drums estimates: drums 0 (finite in silence); bass only what other may not hold: all of
      // it below 80 Hz, none above 160 Hz.
      expect(Array.from(fdm.subarray(0, 2 * fb)).every((x) => x === 0)).toBe(true);
      for (const u of [0, 1]) {
        expect(fbm[u * fb + bin(50)]).toBeCloseTo(1, 6); // float32 division of equal values
        expect(Array.from(fbm.subarray(u * fb + bin(161), (u + 1) * fb)).every((x) => x === 0)).toBe(true);
      }
      // Bass: a flat spectrum that is constant in time has equal time and frequency medians, so the harmonic share is
      // 1/2; below 150 Hz the band weight is 1, above 400 Hz 0; it is centred, so inside the voice band vocals win.
      expect(b[bin(50)]).toBeCloseTo(0.5, 6); // float32 division of equal values
      expect(b[bin(100)]).toBeCloseTo(0.5, 6);
      expect(b[bin(1000)]).toBe(0);
      expect(b[bin(245)]).toBeCloseTo(0, 6); // centred voice band
      // Drums stage on digital silence: the harmonic share is 0/ε = 0, so the drums mask is exactly 1 (and finite).
      expect(Array.from(out['drums_mask']!.data as Float32Array).every((x) => x === 1)).toBe(true);
    } finally {
      await s.dispose();
    }
  });

  it('applies the modulation cues: a steady centred sound is not speech, a steady low sound is bass, not drums', async () => {
    const s = await createSession(graphFile('cascade'), { device: 'cpu', threads: 1 });
    try {
      const fb = CLASSIC_PARAMS.vocals.nFft / 2 + 1;
      const fbBass = CLASSIC_PARAMS.bass.nFft / 2 + 1;
      const fd = CLASSIC_PARAMS.drums.nFft / 2 + 1;
      const zeros = (ch: number, frames: number, bins: number) => ({ data: new Float32Array(ch * frames * bins), dims: [ch, frames, bins] });
      // 1 output frame + VCTX context frames each side, all identical (no modulation at all): residual centred 1,
      // bass 1 in both channels, drums 2 in the left channel (mean-power magnitude √2).
      const W = 1 + 2 * VCTX;
      const vRe = new Float32Array(6 * W * fb);
      for (const [c, v] of [[0, 1], [1, 1], [2, 1], [3, 1], [4, 2]] as const) vRe.fill(v, c * W * fb, (c + 1) * W * fb);
      const out = await s.run({
        bass_re: zeros(2, 17, fbBass),
        bass_im: zeros(2, 17, fbBass),
        drums_re: zeros(2, 17, fd),
        drums_im: zeros(2, 17, fd),
        vocals_re: { data: vRe, dims: [6, W, fb] },
        vocals_im: zeros(6, W, fb),
      });
      const v = out['vocals_mask']!.data as Float32Array;
      const fbm = out['final_bass_mask']!.data as Float32Array;
      const fdm = out['final_drums_mask']!.data as Float32Array;
      const bin = (hz: number): number => Math.round((hz * CLASSIC_PARAMS.vocals.nFft) / RATE);
      const total = 2 + Math.SQRT2;
      // Speech cue 0: the centred residual stays in other (float32 moving means of equal values, ~1e-7).
      expect(v[bin(1000)]).toBeCloseTo(0, 6);
      expect(fbm[bin(1000)]).toBeCloseTo(1 / total, 6);
      expect(fdm[bin(1000)]).toBeCloseTo(Math.SQRT2 / total, 6);
      // Sustain cue: sustainShare (1/2) of the drums share moves to bass below 160 Hz (at 50 Hz bass also holds
      // other's share, below otherZeroHz); on the log ramp at 200 Hz the weight is 0.5·ln(240/200)/ln(240/160).
      expect(fbm[bin(50)]).toBeCloseTo((2 + 0.5 * Math.SQRT2) / total, 6);
      expect(fdm[bin(50)]).toBeCloseTo((0.5 * Math.SQRT2) / total, 6);
      const hz200 = (bin(200) * RATE) / CLASSIC_PARAMS.vocals.nFft;
      const w200 = (0.5 * Math.log(240 / hz200)) / Math.log(240 / 160);
      expect(fbm[bin(200)]).toBeCloseTo((1 + w200 * Math.SQRT2) / total, 6);
      expect(fdm[bin(200)]).toBeCloseTo(((1 - w200) * Math.SQRT2) / total, 6);
      // Above sustainZeroHz nothing moves.
      expect(fdm[bin(300)]).toBeCloseTo(Math.SQRT2 / total, 6);
    } finally {
      await s.dispose();
    }
  });
});

describe('the classic refiner', () => {
  const fb = CLASSIC_PARAMS.vocals.nFft / 2 + 1;
  const R = CLASSIC_PARAMS.refiner.timeRadius;
  const T = 3;
  const W = T + 2 * VCTX;
  const fbBass = CLASSIC_PARAMS.bass.nFft / 2 + 1;
  const fd = CLASSIC_PARAMS.drums.nFft / 2 + 1;
  const zeros = (ch: number, frames: number, bins: number) => ({ data: new Float32Array(ch * frames * bins), dims: [ch, frames, bins] });
  // The last stage's input: seeded noise spectra for the residual and the bass and drums estimates.
  const vRe = noise(6 * W * fb, 11);
  const vIm = noise(6 * W * fb, 12);
  const feeds = {
    bass_re: zeros(2, 17, fbBass),
    bass_im: zeros(2, 17, fbBass),
    drums_re: zeros(2, 17, fd),
    drums_im: zeros(2, 17, fd),
    vocals_re: { data: vRe, dims: [6, W, fb] },
    vocals_im: { data: vIm, dims: [6, W, fb] },
  };
  /** The three output masks in STEMS order (other = 1 − the rest), per output frame and bin. */
  async function masksOf(path: string): Promise<number[][]> {
    const s = await createSession(path, { device: 'cpu', threads: 1 });
    try {
      const out = await s.run(feeds);
      const v = out['vocals_mask']!.data as Float32Array;
      const b = out['final_bass_mask']!.data as Float32Array;
      const d = out['final_drums_mask']!.data as Float32Array;
      return Array.from(v, (_, i) => [d[i]!, b[i]!, Math.max(0, 1 - d[i]! - b[i]! - v[i]!), v[i]!]);
    } finally {
      await s.dispose();
    }
  }
  /**
   * Weights of a 1-unit net: hidden = feature `j` at the centre frame and bin k − 1 + binTap (default: the bin itself),
   * + 50 (so ReLU passes it); logit_drums = scale · (hidden − 50).
   */
  function probe(j: number, scale: number, binTap = 1): RefinerWeights {
    const F = REFINER_FEATURES.length;
    const conv1 = new Float32Array(F * (2 * R + 1) * 3);
    conv1[(j * (2 * R + 1) + R) * 3 + binTap] = 1;
    return {
      hidden: 1,
      conv1,
      bias1: Float32Array.of(50),
      freqBias: new Float32Array(CLASSIC_PARAMS.refiner.freqBasis),
      conv2: Float32Array.of(1),
      bias2: Float32Array.of(0),
      conv3: Float32Array.of(scale, 0, 0, 0),
      bias3: Float32Array.of(-50 * scale, 0, 0, 0),
    };
  }
  /** The fixed priors: stem `st` (STEMS order) may hold bin k: below 16 Hz only other; vocals only in 120 Hz – 8 kHz, other not in 16–80 Hz. */
  const allowed = (st: number, k: number): number => {
    const hz = (k * RATE) / CLASSIC_PARAMS.vocals.nFft;
    if (hz < 16) return STEMS[st] === 'other' ? 1 : 0;
    if (STEMS[st] === 'vocals') return hz > 120 && hz < 8000 ? 1 : 0;
    return STEMS[st] === 'other' && hz < 80 ? 0 : 1;
  };
  /** The feature a probe net saw at frame u, bin k: drums' logit is log(m_d + 1e-3) + scale·feature; invert the softmax against the other three stems. */
  function seenFeature(got: number[][], u: number, k: number, scale: number): number {
    const c = cascade[u * fb + k]!;
    const g = got[u * fb + k]!;
    const rest = c.reduce((a, m, st) => (st === 0 ? a : a + (m + 1e-3) * allowed(st, k)), 0);
    return Math.log(((g[0]! / (1 - g[0]!)) * rest) / (c[0]! + 1e-3)) / scale;
  }
  let cascade: number[][];
  beforeAll(async () => {
    cascade = await masksOf(graphFile('cascade'));
  });

  it('with a zero last layer, gives softmax(log(cascade mask + 1e-3) + bias) within the priors: the cascade, re-weighted', async () => {
    const bias = [0.3, -0.2, 0.1, 0.5];
    const w: RefinerWeights = { ...probe(0, 0), hidden: 1, conv3: new Float32Array(4), bias3: Float32Array.from(bias) };
    const got = await masksOf(graphFile('zero-last-layer', w));
    let maxErr = 0;
    for (let i = 0; i < cascade.length; i++) {
      const e = cascade[i]!.map((m, k) => (m + 1e-3) * Math.exp(bias[k]!) * allowed(k, i % fb));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let k = 0; k < 4; k++) maxErr = Math.max(maxErr, Math.abs(got[i]![k]! - e[k]! / sum));
    }
    expect(cascade.length).toBe(T * fb);
    expect(maxErr).toBeLessThan(2e-6); // float32 log/exp/softmax of values in [0, 1]
  });

  it('sees the documented features: level (relative and absolute), L/R similarity, harmonic neighbours, the bass mask at f/3', async () => {
    // The features, computed here in float64 from the input: X = residual + bass + drums per channel.
    const logLevel: number[][] = [];
    const level: number[][] = [];
    const sim: number[][] = [];
    for (let u = 0; u < T; u++) {
      const ll: number[] = [];
      const sm: number[] = [];
      for (let k = 0; k < fb; k++) {
        const p = [0, 1].map((c) => {
          let re = 0;
          let im = 0;
          for (let s = 0; s < 3; s++) {
            const i = ((2 * s + c) * W + VCTX + u) * fb + k;
            re += vRe[i]!;
            im += vIm[i]!;
          }
          return re * re + im * im;
        });
        ll.push(Math.log(Math.sqrt((p[0]! + p[1]!) / 2) + 1e-5));
        sm.push((2 * Math.sqrt(p[0]! * p[1]!)) / (p[0]! + p[1]! + 1e-20));
      }
      const mean = ll.reduce((a, b) => a + b, 0) / fb;
      logLevel.push(ll);
      level.push(ll.map((x) => x - mean));
      sim.push(sm);
    }
    const lmBass = (u: number, k: number): number => Math.log(cascade[u * fb + k]![1]! + 1e-3);
    const clampBin = (k: number): number => Math.min(fb - 1, k);
    const expected: Record<string, (u: number, k: number) => number> = {
      level: (u, k) => level[u]![k]!,
      lr_similarity: (u, k) => sim[u]![k]!,
      log_level: (u, k) => logLevel[u]![k]!,
      level_at_half_f: (u, k) => level[u]![Math.floor(k / 2)]!,
      level_at_3f: (u, k) => level[u]![clampBin(3 * k)]!,
      log_mask_bass_at_third_f: (u, k) => lmBass(u, Math.floor(k / 3)),
    };
    for (const [name, want] of Object.entries(expected)) {
      const j = REFINER_FEATURES.indexOf(name as (typeof REFINER_FEATURES)[number]);
      const scale = 0.25;
      const got = await masksOf(graphFile(`probe-${name}`, probe(j, scale)));
      let maxErr = 0;
      // Every 7th bin from bin 2 (below 16 Hz only other is allowed, so the drums logit cannot be seen there).
      for (let u = 0; u < T; u++) {
        for (let k = 2; k < fb; k += 7) maxErr = Math.max(maxErr, Math.abs(seenFeature(got, u, k, scale) - want(u, k)));
      }
      // float32 features and softmax, inverted: ~1e-6 relative on masks away from 0 and 1, ×1/scale.
      expect({ name, ok: maxErr < 2e-3, maxErr }).toMatchObject({ name, ok: true });
    }
  });

  it("mirrors the spectrum at its top edge: the last bin's upper neighbour is the one below it", async () => {
    const j = REFINER_FEATURES.indexOf('lr_similarity');
    const below = await masksOf(graphFile('probe-below', probe(j, 0.25, 0)));
    const above = await masksOf(graphFile('probe-above', probe(j, 0.25, 2)));
    const centre = await masksOf(graphFile('probe-centre', probe(j, 0.25)));
    let maxErr = 0;
    for (let u = 0; u < T; u++) {
      const at = (got: number[][], k: number): number => seenFeature(got, u, k, 0.25);
      // (Bin 0 mirrors too, but its masks are fixed: below 16 Hz everything is other.)
      for (const [got, k, mirror] of [[below, 5, 4], [above, fb - 1, fb - 2], [above, 5, 6]] as const) {
        maxErr = Math.max(maxErr, Math.abs(at(got, k) - at(centre, mirror)));
      }
    }
    expect(maxErr).toBeLessThan(2e-3); // as above: float32 softmax inverted, ×1/scale
  });

  it('uses one frequency triangle per octave from 40 Hz, summing to 1', () => {
    for (const hz of [10, 40, 60, 100, 1000, 5000, 10240, 20000]) {
      let sum = 0;
      for (let j = 0; j < CLASSIC_PARAMS.refiner.freqBasis; j++) sum += refinerBasis(hz, j);
      expect(sum).toBeCloseTo(1, 12);
    }
    expect(refinerBasis(40, 0)).toBe(1);
    expect(refinerBasis(80, 1)).toBeCloseTo(1, 12);
    expect(refinerBasis(60, 0)).toBeCloseTo(1 - Math.log2(1.5), 12);
  });

  it('rejects weights of another format or shape with E_MODEL_CONTRACT', () => {
    const good = JSON.parse(readFileSync(REFINER, 'utf8')) as { tensors: Record<string, { dims: number[] }> };
    expect(() => parseRefiner('{"format":"other"}')).toThrow(expect.objectContaining({ code: 'E_MODEL_CONTRACT' }));
    const bad = structuredClone(good);
    bad.tensors['conv2']!.dims = [1, 2];
    expect(() => parseRefiner(JSON.stringify(bad))).toThrow(/conv2 is missing or not/);
    expect(parseRefiner(JSON.stringify(good)).hidden).toBeGreaterThan(0);
  });
});

describe('classic streaming adapter', () => {
  let model: StemModel;
  beforeAll(async () => {
    model = await createClassicModel(MODEL, { device: 'cpu', threads: 1 });
  });
  afterAll(async () => {
    await model.dispose();
  });

  it('declares the stem contract', () => {
    expect(model.stems).toEqual(['drums', 'bass', 'other', 'vocals']);
    expect(model.sampleRate).toBe(44100);
    expect(model.channels).toBe(2);
    expect(model.needsTrackStats).toBe(false);
  });

  it('returns as many frames as were pushed, and the stems sum to the mix', async () => {
    const x = testSignal(3 * RATE + 123);
    const y = await separate(model, x, [RATE]);
    let maxErr = 0;
    for (let c = 0; c < 2; c++) {
      for (const k of STEMS) expect(y[k]![c]!.length).toBe(x[c]!.length);
      for (let i = 0; i < x[c]!.length; i++) {
        const sum = y['drums']![c]![i]! + y['bass']![c]![i]! + y['other']![c]![i]! + y['vocals']![c]![i]!;
        maxErr = Math.max(maxErr, Math.abs(sum - x[c]![i]!));
      }
    }
    // other = residual in float32: two float32 subtractions of values below ~2 in magnitude.
    expect(maxErr).toBeLessThan(1e-5);
  });

  it('puts a pure panned 55 Hz sine in bass (never in other or vocals, whatever the refiner makes of it)', async () => {
    const n = 3 * RATE;
    const sine = Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 55 * i) / RATE));
    const x = [sine.map((v) => 0.8 * v), sine.map((v) => 0.4 * v)];
    const y = await separate(model, x, [RATE]);
    // Each stem's share of the sine: its projection on the left channel over the middle second (no edge frames).
    const share = (k: string): number => {
      let p = 0;
      let q = 0;
      for (let i = RATE; i < 2 * RATE; i++) {
        p += y[k]![0]![i]! * x[0]![i]!;
        q += x[0]![i]! * x[0]![i]!;
      }
      return p / q;
    };
    // other and vocals masks are exactly 0 below 80 and 120 Hz: what is left is float32 rounding and window leakage.
    expect(Math.abs(share('other'))).toBeLessThan(1e-3);
    expect(Math.abs(share('vocals'))).toBeLessThan(1e-3);
    expect(share('bass')).toBeGreaterThan(0.8); // the refiner's bass/drums split: 0.92 measured
  });

  it('puts a DC offset in other, and nothing of it in the other stems', async () => {
    const x = testSignal(3 * RATE).map((c) => c.map((v) => v + 0.1));
    const y = await separate(model, x, [RATE]);
    // Each stem's mean over the middle second (the edge frames see a step from silence), both channels.
    const mean = (k: string): number => {
      let sum = 0;
      for (let c = 0; c < 2; c++) for (let i = RATE; i < 2 * RATE; i++) sum += y[k]![c]![i]!;
      return sum / (2 * RATE);
    };
    // The test signal's own mean over that second is below 1e-3 (sines over whole periods, clicks and noise).
    expect(mean('other')).toBeCloseTo(0.1, 3);
    for (const k of ['drums', 'bass', 'vocals']) expect(Math.abs(mean(k))).toBeLessThan(1e-3);
  });

  it('the cascade alone splits the test signal by construction', async () => {
    const cascadeModel = await createClassicModel(graphFile('cascade'), { device: 'cpu', threads: 1 });
    const x = testSignal(3 * RATE + 123);
    const y = await separate(cascadeModel, x, [RATE]);
    await cascadeModel.dispose();
    // Not a trivial split: each stem takes roughly its component's share of the energy. Expected shares from the
    // construction: centred tone 0.045 / 0.064 = 0.70 (vocals), panned 55 Hz bass 0.018 / 0.064 = 0.28, clicks 0.008,
    // noise 0.013 (other). Tolerances allow the soft masks' leakage between neighbours.
    const energy = (ch: Float32Array[]): number => ch.reduce((a, v) => a + v.reduce((s, t) => s + t * t, 0), 0);
    const share = (k: string): number => energy(y[k]!) / energy(x);
    expect(share('vocals')).toBeGreaterThan(0.6);
    expect(share('vocals')).toBeLessThan(0.75);
    expect(share('bass')).toBeGreaterThan(0.22);
    expect(share('bass')).toBeLessThan(0.32);
    expect(share('drums')).toBeGreaterThan(0.004);
    expect(share('drums')).toBeLessThan(0.02);
  });

  it("does not depend on the input's level: a quarter of the input gives a quarter of each stem", async () => {
    const x = testSignal(2 * RATE);
    const y = await separate(model, x, [RATE]);
    const q = await separate(model, x.map((c) => c.map((v) => v / 4)), [RATE]);
    let maxDiff = 0;
    for (const k of STEMS) {
      for (let c = 0; c < 2; c++) for (let i = 0; i < x[c]!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(4 * q[k]![c]![i]! - y[k]![c]![i]!));
    }
    // Every feature is a ratio or a log-level contrast; what is left is float32 rounding and the 1e-5 level floor.
    expect(maxDiff).toBeLessThan(TOL_GAIN);
  });

  it('gives the same stems for any block size (within 1e-6)', async () => {
    const x = testSignal(2 * RATE + 77);
    const ref = await separate(model, x, [x[0]!.length]);
    for (const blocks of [[4410], [1000, 30000, 7], [RATE / 2 + 1]]) {
      const y = await separate(model, x, blocks);
      let maxDiff = 0;
      for (const k of STEMS) {
        for (let c = 0; c < 2; c++) {
          expect(y[k]![c]!.length).toBe(x[c]!.length);
          for (let i = 0; i < x[c]!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(y[k]![c]![i]! - ref[k]![c]![i]!));
        }
      }
      // Same frames and masks; only the float64 overlap-add order may differ.
      expect(maxDiff).toBeLessThan(1e-6);
    }
  });

  it('handles inputs shorter than one frame, mono blocks and empty tracks', async () => {
    const x = testSignal(100);
    const y = await separate(model, x, [100]);
    for (const k of STEMS) expect(y[k]![0]!.length).toBe(100);
    const mono = model.createStream({});
    const a = await mono.push({ channels: [x[0]!], sampleRate: RATE });
    const b = await mono.flush();
    expect(a['vocals']!.channels[0]!.length + b['vocals']!.channels[0]!.length).toBe(100);
    const empty = model.createStream({});
    const e = await empty.flush();
    for (const k of STEMS) expect(e[k]!.channels[0]!.length).toBe(0);
  });
});

/**
 * Per song and per stem improvement over the mixture-as-estimate baseline that this model is held to (dB).
 * The target is 8 dB per stem; single songs are below it in one stem: 6.51 dB (music004 bass), 7.20 dB
 * (music004 other). So this floor only guards the measured per-song level against regressions (about 0.3 dB
 * margin); the per-stem means below carry the target. See the README section "The built-in classic model". The
 * refiner never saw these songs, nor any Planet Blupi song (on 18 excerpts of the other six,
 * scripts/make-heldout.mjs, its per-stem means are 11.33/9.35/10.93/10.64 dB).
 */
const FLOOR_DB = 6.2;
/** Per-stem mean improvement over the three songs, measured 10.16/8.93/9.43/10.00 dB, less about 0.4 dB: all above the 8 dB. */
const MEAN_FLOOR_DB: Record<string, number> = { drums: 9.7, bass: 8.5, other: 9.0, vocals: 9.6 };

const shared = process.env['STEMKIT_SHARED_DIR'];
const musicDir = shared ? join(shared, 'eval', 'music') : '';

describe.skipIf(!shared || !existsSync(musicDir))('classic on the shared music set', () => {
  function decode(path: string): Float32Array[] {
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', path, '-f', 'f32le', '-ac', '2', '-'], { maxBuffer: 1 << 28 });
    const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const n = all.length / 2;
    const ch = [new Float32Array(n), new Float32Array(n)];
    for (let i = 0; i < n; i++) {
      ch[0]![i] = all[2 * i]!;
      ch[1]![i] = all[2 * i + 1]!;
    }
    return ch;
  }
  function sdr(ref: Float32Array[], est: Float32Array[]): number {
    let num = 0;
    let den = 0;
    for (let c = 0; c < 2; c++) {
      for (let i = 0; i < ref[c]!.length; i++) {
        num += ref[c]![i]! ** 2;
        den += (ref[c]![i]! - est[c]![i]!) ** 2;
      }
    }
    return 10 * Math.log10((num + 1e-10) / (den + 1e-10));
  }

  const gains: Record<string, number[]> = {};
  it.each(['planetblupi-music000', 'planetblupi-music004', 'planetblupi-music007'])('%s: every stem beats the mixture baseline by the floor', async (song) => {
    const model = await createClassicModel(MODEL, { device: 'cpu', threads: 1 });
    try {
      const mix = decode(join(musicDir, song, 'mixture.flac'));
      const y = await separate(model, mix, [5 * RATE]);
      for (const k of STEMS) {
        const ref = decode(join(musicDir, song, `${k}.flac`));
        const gain = sdr(ref, y[k]!) - sdr(ref, mix);
        (gains[k] ??= []).push(gain);
        expect({ stem: k, ok: gain >= FLOOR_DB, gain }).toMatchObject({ stem: k, ok: true });
      }
    } finally {
      await model.dispose();
    }
  });
  it('keeps its measured per-stem means (a regression guard)', () => {
    for (const k of STEMS) {
      expect(gains[k]).toHaveLength(3);
      const mean = gains[k]!.reduce((a, b) => a + b, 0) / 3;
      expect({ stem: k, ok: mean >= MEAN_FLOOR_DB[k]!, mean }).toMatchObject({ stem: k, ok: true });
    }
  });
});
