import { beforeAll, describe, expect, it } from 'vitest';
import { InternalError } from '../../src/errors.js';
import { createResampler, describeResampler, resampleAudio } from '../../src/dsp/resample.js';
import { loadSimdFft } from '../../src/dsp/fft-simd.js';
import { maxAbs, noise, sines } from '../helpers/dsp-reference.js';

const PAIRS: Array<[number, number]> = [
  [44100, 44101], // L = 44101 > 4096: interpolated phases
  [44100, 48000],
  [48000, 44100],
  [44100, 16000],
  [16000, 44100],
  [24000, 44100],
  [22050, 44100],
  [44100, 22050],
  [32000, 44100],
  [48000, 16000],
  [22050, 24000],
];

/**
 * Least-squares fit of a·sin(ωn) + b·cos(ωn) to y[from, to): returns amplitude, phase offset and the largest residual.
 * For an input sin(ωn/rateIn) resampled without delay, b ≈ 0 and the residual is whatever the filter let through
 * besides the tone (aliases, images).
 */
function fitTone(y: Float32Array, freq: number, rate: number, from: number, to: number) {
  let ss = 0;
  let cc = 0;
  let sc = 0;
  let ys = 0;
  let yc = 0;
  for (let n = from; n < to; n++) {
    const s = Math.sin((2 * Math.PI * freq * n) / rate);
    const c = Math.cos((2 * Math.PI * freq * n) / rate);
    ss += s * s;
    cc += c * c;
    sc += s * c;
    ys += y[n]! * s;
    yc += y[n]! * c;
  }
  const det = ss * cc - sc * sc;
  const a = (ys * cc - yc * sc) / det;
  const b = (yc * ss - ys * sc) / det;
  let residual = 0;
  for (let n = from; n < to; n++) {
    const fit = a * Math.sin((2 * Math.PI * freq * n) / rate) + b * Math.cos((2 * Math.PI * freq * n) / rate);
    residual = Math.max(residual, Math.abs(y[n]! - fit));
  }
  return { gainDb: 20 * Math.log10(Math.hypot(a, b)), phase: Math.atan2(b, a), residual };
}

function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function oneShot(from: number, to: number, channels: Float32Array[]): Float32Array[] {
  return resampleAudio({ channels, sampleRate: from }, to).channels;
}

function streamed(from: number, to: number, channels: Float32Array[], block: number): Float32Array[] {
  const r = createResampler(from, to, channels.length);
  const parts: Float32Array[][] = [];
  const n = channels[0]!.length;
  for (let i = 0; i < n; i += block) parts.push(r.process(channels.map((c) => c.subarray(i, Math.min(n, i + block)))));
  parts.push(r.flush());
  return channels.map((_, c) => {
    const total = parts.reduce((s, p) => s + p[c]!.length, 0);
    const out = new Float32Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p[c]!, o);
      o += p[c]!.length;
    }
    return out;
  });
}

// Output samples near either end see the implicit zeros around the input; the longest reach (44.1→16 kHz: the
// 609-tap sharp FIR plus the polyphase stage) spans ±312 input samples = ±114 output samples, so 400 is a safe margin.
const MARGIN = 400;

describe('resampler quality', () => {
  // Measured (this file's method, every pair): gain error ≤ 1.8e-6 dB, phase ≤ 7e-8 rad (44100 → 44101, interpolated
  // phases; ≤ 6e-10 elsewhere), residual ≤ 2.0e-7, stopband ≤ 6.8e-8. The bounds leave 2.5–6× margin.
  it.each(PAIRS)('%i → %i Hz: passband flat within ±1e-5 dB up to 0.91 × the lower Nyquist, zero delay', (from, to) => {
    const nyq = Math.min(from, to) / 2;
    const n = Math.round(0.25 * from);
    for (const rel of [0.01, 0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.91]) {
      const f = rel * nyq;
      const y = oneShot(from, to, [sines(n, from, [[f, 0.9]])])[0]!;
      const fit = fitTone(y, f, to, MARGIN, y.length - MARGIN);
      // Gain relative to the 0.9 input amplitude (Kaiser 150 dB design: ripple ~1e-6 dB; the former design's 0.001 dB
      // would fail this).
      expect(Math.abs(fit.gainDb - 20 * Math.log10(0.9))).toBeLessThan(1e-5);
      // Zero group delay: a delay of d output samples would show as a phase of −2πf·d/to; 1e-6 rad is < 1e-5 sample.
      expect(Math.abs(fit.phase)).toBeLessThan(1e-6);
      // Everything besides the tone (images when upsampling, aliases when downsampling, float32 rounding) below
      // 5e-7 of full scale (−126 dB) in every sample.
      expect(fit.residual).toBeLessThan(5e-7);
    }
  });

  it.each(PAIRS.filter(([a, b]) => a < b))(
    '%i → %i Hz: tones in the transition band leave no image above the input Nyquist',
    (from, to) => {
      // A tone at 0.98 × the input Nyquist images to 1.02 ×, just inside the stopband: the hardest image to remove.
      const nyq = from / 2;
      const n = Math.round(0.25 * from);
      for (const rel of [0.95, 0.98, 0.995]) {
        const y = oneShot(from, to, [sines(n, from, [[rel * nyq, 0.9]])])[0]!;
        expect(fitTone(y, rel * nyq, to, MARGIN, y.length - MARGIN).residual).toBeLessThan(5e-7);
      }
    },
  );

  it.each(PAIRS.filter(([a, b]) => a > b))(
    '%i → %i Hz: tones from the output Nyquist up attenuated by more than 134 dB',
    (from, to) => {
      const nyq = to / 2;
      const n = Math.round(0.25 * from);
      const rels = [1.0, 1.001, 1.01, 1.05, 1.2, 1.5, 2, 2.5].filter((r) => r * nyq < from / 2);
      for (const rel of rels) {
        const y = oneShot(from, to, [sines(n, from, [[rel * nyq, 1]])])[0]!;
        // Full-scale input: any output sample above 2e-7 would be an alias louder than −134 dB (soxr's default
        // measures about −132 dB with scripts/bench-resample.mjs; the former design −91 dB).
        expect(maxAbs(y, MARGIN, y.length - MARGIN)).toBeLessThan(2e-7);
      }
    },
  );

  it('uses a short polyphase stage after the FFT stage (the design the README documents)', () => {
    expect(describeResampler(44100, 16000)).toEqual({
      upsample: 1,
      sharpTaps: 609,
      fftSize: 4096,
      polyTaps: 16,
      phases: 160,
      exactPhases: true,
      sharpAttenuationDb: 150,
      polyAttenuationDb: 140,
      passEdge: 0.91,
    });
    expect(describeResampler(44100, 48000)).toMatchObject({ upsample: 2, polyTaps: 20, phases: 80, exactPhases: true });
    expect(describeResampler(44100, 44101)).toMatchObject({ upsample: 2, exactPhases: false });
  });

  it('an impulse comes out centred at the same instant and symmetric (linear phase, no delay)', () => {
    const x = new Float32Array(6000);
    x[3000] = 1;
    const down = oneShot(48000, 16000, [x])[0]!;
    let peak = 0;
    for (let i = 1; i < down.length; i++) if (Math.abs(down[i]!) > Math.abs(down[peak]!)) peak = i;
    expect(peak).toBe(1000);
    // Symmetric kernel: float32 rounding only.
    for (let k = 1; k < 100; k++) expect(Math.abs(down[1000 + k]! - down[1000 - k]!)).toBeLessThan(1e-7);

    const up = oneShot(44100, 48000, [x])[0]!;
    peak = 0;
    for (let i = 1; i < up.length; i++) if (Math.abs(up[i]!) > Math.abs(up[peak]!)) peak = i;
    // 3000 · 48000/44100 = 3265.3: the nearest output sample carries the peak.
    expect(peak).toBe(3265);
  });
});

describe('resampler streaming', () => {
  it.each([
    [44100, 48000], // FFT stage at twice the input rate
    [48000, 16000], // FFT stage at the input rate
    [16000, 44100],
    [44100, 44101], // L = 44101 > 4096: the interpolated-phase path
  ])('%i → %i Hz: output is bit-identical for block sizes 1, 7, 4096 and 20000', (from, to) => {
    // 20000 input samples span several FFT blocks (3487–3655 stage-1 samples each), so block boundaries of the
    // input fall everywhere relative to the FFT blocks.
    const input = [noise(20000, 1), noise(20000, 2)];
    const ref = oneShot(from, to, input);
    expect(ref[0]!.length).toBe(Math.round((20000 * to) / from));
    for (const block of [1, 7, 4096, 20000]) {
      const got = streamed(from, to, input, block);
      // Index of the first differing sample (−1: none); toEqual on long typed arrays takes seconds.
      expect(firstDifference(got[0]!, ref[0]!)).toBe(-1);
      expect(firstDifference(got[1]!, ref[1]!)).toBe(-1);
    }
  });

  it('total length is round(inLength · to / from) for every pair, including empty and tiny inputs', () => {
    for (const [from, to] of PAIRS) {
      for (const len of [0, 1, 2, 3, 999, 4410, 44101]) {
        const out = oneShot(from, to, [new Float32Array(len)]);
        expect(out[0]!.length, `${from}→${to}, ${len} samples`).toBe(Math.round((len * to) / from));
      }
    }
  });

  it('gives each channel the same samples whether it is resampled alone, in a stereo pair or in a triple', () => {
    // Stereo pairs run a joint loop; it must compute exactly what the single-channel loop computes.
    const a = noise(5000, 21);
    const b = noise(5000, 22);
    const c = noise(5000, 23);
    const triple = oneShot(44100, 48000, [a, b, c]);
    expect(triple[0]).toEqual(oneShot(44100, 48000, [a])[0]);
    expect(triple[1]).toEqual(oneShot(44100, 48000, [b])[0]);
    expect(triple[2]).toEqual(oneShot(44100, 48000, [c])[0]);
  });

  it('passes equal rates through as copies', () => {
    const x = noise(100, 3);
    const r = createResampler(44100, 44100, 1);
    const [y] = r.process([x]);
    expect(y).toEqual(x);
    expect(y).not.toBe(x);
    expect(r.flush()[0]!.length).toBe(0);
  });

  it('rejects bad rates, channel mismatches and use after flush', () => {
    expect(() => createResampler(44100.5, 48000, 1)).toThrow(InternalError);
    expect(() => createResampler(44100, 0, 1)).toThrow(InternalError);
    expect(() => createResampler(44100, 48000, 0)).toThrow(InternalError);
    const r = createResampler(44100, 48000, 2);
    expect(() => r.process([new Float32Array(4)])).toThrow(InternalError);
    expect(() => r.process([new Float32Array(4), new Float32Array(5)])).toThrow(InternalError);
    r.flush();
    expect(() => r.process([new Float32Array(4), new Float32Array(4)])).toThrow(InternalError);
  });
});

describe('resampler on the float32 SIMD FFT (precision float32, as the separation pipeline runs it)', () => {
  const f32 = { precision: 'float32' } as const;
  let simd = false;
  beforeAll(async () => {
    simd = await loadSimdFft();
  });

  it('runs on the SIMD FFT where it is loaded: outputs differ from float64 by float32 rounding only', () => {
    const x = [noise(20000, 5)];
    const a = resampleAudio({ channels: x, sampleRate: 44100 }, 16000, f32).channels[0]!;
    const b = oneShot(44100, 16000, x)[0]!;
    expect(a.length).toBe(b.length);
    // Without WebAssembly SIMD the option falls back to the float64 FFT and the outputs are identical.
    expect(firstDifference(a, b) === -1).toBe(!simd);
    expect(maxAbs(a.map((v, i) => v - b[i]!), 0, a.length)).toBeLessThan(1e-6);
  });

  it.each(PAIRS.filter(([a, b]) => a > b))(
    '%i → %i Hz: passband within ±1e-5 dB, stopband below −126 dB',
    (from, to) => {
      const n = Math.round(0.25 * from);
      const nyq = to / 2;
      for (const rel of [0.1, 0.5, 0.91]) {
        const y = resampleAudio({ channels: [sines(n, from, [[rel * nyq, 0.9]])], sampleRate: from }, to, f32).channels[0]!;
        const fit = fitTone(y, rel * nyq, to, MARGIN, y.length - MARGIN);
        expect(Math.abs(fit.gainDb - 20 * Math.log10(0.9))).toBeLessThan(1e-5);
        expect(fit.residual).toBeLessThan(1e-6);
      }
      for (const rel of [1.0, 1.01, 1.2, 2].filter((r) => r * nyq < from / 2)) {
        const y = resampleAudio({ channels: [sines(n, from, [[rel * nyq, 1]])], sampleRate: from }, to, f32).channels[0]!;
        // Measured ≤ 2.2e-7 (the float64 FFT: 6.8e-8); soxr's default measures about −132 dB.
        expect(maxAbs(y, MARGIN, y.length - MARGIN)).toBeLessThan(5e-7);
      }
    },
  );

  it.each([
    [44100, 48000],
    [48000, 16000],
    [16000, 44100],
    [44100, 44101], // interpolated phases: the JavaScript polyphase loop over the float32 stage-1 samples
  ])('%i → %i Hz: streamed output is bit-identical to one-shot output', (from, to) => {
    const input = [noise(20000, 1), noise(20000, 2)];
    const ref = resampleAudio({ channels: input, sampleRate: from }, to, f32).channels;
    for (const block of [7, 4096]) {
      const r = createResampler(from, to, 2, f32);
      const parts: Float32Array[][] = [];
      for (let i = 0; i < 20000; i += block) parts.push(r.process(input.map((c) => c.subarray(i, Math.min(20000, i + block)))));
      parts.push(r.flush());
      for (let c = 0; c < 2; c++) {
        const got = new Float32Array(parts.reduce((s, p) => s + p[c]!.length, 0));
        let o = 0;
        for (const p of parts) {
          got.set(p[c]!, o);
          o += p[c]!.length;
        }
        expect(firstDifference(got, ref[c]!)).toBe(-1);
      }
    }
  });

  it('gives each channel the same samples whether it is resampled alone, in a stereo pair or in a triple', () => {
    // Pairs and single channels run different WASM loops; they must sum in the same order.
    const x = [noise(5000, 21), noise(5000, 22), noise(5000, 23)];
    for (const to of [48000, 16000]) {
      const triple = resampleAudio({ channels: x, sampleRate: 44100 }, to, f32).channels;
      for (let c = 0; c < 3; c++) {
        const alone = resampleAudio({ channels: [x[c]!], sampleRate: 44100 }, to, f32).channels[0]!;
        expect(firstDifference(triple[c]!, alone)).toBe(-1);
      }
    }
  });
});
