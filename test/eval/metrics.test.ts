import { describe, expect, it } from 'vitest';
import { PairAccumulator, isSilent, mean, median, sdr, siSdr } from '../../src/eval/metrics.js';

// Whole periods of a sinusoid make sin and cos exactly orthogonal, so every SDR below has a closed form.
const N = 44100;
const w = (2 * Math.PI * 441) / N; // 441 whole periods in N samples
const sine = (phase = 0, amp = 1): Float32Array => Float32Array.from({ length: N }, (_, n) => amp * Math.sin(w * n - phase));
const cosine = (amp: number): Float32Array => Float32Array.from({ length: N }, (_, n) => amp * Math.cos(w * n));

// Float32 samples limit agreement with the closed forms to ~1e-6 relative, i.e. ~1e-5 dB.
const DB_TOL = 1e-4;

describe('SDR and SI-SDR against closed forms', () => {
  it('a half-scaled estimate has SDR 20·log10(2) and a huge SI-SDR', () => {
    const s = sine();
    const est = s.map((x) => 0.5 * x);
    expect(sdr([s], [est])).toBeCloseTo(20 * Math.log10(2), 4); // 6.0206 dB
    expect(siSdr([s], [est])).toBeGreaterThan(80); // scale-invariant: the error vanishes up to ε and float rounding
  });

  it('an orthogonal error of amplitude a gives SDR = SI-SDR = −20·log10(a)', () => {
    const s = sine();
    for (const a of [0.1, 0.5, 2]) {
      const e = cosine(a);
      const est = s.map((x, i) => x + e[i]!);
      expect(Math.abs(sdr([s], [est]) - -20 * Math.log10(a))).toBeLessThan(DB_TOL);
      expect(Math.abs(siSdr([s], [est]) - -20 * Math.log10(a))).toBeLessThan(DB_TOL);
    }
  });

  it('a delayed estimate: SDR = 10·log10(1 / (2(1 − cos ωd))), SI-SDR = 20·log10|cot ωd|', () => {
    const s = sine();
    for (const d of [1, 3, 10]) {
      const est = sine(w * d);
      const expectedSdr = 10 * Math.log10(1 / (2 * (1 - Math.cos(w * d))));
      const expectedSi = 20 * Math.log10(Math.abs(Math.cos(w * d) / Math.sin(w * d)));
      expect(Math.abs(sdr([s], [est]) - expectedSdr)).toBeLessThan(1e-3); // small-angle terms lose a little float32 precision
      expect(Math.abs(siSdr([s], [est]) - expectedSi)).toBeLessThan(1e-3);
    }
  });

  it('an inverted estimate has SDR 10·log10(1/4)', () => {
    const s = sine();
    expect(sdr([s], [s.map((x) => -x)])).toBeCloseTo(10 * Math.log10(0.25), 4);
  });

  it('sums over all channels jointly', () => {
    const l = sine();
    const r = sine(0, 0.5);
    const estL = l.map((x) => x * 0.5); // error energy 0.25·N/2
    const estR = r; // no error
    // Σs² = N/2 + 0.25·N/2; Σe² = 0.25·N/2 → SDR = 10·log10(1.25/0.25) = 10·log10(5)
    expect(sdr([l, r], [estL, estR])).toBeCloseTo(10 * Math.log10(5), 4);
  });

  it('accumulating in blocks equals one pass', () => {
    const s = sine();
    const est = s.map((x, i) => x + 0.01 * Math.sin(i * 0.37));
    const acc = new PairAccumulator();
    for (let i = 0; i < N; i += 1000) acc.add([s.subarray(i, i + 1000)], [est.subarray(i, i + 1000)]);
    expect(acc.sdr()).toBeCloseTo(sdr([s], [est]), 9);
    // SI-SDR subtracts nearly equal sums, so block order shows at ~1e-7 dB.
    expect(acc.siSdr()).toBeCloseTo(siSdr([s], [est]), 6);
  });

  it('flags digital silence as silent, and a quiet but real stem as not silent', () => {
    const silent = new PairAccumulator();
    silent.add([new Float32Array(N)], [sine()]);
    expect(isSilent(silent, 1)).toBe(true);
    const quiet = new PairAccumulator();
    quiet.add([sine(0, 0.001)], [sine()]); // −60 dBFS is music, not silence
    expect(isSilent(quiet, 1)).toBe(false);
  });
});

describe('aggregates', () => {
  it('mean and median', () => {
    expect(mean([1, 2, 6])).toBe(3);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(mean([]))).toBe(true);
  });
});
