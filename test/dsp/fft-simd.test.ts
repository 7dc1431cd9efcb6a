import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RealFFT } from '../../src/dsp/fft.js';
import { isSimdFftSize, loadSimdFft, setSimdFftEnabled, simdRealFFT } from '../../src/dsp/fft-simd.js';
import { getRealFFT, istft, stft, type Spectrogram } from '../../src/dsp/stft.js';
import { hannPeriodic, sqrtHannPeriodic } from '../../src/dsp/windows.js';
import { maxAbs, maxAbsDiff, naiveIrfft, naiveIstft, naiveRfft, naiveStft, noise, specError, type NaiveSpec } from '../helpers/dsp-reference.js';

// The sizes the float32 pipelines run (512 GTCRN/DTLN, 1024 and 4096 classic, 4096 HTDemucs, 5120/6144/7680 MDX-Net),
// the benchmark's 2048, and PFFFT's smallest real sizes.
const PIPELINE_SIZES = [512, 1024, 2048, 4096, 5120, 6144, 7680];
const SMALL_SIZES = [32, 96, 160];
// Float32 arithmetic: unit roundoff 6e-8, an O(n log n) transform grows it by a few times at most. Measured 4–7e-8 of
// the peak for every size here; 3e-7 is 5× above that and still 30× under the 1e-5 the STFT parity bars allow.
const FLOAT32_FFT_BOUND = 3e-7;

beforeAll(async () => {
  expect(await loadSimdFft()).toBe(true); // Node ≥ 20 always has WebAssembly SIMD
});

afterEach(() => setSimdFftEnabled(true));

function simd(n: number): NonNullable<ReturnType<typeof simdRealFFT>> {
  const fft = simdRealFFT(n);
  if (fft === null) throw new Error(`no SIMD FFT for ${n}`);
  return fft;
}

describe('SIMD float32 real FFT against the float64 DFT', () => {
  it.each([...PIPELINE_SIZES, ...SMALL_SIZES])('forward and inverse, n = %i', (n) => {
    const fft = simd(n);
    const x = Float64Array.from(noise(n, n), (v, i) => v + 0.25 * Math.cos(i * 0.7));
    const re = new Float64Array(n / 2 + 1);
    const im = new Float64Array(n / 2 + 1);
    fft.forward(x, re, im);
    const ref = naiveRfft(x);
    const peak = Math.max(maxAbs(ref.re), maxAbs(ref.im));
    expect(Math.max(maxAbsDiff(re, ref.re), maxAbsDiff(im, ref.im)) / peak).toBeLessThan(FLOAT32_FFT_BOUND);
    // DC and Nyquist are real.
    expect(im[0]).toBe(0);
    expect(im[n / 2]).toBe(0);

    const bre = Float64Array.from(noise(n / 2 + 1, 3 * n));
    const bim = Float64Array.from(noise(n / 2 + 1, 5 * n));
    const out = new Float64Array(n);
    fft.inverse(bre, bim, out);
    const want = naiveIrfft(bre, bim, n); // imaginary DC and Nyquist ignored, 1/n included
    expect(maxAbsDiff(out, want) / maxAbs(want)).toBeLessThan(FLOAT32_FFT_BOUND);
  });

  it('forwardWindowed and inverseWindowedAdd take offsets, strides, scale and window like the float64 RealFFT', () => {
    const n = 4096;
    const fast = simd(n);
    const ref = new RealFFT(n);
    const window = hannPeriodic(n);
    const x = noise(n + 37, 9);
    const stride = 16;
    const [ra, ia, rb, ib] = Array.from({ length: 4 }, () => new Float64Array(3 + stride * (n / 2 + 1)));
    fast.forwardWindowed(x, 37, window, 1 / 64, ra!, ia!, 3, stride);
    ref.forwardWindowed(x, 37, window, 1 / 64, rb!, ib!, 3, stride);
    const peak = Math.max(maxAbs(rb!), maxAbs(ib!));
    expect(Math.max(maxAbsDiff(ra!, rb!), maxAbsDiff(ia!, ib!)) / peak).toBeLessThan(FLOAT32_FFT_BOUND);
    // Only the strided slots were written.
    expect(ra![4]).toBe(0);
    expect(ra![2]).toBe(0);

    const base = Float32Array.from(noise(n + 20, 4));
    const a = base.slice();
    const b = base.slice();
    fast.inverseWindowedAdd(rb!, ib!, window, 64, a, 20, 3, stride);
    ref.inverseWindowedAdd(rb!, ib!, window, 64, b, 20, 3, stride);
    // The windowed frame ≈ x (values ≤ 1) plus base: float32 FFT error plus the output's own float32 rounding.
    expect(maxAbsDiff(a, b)).toBeLessThan(5e-7);
    expect(maxAbsDiff(a.subarray(0, 20), base.subarray(0, 20))).toBe(0);
  });

  it('keeps working when another size grows the WASM heap after it was created', () => {
    const small = simd(512);
    const x = noise(512, 2);
    const re1 = new Float64Array(257);
    const im1 = new Float64Array(257);
    small.forward(x, re1, im1);
    // 96 KiB per buffer: more sizes than the initial heap holds.
    for (const n of [30720, 61440, 122880]) simd(n);
    const re2 = new Float64Array(257);
    const im2 = new Float64Array(257);
    small.forward(x, re2, im2);
    expect(maxAbsDiff(re2, re1)).toBe(0);
    expect(maxAbsDiff(im2, im1)).toBe(0);
  });
});

describe('bin-major batches and partial bins', () => {
  it('forwardStaged writes exactly what forwardWindowed gives, bin-major, for bins [0, bins)', () => {
    const n = 512;
    const fft = simd(n);
    const batch = fft.binMajor!;
    const window = hannPeriodic(n);
    const x = Float32Array.from(noise(n + 15 * 64, 11));
    const g = 13; // a partial group
    const stride = 40;
    const bins = 200;
    const re = new Float32Array(bins * stride).fill(7);
    const im = new Float32Array(bins * stride).fill(7);
    for (let u = 0; u < g; u++) batch.loadFrame(u, x, u * 64, window);
    batch.forwardStaged(g, 0.5, re, im, 3, 3, stride, bins);
    const fr = new Float64Array(n / 2 + 1);
    const fi = new Float64Array(n / 2 + 1);
    for (let u = 0; u < g; u++) {
      fft.forwardWindowed(x, u * 64, window, 0.5, fr, fi);
      for (let k = 0; k < bins; k++) {
        expect(re[3 + k * stride + u]).toBe(Math.fround(fr[k]!));
        expect(im[3 + k * stride + u]).toBe(Math.fround(fi[k]!));
      }
    }
    // Outside the written frames nothing moved.
    expect(re[2]).toBe(7);
    expect(re[3 + g]).toBe(7);
  });

  it.each(['float64', 'float32'] as const)('inverseWindowedAdd with bins < n/2+1 equals the zero-filled spectrum (%s)', (precision) => {
    const n = 512;
    const fft = getRealFFT(n, precision);
    const window = hannPeriodic(n);
    const stride = 3;
    const full = n / 2 + 1;
    const spec = Float32Array.from(noise(full * stride * 2, 5));
    for (const bins of [0, 1, 100, n / 2, full]) {
      const zr = new Float32Array(full * stride);
      const zi = new Float32Array(full * stride);
      for (let k = 0; k < bins; k++) {
        zr[k * stride + 1] = spec[k * stride + 1]!;
        zi[k * stride + 1] = spec[full * stride + k * stride + 1]!;
      }
      const a = new Float64Array(n);
      const b = new Float64Array(n);
      fft.inverseWindowedAdd(spec, spec.subarray(full * stride), window, 2, a, 0, 1, stride, bins);
      fft.inverseWindowedAdd(zr, zi, window, 2, b, 0, 1, stride);
      expect(maxAbsDiff(a, b)).toBe(0);
    }
  });
});

describe('choice of FFT', () => {
  it('float32 gets the SIMD FFT for PFFFT sizes and the float64 RealFFT for every other size', () => {
    for (const n of [...PIPELINE_SIZES, ...SMALL_SIZES]) {
      expect(isSimdFftSize(n)).toBe(true);
      expect(getRealFFT(n, 'float32')).toBe(simdRealFFT(n));
      expect(getRealFFT(n, 'float32')).not.toBeInstanceOf(RealFFT);
    }
    // Not multiples of 32 (PFFFT's rule for real transforms), or with a prime factor above 5.
    for (const n of [2, 16, 48, 250, 1000, 3000, 4104, 7000]) {
      expect(simdRealFFT(n)).toBeNull();
      if (n !== 4104 && n !== 7000) expect(getRealFFT(n, 'float32')).toBeInstanceOf(RealFFT);
    }
    expect(getRealFFT(4096)).toBeInstanceOf(RealFFT); // float64 stays the default
  });

  it('setSimdFftEnabled(false) sends float32 requests to the float64 FFT', () => {
    setSimdFftEnabled(false);
    expect(simdRealFFT(4096)).toBeNull();
    expect(getRealFFT(4096, 'float32')).toBeInstanceOf(RealFFT);
    setSimdFftEnabled(true);
    expect(getRealFFT(4096, 'float32')).not.toBeInstanceOf(RealFFT);
  });
});

describe('STFT / iSTFT on the float32 FFT keep the float64 reference bars', () => {
  it.each([
    { nFft: 512, hop: 256, len: 4000, window: sqrtHannPeriodic(512), normalized: false },
    { nFft: 1024, hop: 256, len: 6000, window: hannPeriodic(1024), normalized: false },
    { nFft: 4096, hop: 1024, len: 8000, window: hannPeriodic(4096), normalized: true },
    { nFft: 7680, hop: 1024, len: 5000, window: hannPeriodic(7680), normalized: false },
  ])('nFft $nFft hop $hop: stft within 1e-6 of torch.stft, istft within 1e-6 of torch.istft', ({ nFft, hop, len, window, normalized }) => {
    const x = noise(len, nFft);
    const opts = { nFft, hop, window, normalized, precision: 'float32' as const };
    const ours = stft(x, opts);
    const ref = naiveStft(x, nFft, hop, window, true, normalized);
    // The float64 path's bar in stft.test.ts.
    expect(specError(ours, ref)).toBeLessThan(1e-6);

    // Inverse of the reference spectrogram (float32-rounded, as the model tensors are), against torch.istft's
    // transcription of the same values.
    const bins = nFft / 2 + 1;
    const spec: Spectrogram = { re: new Float32Array(bins * ref.re.length), im: new Float32Array(bins * ref.re.length), bins, frames: ref.re.length };
    const rounded: NaiveSpec = { re: [], im: [] };
    for (let t = 0; t < spec.frames; t++) {
      rounded.re.push(Float64Array.from(Float32Array.from(ref.re[t]!)));
      rounded.im.push(Float64Array.from(Float32Array.from(ref.im[t]!)));
      for (let k = 0; k < bins; k++) {
        spec.re[k * spec.frames + t] = ref.re[t]![k]!;
        spec.im[k * spec.frames + t] = ref.im[t]![k]!;
      }
    }
    const y = istft(spec, { ...opts, length: len });
    const want = naiveIstft(rounded, nFft, hop, window, normalized, len);
    // Same bar as the float64 istft against the naive transcription (stft.test.ts), and it recovers x.
    expect(maxAbsDiff(y, want)).toBeLessThan(1e-6);
    expect(maxAbsDiff(y, x)).toBeLessThan(2e-6);
  });
});

describe('loading', () => {
  // A module hook in a real child process that makes every import of the PFFFT package fail: a command that still
  // works never loaded (or compiled) the WASM module. Uses the build, like the other real-process tests.
  const ROOT = join(import.meta.dirname, '../..');
  const hook = `export async function resolve(s, c, next) { if (s.includes('pffft-wasm')) throw new Error('pffft imported'); return next(s, c); }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify('data:text/javascript,' + encodeURIComponent(hook))});`;
  const node = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'data:text/javascript,' + encodeURIComponent(register), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });

  it('stemkit --help never imports the WASM FFT; loadSimdFft() is what does, and falls back when it cannot', () => {
    const help = node([join(ROOT, 'bin/stemkit.js'), '--help']);
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('separate');
    // Control: under the same hook, loading is attempted, fails, and the float64 FFT serves float32 requests.
    const lib = (p: string) => JSON.stringify(pathToFileURL(join(ROOT, 'dist', p)).href);
    const script = `const { loadSimdFft } = await import(${lib('dsp/fft-simd.js')}); const { getRealFFT } = await import(${lib('dsp/stft.js')});
      const { RealFFT } = await import(${lib('dsp/fft.js')}); console.log(await loadSimdFft(), getRealFFT(4096, 'float32') instanceof RealFFT);`;
    const control = node(['--input-type=module', '-e', script]);
    expect(control.stderr).toBe('');
    expect(control.stdout.trim()).toBe('false true');
  });
});
