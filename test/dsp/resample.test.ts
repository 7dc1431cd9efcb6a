import { describe, expect, it } from 'vitest';
import { InternalError } from '../../src/errors.js';
import { createResampler, resampleAudio } from '../../src/dsp/resample.js';
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

// Output samples near either end see the implicit zeros around the input; the longest kernel (44.1→16 kHz) spans
// ±158 input samples = ±58 output samples, so 400 is a safe margin for every pair.
const MARGIN = 400;

describe('resampler quality', () => {
  it.each(PAIRS)('%i → %i Hz: passband flat within ±0.05 dB up to 0.9 × the lower Nyquist, zero delay', (from, to) => {
    const nyq = Math.min(from, to) / 2;
    const n = Math.round(0.25 * from);
    for (const rel of [0.01, 0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9]) {
      const f = rel * nyq;
      const y = oneShot(from, to, [sines(n, from, [[f, 0.9]])])[0]!;
      const fit = fitTone(y, f, to, MARGIN, y.length - MARGIN);
      // ±0.05 dB per tone keeps the peak-to-peak ripple under the 0.1 dB the issue asks for (Kaiser 90 dB design:
      // about ±0.0003 dB). Gain is relative to the 0.9 input amplitude.
      expect(Math.abs(fit.gainDb - 20 * Math.log10(0.9))).toBeLessThan(0.05);
      // Zero group delay: a delay of d output samples would show as a phase of −2πf·d/to; 1e-4 rad is < 0.001 sample.
      expect(Math.abs(fit.phase)).toBeLessThan(1e-4);
      // Everything besides the tone (images when upsampling, aliases when downsampling) below −80 dB.
      expect(fit.residual).toBeLessThan(1e-4);
    }
  });

  it.each(PAIRS.filter(([a, b]) => a > b))(
    '%i → %i Hz: tones from the output Nyquist up attenuated by more than 80 dB',
    (from, to) => {
      const nyq = to / 2;
      const n = Math.round(0.25 * from);
      const rels = [1.0, 1.01, 1.05, 1.2, 1.5, 2, 2.5].filter((r) => r * nyq < from / 2);
      for (const rel of rels) {
        const y = oneShot(from, to, [sines(n, from, [[rel * nyq, 1]])])[0]!;
        // Full-scale input: any output sample above 1e-4 would be an alias louder than −80 dB.
        expect(maxAbs(y, MARGIN, y.length - MARGIN)).toBeLessThan(1e-4);
      }
    },
  );

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
    [44100, 48000],
    [48000, 16000],
    [16000, 44100],
    [44100, 44101], // L = 44101 > 4096: the interpolated-phase path
  ])('%i → %i Hz: output is bit-identical for block sizes 1, 7 and 4096', (from, to) => {
    const input = [noise(9000, 1), noise(9000, 2)];
    const ref = oneShot(from, to, input);
    expect(ref[0]!.length).toBe(Math.round((9000 * to) / from));
    for (const block of [1, 7, 4096]) {
      const got = streamed(from, to, input, block);
      expect(got[0]).toEqual(ref[0]);
      expect(got[1]).toEqual(ref[1]);
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
