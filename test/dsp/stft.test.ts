import { describe, expect, it } from 'vitest';
import { InternalError } from '../../src/errors.js';
import { RealFFT } from '../../src/dsp/fft.js';
import {
  istft,
  istftFrameAdd,
  istftInto,
  reflectPad,
  steadyStateEnvelope,
  stft,
  stftFrame,
  stftFrameCount,
  stftInto,
} from '../../src/dsp/stft.js';
import { hannPeriodic, hannSymmetric, sqrtHannPeriodic } from '../../src/dsp/windows.js';
import {
  maxAbs,
  maxAbsDiff,
  naiveIstft,
  naiveReflectPad,
  naiveStft,
  noise,
  sines,
  specError,
  type NaiveSpec,
} from '../helpers/dsp-reference.js';

describe('windows', () => {
  it('have the torch / numpy values', () => {
    // torch.hann_window(4) = [0, 0.5, 1, 0.5]; numpy.hanning(5) = [0, 0.5, 1, 0.5, 0]; float32 rounding only.
    expect(Array.from(hannPeriodic(4))).toEqual([0, 0.5, 1, 0.5].map(Math.fround));
    const sym = Array.from(hannSymmetric(5));
    [0, 0.5, 1, 0.5, 0].forEach((v, i) => expect(sym[i]).toBeCloseTo(v, 7));
    expect(Array.from(hannSymmetric(1))).toEqual([1]);
    expect(hannSymmetric(0).length).toBe(0);
    const sq = sqrtHannPeriodic(4);
    [0, Math.SQRT1_2, 1, Math.SQRT1_2].forEach((v, i) => expect(sq[i]).toBeCloseTo(v, 7));
  });

  it('sum to the documented constant envelopes', () => {
    // sqrt-Hann 512/256: Σ w² = 1; Hann 4096/1024: Σ w² = 1.5 (float32 window values: 1e-6).
    for (const v of steadyStateEnvelope(sqrtHannPeriodic(512), 256)) expect(v).toBeCloseTo(1, 6);
    for (const v of steadyStateEnvelope(hannPeriodic(4096), 1024)) expect(v).toBeCloseTo(1.5, 6);
  });
});

describe('stft', () => {
  it('reflect-pads without repeating the edge sample (hand-computed frames)', () => {
    // x = [1,2,3,4,5], nFft 4, hop 1, rectangular window: padded = [3,2,1,2,3,4,5,4,3], 6 frames; bin 0 = frame sum.
    const spec = stft(Float32Array.from([1, 2, 3, 4, 5]), { nFft: 4, hop: 1, window: new Float32Array(4).fill(1) });
    expect(spec.bins).toBe(3);
    expect(spec.frames).toBe(6);
    expect(Array.from(spec.re.subarray(0, 6))).toEqual([8, 8, 10, 14, 16, 16]);
    expect(Array.from(reflectPad(Float32Array.from([1, 2, 3, 4, 5]), 2))).toEqual([3, 2, 1, 2, 3, 4, 5, 4, 3]);
  });

  it('keeps reflecting when the pad is longer than the signal, like numpy.pad(mode="reflect")', () => {
    // numpy.pad([1, 2, 3], 4, mode='reflect') = [1 2 3 2 1 2 3 2 1 2 3] (torch refuses this case).
    expect(Array.from(reflectPad(Float32Array.from([1, 2, 3]), 4))).toEqual([1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3]);
    // The STFT's edge frames use the same rule: nFft 8 on 3 samples, rectangular window, bin 0 = frame sums.
    const spec = stft(Float32Array.from([1, 2, 3]), { nFft: 8, hop: 1, window: new Float32Array(8).fill(1) });
    expect(spec.frames).toBe(4);
    expect(Array.from(spec.re.subarray(0, 4))).toEqual([16, 16, 16, 16]);
    // Bin 2 (numpy.fft.rfft of the same frames): −4, −4i, 4, 4i; the frame order is visible here. Exact small integers.
    const bin2 = Array.from({ length: 4 }, (_, t) => [spec.re[2 * 4 + t]!, spec.im[2 * 4 + t]!]);
    const want = [[-4, 0], [0, -4], [4, 0], [0, 4]];
    bin2.forEach(([r, i], t) => {
      expect(r).toBeCloseTo(want[t]![0]!, 5);
      expect(i).toBeCloseTo(want[t]![1]!, 5);
    });
  });

  const cases = [
    { nFft: 16, hop: 4, len: 50, center: true, normalized: false },
    { nFft: 16, hop: 4, len: 50, center: true, normalized: true },
    { nFft: 12, hop: 5, len: 37, center: true, normalized: false },
    { nFft: 30, hop: 7, len: 61, center: true, normalized: true },
    { nFft: 20, hop: 3, len: 11, center: true, normalized: false },
    { nFft: 24, hop: 6, len: 70, center: false, normalized: false },
    { nFft: 512, hop: 256, len: 2000, center: true, normalized: false },
  ];
  it.each(cases)('matches a naive torch.stft: %o', ({ nFft, hop, len, center, normalized }) => {
    const x = noise(len, len);
    const window = hannPeriodic(nFft);
    const ours = stft(x, { nFft, hop, window, center, normalized });
    const ref = naiveStft(x, nFft, hop, window, center, normalized);
    // Float32 outputs: rounding 6e-8 relative plus float64 FFT error; the float32 bound is 1e-4, 1e-6 is
    // tighter and still 10× above what float32 storage costs.
    expect(specError(ours, ref)).toBeLessThan(1e-6);
  });

  it('normalized scales the spectrum by exactly 1/√nFft', () => {
    const x = noise(3000, 4);
    const window = hannPeriodic(6144);
    const a = stft(x, { nFft: 6144, hop: 1024, window });
    const b = stft(x, { nFft: 6144, hop: 1024, window, normalized: true });
    let err = 0;
    for (let i = 0; i < a.re.length; i++) err = Math.max(err, Math.abs(a.re[i]! / Math.sqrt(6144) - b.re[i]!));
    // float32 rounding of values up to ~|a|/78: 1e-6 absolute.
    expect(err).toBeLessThan(1e-6);
  });

  it('rejects inconsistent options', () => {
    const x = new Float32Array(100);
    expect(() => stft(x, { nFft: 16, hop: 4, window: hannPeriodic(15) })).toThrow(InternalError);
    expect(() => stft(x, { nFft: 16, hop: 0, window: hannPeriodic(16) })).toThrow(InternalError);
    expect(() => stft(new Float32Array(10), { nFft: 16, hop: 4, window: hannPeriodic(16), center: false })).toThrow(
      InternalError,
    );
    const spec = stft(x, { nFft: 16, hop: 4, window: hannPeriodic(16) });
    expect(() => istft({ ...spec, bins: 8 }, { nFft: 16, hop: 4, window: hannPeriodic(16) })).toThrow(InternalError);
    expect(() => istft(spec, { nFft: 16, hop: 4, window: hannPeriodic(16), length: -1 })).toThrow(InternalError);
  });
});

describe('istft', () => {
  it.each([
    { nFft: 16, hop: 4, frames: 9, normalized: false, length: 32 },
    { nFft: 16, hop: 4, frames: 9, normalized: true, length: 40 },
    { nFft: 30, hop: 10, frames: 7, normalized: false, length: 60 },
  ])('matches a naive torch.istft on an arbitrary (inconsistent) spectrogram: %o', (c) => {
    const bins = c.nFft / 2 + 1;
    const ref: NaiveSpec = { re: [], im: [] };
    const re = new Float32Array(bins * c.frames);
    const im = new Float32Array(bins * c.frames);
    for (let t = 0; t < c.frames; t++) {
      ref.re.push(Float64Array.from(noise(bins, 2 * t + 1)));
      ref.im.push(Float64Array.from(noise(bins, 2 * t + 2)));
      for (let k = 0; k < bins; k++) {
        re[k * c.frames + t] = ref.re[t]![k]!;
        im[k * c.frames + t] = ref.im[t]![k]!;
      }
    }
    const window = hannPeriodic(c.nFft);
    const ours = istft({ re, im, bins, frames: c.frames }, { ...c, window });
    // The last 4 requested samples run past the overlap-add buffer at length 40: zeros, as torch pads.
    const want = naiveIstft(ref, c.nFft, c.hop, window, c.normalized, c.length);
    expect(ours.length).toBe(c.length);
    // Float32 output of O(1) values: 1e-6.
    expect(maxAbsDiff(ours, want)).toBeLessThan(1e-6);
  });

  it('defaults to length hop·(frames − 1) and crops or zero-pads a requested length', () => {
    const x = noise(5000, 3);
    const opts = { nFft: 512, hop: 128, window: hannPeriodic(512) };
    const spec = stft(x, opts);
    expect(spec.frames).toBe(1 + Math.floor(5000 / 128));
    expect(istft(spec, opts).length).toBe(128 * (spec.frames - 1));
    const short = istft(spec, { ...opts, length: 1000 });
    expect(short.length).toBe(1000);
    // Float32 round trip: 1e-6.
    expect(maxAbsDiff(short, x)).toBeLessThan(1e-6);
    const long = istft(spec, { ...opts, length: 6000 });
    expect(maxAbsDiff(long, x, 0, 5000)).toBeLessThan(1e-6);
    expect(maxAbs(long, 128 * (spec.frames - 1) + 256)).toBe(0);
  });

  it('sets samples with no window energy to 0 instead of dividing by zero (center = false)', () => {
    const x = noise(1024, 5);
    const opts = { nFft: 256, hop: 64, window: hannPeriodic(256), center: false };
    const y = istft(stft(x, opts), opts);
    // Sample 0 sees only w[0]² = 0: torch raises here; we return 0. The rest is reconstructed (float32: 1e-5, since
    // w² near the edges is tiny and amplifies rounding).
    expect(y[0]).toBe(0);
    expect(y.every((v) => Number.isFinite(v))).toBe(true);
    expect(maxAbsDiff(y, x, 4, 1020)).toBeLessThan(1e-5);
  });

  it.each([
    { nFft: 512, hop: 256, window: 'sqrtHann' },
    { nFft: 4096, hop: 1024, window: 'hann' },
    { nFft: 5120, hop: 1024, window: 'hann' },
    { nFft: 6144, hop: 1024, window: 'hann' },
    { nFft: 7680, hop: 1024, window: 'hann' },
  ])('STFT → iSTFT is the identity: $nFft/$hop $window', ({ nFft, hop, window }) => {
    const w = window === 'hann' ? hannPeriodic(nFft) : sqrtHannPeriodic(nFft);
    const x = noise(30000, nFft);
    for (const normalized of [false, true]) {
      const opts = { nFft, hop, window: w, normalized };
      const y = istft(stft(x, opts), { ...opts, length: x.length });
      // With center=true every output sample has a nonzero envelope, so the whole signal (not only the interior)
      // comes back; float32 storage of spectrum and output: 1e-6 on values in [−0.5, 0.5] (issue bound: 1e-5).
      expect(maxAbsDiff(y, x)).toBeLessThan(1e-6);
    }
  });

  it('frame helpers stream the speech models\' 512/256 sqrt-Hann analysis and synthesis', () => {
    const nFft = 512;
    const hop = 256;
    const w = sqrtHannPeriodic(nFft);
    const x = noise(8192, 77);
    const spec = stft(x, { nFft, hop, window: w });
    const fft = new RealFFT(nFft);
    const padded = naiveReflectPad(x, nFft / 2, nFft / 2);
    const re = new Float64Array(nFft / 2 + 1);
    const im = new Float64Array(nFft / 2 + 1);
    const ola = new Float64Array(padded.length);
    let colErr = 0;
    for (let t = 0; t < spec.frames; t++) {
      stftFrame(padded, t * hop, w, fft, re, im);
      for (let k = 0; k <= nFft / 2; k++) colErr = Math.max(colErr, Math.abs(re[k]! - spec.re[k * spec.frames + t]!));
      istftFrameAdd(re, im, w, fft, ola, t * hop);
    }
    // Columns equal the batch STFT up to its float32 storage (values up to ~10: 1e-5).
    expect(colErr).toBeLessThan(1e-5);
    const env = steadyStateEnvelope(w, hop);
    // Away from the first/last frame the envelope is the steady-state one: ola/env gives the input back
    // (float64 path: 1e-12).
    let err = 0;
    for (let j = nFft; j < padded.length - nFft; j++) err = Math.max(err, Math.abs(ola[j]! / env[j % hop]! - padded[j]!));
    expect(err).toBeLessThan(1e-12);
  });
});

describe('model-io.md identity self-tests', () => {
  it('HTDemucs §1.4: pad, normalized STFT, crop to 2048 bins × 336 frames, rebuild, iSTFT, crop', () => {
    const L = 343980;
    const x = sines(L, 44100, [
      [110, 0.3, 0.1],
      [440.5, 0.2, 0.7],
      [1234.5, 0.1, 1.3],
      [5000, 0.05, 2.1],
    ]);
    const le = Math.ceil(L / 1024);
    expect(le).toBe(336);
    const pad = 1536;
    const right = pad + le * 1024 - L;
    expect(right).toBe(1620);
    const padded = Float32Array.from(naiveReflectPad(x, pad, right));
    expect(padded.length).toBe(347136);
    const opts = { nFft: 4096, hop: 1024, window: hannPeriodic(4096), normalized: true };
    const z = stft(padded, opts);
    expect(z.bins).toBe(2049);
    expect(z.frames).toBe(340);
    // What the model would see and return unchanged: bins 0..2047, frames 2..337; the rest rebuilt as zeros.
    const re = new Float32Array(2049 * 340);
    const im = new Float32Array(2049 * 340);
    for (let k = 0; k < 2048; k++) {
      for (let t = 2; t < 2 + le; t++) {
        re[k * 340 + t] = z.re[k * 340 + t]!;
        im[k * 340 + t] = z.im[k * 340 + t]!;
      }
    }
    const y = istft({ re, im, bins: 2049, frames: 340 }, { ...opts, length: 1024 * le + 2 * pad });
    expect(y.length).toBe(347136);
    const out = y.subarray(pad, pad + L);
    // model-io.md: 6e-6 in the interior for a sum of sines (float32 here as in torch); the bound is 1e-5.
    expect(maxAbsDiff(out, x, 1536, 342528)).toBeLessThan(1e-5);
    // The edges are attenuated by design (frames 0, 1, 338, 339 zeroed but counted in the envelope): error there
    // is a sizeable fraction of the 0.65 peak, so this also proves the frame crop took effect.
    expect(maxAbsDiff(out, x, 0, 1536)).toBeGreaterThan(0.05);
    expect(maxAbsDiff(out, x, 342528, L)).toBeGreaterThan(0.05);
  });

  it('MDX-Net §2.3: 7680/1024 unnormalized, bins ≥ 3072 and 0..2 zeroed, no length', () => {
    const chunk = 1024 * 255;
    const x = sines(chunk, 44100, [[440, 0.3]]);
    const opts = { nFft: 7680, hop: 1024, window: hannPeriodic(7680) };
    const spec = stft(x, opts);
    expect(spec.bins).toBe(3841);
    expect(spec.frames).toBe(256);
    for (let k = 0; k < spec.bins; k++) {
      if (k >= 3 && k < 3072) continue;
      spec.re.fill(0, k * 256, (k + 1) * 256);
      spec.im.fill(0, k * 256, (k + 1) * 256);
    }
    const y = istft(spec, opts);
    expect(y.length).toBe(261120);
    const err = maxAbsDiff(y, x);
    // model-io.md: max error ≈ 0.008 from the zeroed low bins (440 Hz leaks into bins 0–2 through the window).
    // Above 0.001 proves the zeroing happened; below 0.01 that nothing else went wrong.
    expect(err).toBeLessThan(0.01);
    expect(err).toBeGreaterThan(0.001);
  });
});

describe('stftInto / istftInto (regions written in place)', () => {
  const opts = { nFft: 4096, hop: 1024, window: hannPeriodic(4096), normalized: true };
  const L = 343980;
  const x = Float32Array.from(noise(L, 11));

  it('stftInto equals stft of the reflect-padded copy, for a frame/bin region written into a larger tensor', () => {
    const padded = Float32Array.from(naiveReflectPad(x, 1536, 1620));
    const z = stft(padded, opts);
    expect(stftFrameCount(L, opts, 1536, 1620)).toBe(340);
    // HTDemucs' model tensor: bins 0..2047, frames 2..337, in a [2048, 336] plane at an offset.
    const size = 2048 * 336;
    const re = new Float32Array(7 + size);
    const im = new Float32Array(3 + size);
    stftInto(x, opts, { padLeft: 1536, padRight: 1620, firstFrame: 2, frames: 336, bins: 2048 }, { re, im, reOffset: 7, imOffset: 3, stride: 336 });
    let diff = 0;
    for (let k = 0; k < 2048; k++) {
      for (let t = 0; t < 336; t++) {
        diff = Math.max(diff, Math.abs(re[7 + k * 336 + t]! - z.re[k * 340 + t + 2]!), Math.abs(im[3 + k * 336 + t]! - z.im[k * 340 + t + 2]!));
      }
    }
    // Exact: the same float64 arithmetic per frame, only the padding is read instead of copied.
    expect(diff).toBe(0);
    expect(re[6]).toBe(0); // nothing before the offset
  });

  it('istftInto adds exactly what istft of the zero-filled spectrogram gives, cropped, and writes nothing else', () => {
    const padded = Float32Array.from(naiveReflectPad(x, 1536, 1620));
    const z = stft(padded, opts);
    const full = { re: new Float32Array(2049 * 340), im: new Float32Array(2049 * 340), bins: 2049, frames: 340 };
    const planeRe = new Float32Array(2048 * 336);
    const planeIm = new Float32Array(2048 * 336);
    for (let k = 0; k < 2048; k++) {
      for (let t = 2; t < 338; t++) {
        full.re[k * 340 + t] = planeRe[k * 336 + t - 2] = z.re[k * 340 + t]!;
        full.im[k * 340 + t] = planeIm[k * 336 + t - 2] = z.im[k * 340 + t]!;
      }
    }
    const y = istft(full, { ...opts, length: 347136 });
    const base = Float32Array.from(noise(L + 10, 5));
    const expected = base.slice();
    for (let i = 0; i < L; i++) expected[5 + i] = expected[5 + i]! + y[1536 + i]!;
    const got = base.slice();
    istftInto({ re: planeRe, im: planeIm, reOffset: 0, imOffset: 0, stride: 336 }, opts, { totalFrames: 340, firstFrame: 2, frames: 336, bins: 2048, start: 1536, length: L, add: true }, got, 5);
    expect(maxAbsDiff(got, expected)).toBe(0);
    // Overwrite mode gives istft's samples themselves.
    const over = new Float32Array(L);
    istftInto({ re: planeRe, im: planeIm, reOffset: 0, imOffset: 0, stride: 336 }, opts, { totalFrames: 340, firstFrame: 2, frames: 336, bins: 2048, start: 1536, length: L }, over);
    expect(maxAbsDiff(over, y.subarray(1536, 1536 + L))).toBe(0);
  });

  it('rejects regions outside the spectrogram or the output', () => {
    const re = new Float32Array(100);
    const view = { re, im: re, reOffset: 0, imOffset: 0, stride: 10 };
    expect(() => stftInto(x, opts, { firstFrame: 0, frames: 400, bins: 10 }, view)).toThrow(InternalError);
    expect(() => istftInto(view, opts, { totalFrames: 4, firstFrame: 2, frames: 3, bins: 10, start: 0, length: 5 }, new Float32Array(5))).toThrow(InternalError);
    expect(() => istftInto(view, opts, { totalFrames: 4, firstFrame: 0, frames: 4, bins: 10, start: 0, length: 6 }, new Float32Array(5))).toThrow(InternalError);
  });
});
