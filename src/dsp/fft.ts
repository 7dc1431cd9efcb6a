/**
 * Real FFT for every size n = 2^a·3^b·5^c (n even): 512, 1024, 2048, 4096, 5120, 6144, 7680, …, in float64.
 *
 * This is the reference-accuracy FFT (1e-12 against a direct DFT), used wherever a float64 result is wanted: the
 * plain `stft`/`istft` defaults, the evaluation oracle, the tests' references, and every size PFFFT cannot do.
 * Pipelines whose data is float32 anyway (the separation and speech adapters) ask for the faster float32 WASM SIMD
 * FFT of fft-simd.ts through the same {@link RealTransform} interface (`getRealFFT(n, 'float32')` in stft.ts).
 *
 * Method: the real input of length n is packed as n/2 complex samples z[k] = x[2k] + i·x[2k+1], transformed by a
 * self-sorting (Stockham) mixed-radix complex FFT with radix-8/4/2/3/5 stages and precomputed twiddles, and
 * unpacked into the n/2+1 bins of the real spectrum. Everything runs in float64 on buffers owned by the
 * instance, so no call allocates.
 */
// Bad arguments here come from stemkit's own code or model data, never straight from the user: InternalError (70).
import { InternalError } from '../errors.js';

type Radix = 2 | 3 | 4 | 5 | 8;

interface Stage {
  radix: Radix;
  /** Number of butterflies per stride position (n_cur / radix). */
  m: number;
  /** Distance between neighbouring butterflies' inputs (product of earlier radices). */
  s: number;
  /** Twiddles w^(p·j), w = exp(−2πi / n_cur), stored at p·(radix−1) + (j−1). */
  twr: Float64Array;
  twi: Float64Array;
}

const S3 = Math.sqrt(3) / 2;
const R2 = Math.SQRT1_2;
const C51 = Math.cos((2 * Math.PI) / 5);
const C52 = Math.cos((4 * Math.PI) / 5);
const S51 = Math.sin((2 * Math.PI) / 5);
const S52 = Math.sin((4 * Math.PI) / 5);

/**
 * Radices of m in stage order (8s first, then 4, 2, 3, 5), or null when m has another prime factor.
 * Radix 8 makes fewer passes over the data than radix 4, which is what bounds a scalar JS FFT.
 */
function factorize(m: number): Radix[] | null {
  const out: Radix[] = [];
  let r = m;
  while (r % 8 === 0) {
    out.push(8);
    r /= 8;
  }
  while (r % 4 === 0) {
    out.push(4);
    r /= 4;
  }
  if (r % 2 === 0) {
    out.push(2);
    r /= 2;
  }
  while (r % 3 === 0) {
    out.push(3);
    r /= 3;
  }
  while (r % 5 === 0) {
    out.push(5);
    r /= 5;
  }
  return r === 1 ? out : null;
}

/** True when {@link RealFFT} supports size n (n even and n = 2^a·3^b·5^c). */
export function isSupportedFftSize(n: number): boolean {
  return Number.isInteger(n) && n >= 2 && n % 2 === 0 && factorize(n / 2) !== null;
}

/**
 * The real-FFT operations the STFT, the iSTFT and the streaming adapters use, with the conventions of
 * numpy.fft.rfft / irfft: n/2+1 bins, forward unnormalised, inverse including 1/n, the imaginary parts of DC and
 * Nyquist ignored by the inverse. Implemented in float64 by {@link RealFFT} and in float32 WASM SIMD by fft-simd.ts.
 */
export interface RealTransform {
  readonly n: number;
  /** Forward transform of n real samples into re/im (n/2+1 bins each). */
  forward(input: ArrayLike<number>, re: Float64Array, im: Float64Array): void;
  /** Forward transform of input[offset .. offset+n)·window·scale, bins written at outOffset + k·outStride. */
  forwardWindowed(
    input: ArrayLike<number>,
    offset: number,
    window: ArrayLike<number>,
    scale: number,
    re: Float64Array,
    im: Float64Array,
    outOffset?: number,
    outStride?: number,
  ): void;
  /** Inverse transform (1/n included) of n/2+1 bins into n real samples. */
  inverse(re: ArrayLike<number>, im: ArrayLike<number>, out: Float64Array): void;
  /**
   * Inverse of (re, im)·scale (bin k at inOffset + k·inStride), times window, added into out[offset .. offset+n).
   * Only bins [0, bins) are read (default all n/2+1); the higher ones count as zero.
   */
  inverseWindowedAdd(
    re: ArrayLike<number>,
    im: ArrayLike<number>,
    window: ArrayLike<number>,
    scale: number,
    out: Float64Array | Float32Array,
    offset: number,
    inOffset?: number,
    inStride?: number,
    bins?: number,
  ): void;
  /** Batched bin-major I/O, where the transform has it (see {@link BinMajorBatch}). */
  readonly binMajor?: BinMajorBatch;
}

/**
 * Batched forward transforms of up to {@link BinMajorBatch.maxFrames} frames into bin-major spectrograms (bin k of
 * frame u at offset + k·stride + u), offered by transforms whose per-call copies cost more than the transform itself
 * (the WASM FFT): a group's bins are written in runs of contiguous frames, with no intermediate spectrum.
 */
export interface BinMajorBatch {
  readonly maxFrames: number;
  /** Stages frame u (< maxFrames) of the next forward batch: input[offset .. offset+n)·window. */
  loadFrame(u: number, input: ArrayLike<number>, offset: number, window: ArrayLike<number>): void;
  /** Forward transforms of frames 0..g−1 as staged, times scale; bins [0, bins) written bin-major. */
  forwardStaged(g: number, scale: number, re: Float32Array, im: Float32Array, reOffset: number, imOffset: number, stride: number, bins: number): void;
}

/**
 * Real-input FFT of a fixed size n. Not thread-safe across concurrent callers of the same instance
 * (it reuses internal scratch buffers), which is irrelevant in single-threaded JS.
 */
export class RealFFT implements RealTransform {
  readonly n: number;
  /** n/2: size of the inner complex FFT. */
  private readonly half: number;
  private readonly stages: Stage[];
  /** exp(−2πik/n) for k = 0..n/2, for the real/complex unpacking. */
  private readonly wr: Float64Array;
  private readonly wi: Float64Array;
  private readonly ar: Float64Array;
  private readonly ai: Float64Array;
  private readonly br: Float64Array;
  private readonly bi: Float64Array;
  /** The buffers holding the result of the last run() (ar/ai or br/bi, by the parity of the stage count). */
  private rr: Float64Array;
  private ri: Float64Array;

  /**
   * @param n transform length: even and of the form 2^a·3^b·5^c.
   * @throws InternalError for any other n.
   */
  constructor(n: number) {
    if (!isSupportedFftSize(n)) {
      throw new InternalError(`FFT size ${n} is not supported`, {
        hint: 'use an even size of the form 2^a·3^b·5^c, e.g. 512, 4096, 5120, 6144 or 7680',
      });
    }
    this.n = n;
    const m = n / 2;
    this.half = m;
    const radices = factorize(m) ?? [];
    this.stages = [];
    let s = 1;
    let ncur = m;
    for (const radix of radices) {
      const mm = ncur / radix;
      const twr = new Float64Array(mm * (radix - 1));
      const twi = new Float64Array(mm * (radix - 1));
      for (let p = 0; p < mm; p++) {
        for (let j = 1; j < radix; j++) {
          const a = (-2 * Math.PI * p * j) / ncur;
          twr[p * (radix - 1) + j - 1] = Math.cos(a);
          twi[p * (radix - 1) + j - 1] = Math.sin(a);
        }
      }
      this.stages.push({ radix, m: mm, s, twr, twi });
      s *= radix;
      ncur = mm;
    }
    this.wr = new Float64Array(m + 1);
    this.wi = new Float64Array(m + 1);
    for (let k = 0; k <= m; k++) {
      const a = (-2 * Math.PI * k) / n;
      this.wr[k] = Math.cos(a);
      this.wi[k] = Math.sin(a);
    }
    this.ar = new Float64Array(m);
    this.ai = new Float64Array(m);
    this.br = new Float64Array(m);
    this.bi = new Float64Array(m);
    this.rr = this.ar;
    this.ri = this.ai;
  }

  /**
   * Forward transform, unnormalised (like numpy.fft.rfft).
   * @param input n real samples.
   * @param re receives n/2+1 real parts.
   * @param im receives n/2+1 imaginary parts.
   */
  forward(input: ArrayLike<number>, re: Float64Array, im: Float64Array): void {
    const m = this.half;
    const ar = this.ar;
    const ai = this.ai;
    for (let k = 0; k < m; k++) {
      ar[k] = input[2 * k]!;
      ai[k] = input[2 * k + 1]!;
    }
    this.finishForward(re, im, 1, 0, 1);
  }

  /**
   * Forward transform of input[offset .. offset+n) multiplied sample-wise by `window` and by `scale`, written to
   * re/im at indices outOffset + k·outStride. The fused form of `forward` used by the STFT, so that the windowed frame is
   * never copied.
   */
  forwardWindowed(
    input: ArrayLike<number>,
    offset: number,
    window: ArrayLike<number>,
    scale: number,
    re: Float64Array,
    im: Float64Array,
    outOffset = 0,
    outStride = 1,
  ): void {
    const first = this.stages[0];
    if (first !== undefined && first.radix === 8) {
      // Windowing and packing fused into the first radix-8 stage: one pass over the frame fewer.
      radix8FirstWindowed(first.m, first.twr, first.twi, input, offset, window, this.br, this.bi);
      this.finishForward(re, im, scale, outOffset, outStride, 1);
      return;
    }
    const m = this.half;
    const ar = this.ar;
    const ai = this.ai;
    for (let k = 0; k < m; k++) {
      const j = 2 * k;
      ar[k] = input[offset + j]! * window[j]!;
      ai[k] = input[offset + j + 1]! * window[j + 1]!;
    }
    this.finishForward(re, im, scale, outOffset, outStride);
  }

  /**
   * Inverse transform including the 1/n factor (like numpy.fft.irfft). The imaginary parts of the DC and
   * Nyquist bins are ignored, as numpy and torch do.
   * @param re n/2+1 real parts.
   * @param im n/2+1 imaginary parts.
   * @param out receives n real samples.
   */
  inverse(re: ArrayLike<number>, im: ArrayLike<number>, out: Float64Array): void {
    this.startInverse(re, im, 0, 1);
    const m = this.half;
    const inv = 1 / this.n;
    this.run();
    const rr = this.rr;
    const ri = this.ri;
    // The complex FFT ran on swapped (re, im) to compute an inverse transform: swap back while unpacking.
    for (let k = 0; k < m; k++) {
      out[2 * k] = ri[k]! * inv;
      out[2 * k + 1] = rr[k]! * inv;
    }
  }

  /**
   * Inverse transform of (re, im)·scale (bin k read at inOffset + k·inStride), multiplied by `window` and added into
   * out[offset .. offset+n).
   * The fused synthesis step of the iSTFT (overlap-add); `scale` is applied on top of the usual 1/n.
   */
  inverseWindowedAdd(
    re: ArrayLike<number>,
    im: ArrayLike<number>,
    window: ArrayLike<number>,
    scale: number,
    out: Float64Array | Float32Array,
    offset: number,
    inOffset = 0,
    inStride = 1,
    bins = this.half + 1,
  ): void {
    this.startInverse(re, im, inOffset, inStride, bins);
    const m = this.half;
    const inv = scale / this.n;
    this.run();
    const rr = this.rr;
    const ri = this.ri;
    for (let k = 0; k < m; k++) {
      const j = 2 * k;
      out[offset + j] = out[offset + j]! + ri[k]! * inv * window[j]!;
      out[offset + j + 1] = out[offset + j + 1]! + rr[k]! * inv * window[j + 1]!;
    }
  }

  /** Runs the complex FFT on (ar, ai), unpacks the real spectrum into (re, im) and scales it. */
  private finishForward(re: Float64Array, im: Float64Array, scale: number, o: number, st: number, from = 0): void {
    const m = this.half;
    this.run(from);
    const zr = this.rr;
    const zi = this.ri;
    const wr = this.wr;
    const wi = this.wi;
    const h = 0.5 * scale;
    // DC and Nyquist: X[0] = Re z0 + Im z0, X[m] = Re z0 − Im z0 (both real).
    re[o] = (zr[0]! + zi[0]!) * scale;
    im[o] = 0;
    re[o + m * st] = (zr[0]! - zi[0]!) * scale;
    im[o + m * st] = 0;
    for (let k = 1; k < m; k++) {
      const ar = zr[k]!;
      const ai = zi[k]!;
      const br = zr[m - k]!;
      const bi = zi[m - k]!;
      // Even part Xe = (Z[k] + conj Z[m−k]) / 2, odd part Xo = −i (Z[k] − conj Z[m−k]) / 2; X = Xe + W^k Xo.
      const er = ar + br;
      const ei = ai - bi;
      const or = ai + bi;
      const oi = br - ar;
      const c = wr[k]!;
      const s = wi[k]!;
      re[o + k * st] = (er + c * or - s * oi) * h;
      im[o + k * st] = (ei + c * oi + s * or) * h;
    }
  }

  /**
   * Packs the half spectrum into the n/2-point complex sequence whose inverse DFT is x[2k] + i·x[2k+1],
   * stored swapped (Im in ar, Re in ai) so that the forward FFT computes the inverse DFT.
   * Values are 2× the true ones; the caller's 1/n accounts for the 1/2 and the 1/(n/2).
   */
  private startInverse(re: ArrayLike<number>, im: ArrayLike<number>, o: number, st: number, bins = this.half + 1): void {
    const m = this.half;
    const wr = this.wr;
    const wi = this.wi;
    const ar = this.ar;
    const ai = this.ai;
    for (let k = 0; k < m; k++) {
      const held = k < bins;
      const mirror = m - k < bins;
      const xr = held ? re[o + k * st]! : 0;
      const xi = k === 0 || !held ? 0 : im[o + k * st]!;
      const yr = mirror ? re[o + (m - k) * st]! : 0;
      const yi = k === 0 || !mirror ? 0 : -im[o + (m - k) * st]!;
      // Xe = Xa + Xb, Xo = (Xa − Xb)·conj(W^k), Z = Xe + i·Xo (all ×2), with Xb = conj X[m−k].
      const er = xr + yr;
      const ei = xi + yi;
      const dr = xr - yr;
      const di = xi - yi;
      const c = wr[k]!;
      const s = -wi[k]!;
      const or = dr * c - di * s;
      const oi = dr * s + di * c;
      ai[k] = er - oi;
      ar[k] = ei + or;
    }
  }

  /**
   * Runs the Stockham stages from index `from` on; stage `from` reads (ar, ai) when from is 0 and (br, bi) when
   * from is 1 (the first stage having been fused into the packing). Leaves the result in (rr, ri).
   */
  private run(from = 0): void {
    let xr = from === 0 ? this.ar : this.br;
    let xi = from === 0 ? this.ai : this.bi;
    let yr = from === 0 ? this.br : this.ar;
    let yi = from === 0 ? this.bi : this.ai;
    const stages = this.stages;
    for (let i = from; i < stages.length; i++) {
      const st = stages[i]!;
      switch (st.radix) {
        case 8:
          radix8(st, xr, xi, yr, yi);
          break;
        case 4:
          radix4(st, xr, xi, yr, yi);
          break;
        case 2:
          radix2(st, xr, xi, yr, yi);
          break;
        case 3:
          radix3(st, xr, xi, yr, yi);
          break;
        case 5:
          radix5(st, xr, xi, yr, yi);
          break;
      }
      const tr = xr;
      const ti = xi;
      xr = yr;
      xi = yi;
      yr = tr;
      yi = ti;
    }
    this.rr = xr;
    this.ri = xi;
  }
}

// Stockham DIF stage: inputs a_k = x[q + s·(p + k·m)], outputs y[q + s·(r·p + j)] = w^(p·j) · DFT_r(a)_j.

function radix2(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { m, s, twr, twi } = st;
  const sm = s * m;
  for (let p = 0; p < m; p++) {
    const w1r = twr[p]!;
    const w1i = twi[p]!;
    const ib = s * p;
    const ob = 2 * s * p;
    for (let q = 0; q < s; q++) {
      const i0 = ib + q;
      const i1 = i0 + sm;
      const a0r = xr[i0]!;
      const a0i = xi[i0]!;
      const a1r = xr[i1]!;
      const a1i = xi[i1]!;
      const o = ob + q;
      yr[o] = a0r + a1r;
      yi[o] = a0i + a1i;
      const dr = a0r - a1r;
      const di = a0i - a1i;
      yr[o + s] = dr * w1r - di * w1i;
      yi[o + s] = dr * w1i + di * w1r;
    }
  }
}

function radix4(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { m, s } = st;
  if (s === 1) radix4First(st, xr, xi, yr, yi);
  else if (m === 1) radix4Last(s, xr, xi, yr, yi);
  else radix4General(st, xr, xi, yr, yi);
}

// The first stage (s = 1) has one butterfly per twiddle: a single loop avoids an inner loop of length 1.
function radix4First(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { m, twr, twi } = st;
  for (let p = 0; p < m; p++) {
    const t = 3 * p;
    const a0r = xr[p]!;
    const a0i = xi[p]!;
    const a1r = xr[p + m]!;
    const a1i = xi[p + m]!;
    const a2r = xr[p + 2 * m]!;
    const a2i = xi[p + 2 * m]!;
    const a3r = xr[p + 3 * m]!;
    const a3i = xi[p + 3 * m]!;
    const t0r = a0r + a2r;
    const t0i = a0i + a2i;
    const t1r = a0r - a2r;
    const t1i = a0i - a2i;
    const t2r = a1r + a3r;
    const t2i = a1i + a3i;
    const t3r = a1r - a3r;
    const t3i = a1i - a3i;
    const o = 4 * p;
    yr[o] = t0r + t2r;
    yi[o] = t0i + t2i;
    const b1r = t1r + t3i;
    const b1i = t1i - t3r;
    const b2r = t0r - t2r;
    const b2i = t0i - t2i;
    const b3r = t1r - t3i;
    const b3i = t1i + t3r;
    const w1r = twr[t]!;
    const w1i = twi[t]!;
    const w2r = twr[t + 1]!;
    const w2i = twi[t + 1]!;
    const w3r = twr[t + 2]!;
    const w3i = twi[t + 2]!;
    yr[o + 1] = b1r * w1r - b1i * w1i;
    yi[o + 1] = b1r * w1i + b1i * w1r;
    yr[o + 2] = b2r * w2r - b2i * w2i;
    yi[o + 2] = b2r * w2i + b2i * w2r;
    yr[o + 3] = b3r * w3r - b3i * w3i;
    yi[o + 3] = b3r * w3i + b3i * w3r;
  }
}

// The last stage (m = 1) has only the twiddle 1.
function radix4Last(s: number, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  for (let q = 0; q < s; q++) {
    const a0r = xr[q]!;
    const a0i = xi[q]!;
    const a1r = xr[q + s]!;
    const a1i = xi[q + s]!;
    const a2r = xr[q + 2 * s]!;
    const a2i = xi[q + 2 * s]!;
    const a3r = xr[q + 3 * s]!;
    const a3i = xi[q + 3 * s]!;
    const t0r = a0r + a2r;
    const t0i = a0i + a2i;
    const t1r = a0r - a2r;
    const t1i = a0i - a2i;
    const t2r = a1r + a3r;
    const t2i = a1i + a3i;
    const t3r = a1r - a3r;
    const t3i = a1i - a3i;
    yr[q] = t0r + t2r;
    yi[q] = t0i + t2i;
    yr[q + s] = t1r + t3i;
    yi[q + s] = t1i - t3r;
    yr[q + 2 * s] = t0r - t2r;
    yi[q + 2 * s] = t0i - t2i;
    yr[q + 3 * s] = t1r - t3i;
    yi[q + 3 * s] = t1i + t3r;
  }
}

function radix4General(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { m, s, twr, twi } = st;
  const sm = s * m;
  for (let p = 0; p < m; p++) {
    const t = 3 * p;
    const w1r = twr[t]!;
    const w1i = twi[t]!;
    const w2r = twr[t + 1]!;
    const w2i = twi[t + 1]!;
    const w3r = twr[t + 2]!;
    const w3i = twi[t + 2]!;
    const ib = s * p;
    const ob = 4 * s * p;
    for (let q = 0; q < s; q++) {
      const i0 = ib + q;
      const a0r = xr[i0]!;
      const a0i = xi[i0]!;
      const a1r = xr[i0 + sm]!;
      const a1i = xi[i0 + sm]!;
      const a2r = xr[i0 + 2 * sm]!;
      const a2i = xi[i0 + 2 * sm]!;
      const a3r = xr[i0 + 3 * sm]!;
      const a3i = xi[i0 + 3 * sm]!;
      const t0r = a0r + a2r;
      const t0i = a0i + a2i;
      const t1r = a0r - a2r;
      const t1i = a0i - a2i;
      const t2r = a1r + a3r;
      const t2i = a1i + a3i;
      const t3r = a1r - a3r;
      const t3i = a1i - a3i;
      const o = ob + q;
      yr[o] = t0r + t2r;
      yi[o] = t0i + t2i;
      // b1 = t1 − i·t3, b2 = t0 − t2, b3 = t1 + i·t3
      const b1r = t1r + t3i;
      const b1i = t1i - t3r;
      const b2r = t0r - t2r;
      const b2i = t0i - t2i;
      const b3r = t1r - t3i;
      const b3i = t1i + t3r;
      yr[o + s] = b1r * w1r - b1i * w1i;
      yi[o + s] = b1r * w1i + b1i * w1r;
      yr[o + 2 * s] = b2r * w2r - b2i * w2i;
      yi[o + 2 * s] = b2r * w2i + b2i * w2r;
      yr[o + 3 * s] = b3r * w3r - b3i * w3i;
      yi[o + 3 * s] = b3r * w3i + b3i * w3r;
    }
  }
}

function radix3(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { m, s, twr, twi } = st;
  if (m === 1) {
    radix3Last(s, xr, xi, yr, yi);
    return;
  }
  const sm = s * m;
  for (let p = 0; p < m; p++) {
    const t = 2 * p;
    const w1r = twr[t]!;
    const w1i = twi[t]!;
    const w2r = twr[t + 1]!;
    const w2i = twi[t + 1]!;
    const ib = s * p;
    const ob = 3 * s * p;
    for (let q = 0; q < s; q++) {
      const i0 = ib + q;
      const a0r = xr[i0]!;
      const a0i = xi[i0]!;
      const a1r = xr[i0 + sm]!;
      const a1i = xi[i0 + sm]!;
      const a2r = xr[i0 + 2 * sm]!;
      const a2i = xi[i0 + 2 * sm]!;
      const tr = a1r + a2r;
      const ti = a1i + a2i;
      const dr = (a1r - a2r) * S3;
      const di = (a1i - a2i) * S3;
      const mr = a0r - 0.5 * tr;
      const mi = a0i - 0.5 * ti;
      const o = ob + q;
      yr[o] = a0r + tr;
      yi[o] = a0i + ti;
      const b1r = mr + di;
      const b1i = mi - dr;
      const b2r = mr - di;
      const b2i = mi + dr;
      yr[o + s] = b1r * w1r - b1i * w1i;
      yi[o + s] = b1r * w1i + b1i * w1r;
      yr[o + 2 * s] = b2r * w2r - b2i * w2i;
      yi[o + 2 * s] = b2r * w2i + b2i * w2r;
    }
  }
}

function radix5(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { m, s, twr, twi } = st;
  if (m === 1) {
    radix5Last(s, xr, xi, yr, yi);
    return;
  }
  const sm = s * m;
  for (let p = 0; p < m; p++) {
    const t = 4 * p;
    const w1r = twr[t]!;
    const w1i = twi[t]!;
    const w2r = twr[t + 1]!;
    const w2i = twi[t + 1]!;
    const w3r = twr[t + 2]!;
    const w3i = twi[t + 2]!;
    const w4r = twr[t + 3]!;
    const w4i = twi[t + 3]!;
    const ib = s * p;
    const ob = 5 * s * p;
    for (let q = 0; q < s; q++) {
      const i0 = ib + q;
      const a0r = xr[i0]!;
      const a0i = xi[i0]!;
      const a1r = xr[i0 + sm]!;
      const a1i = xi[i0 + sm]!;
      const a2r = xr[i0 + 2 * sm]!;
      const a2i = xi[i0 + 2 * sm]!;
      const a3r = xr[i0 + 3 * sm]!;
      const a3i = xi[i0 + 3 * sm]!;
      const a4r = xr[i0 + 4 * sm]!;
      const a4i = xi[i0 + 4 * sm]!;
      const t1r = a1r + a4r;
      const t1i = a1i + a4i;
      const t2r = a2r + a3r;
      const t2i = a2i + a3i;
      const d1r = a1r - a4r;
      const d1i = a1i - a4i;
      const d2r = a2r - a3r;
      const d2i = a2i - a3i;
      const m1r = a0r + C51 * t1r + C52 * t2r;
      const m1i = a0i + C51 * t1i + C52 * t2i;
      const m2r = a0r + C52 * t1r + C51 * t2r;
      const m2i = a0i + C52 * t1i + C51 * t2i;
      const n1r = S51 * d1r + S52 * d2r;
      const n1i = S51 * d1i + S52 * d2i;
      const n2r = S52 * d1r - S51 * d2r;
      const n2i = S52 * d1i - S51 * d2i;
      const o = ob + q;
      yr[o] = a0r + t1r + t2r;
      yi[o] = a0i + t1i + t2i;
      // b1 = m1 − i·n1, b4 = m1 + i·n1, b2 = m2 − i·n2, b3 = m2 + i·n2
      const b1r = m1r + n1i;
      const b1i = m1i - n1r;
      const b4r = m1r - n1i;
      const b4i = m1i + n1r;
      const b2r = m2r + n2i;
      const b2i = m2i - n2r;
      const b3r = m2r - n2i;
      const b3i = m2i + n2r;
      yr[o + s] = b1r * w1r - b1i * w1i;
      yi[o + s] = b1r * w1i + b1i * w1r;
      yr[o + 2 * s] = b2r * w2r - b2i * w2i;
      yi[o + 2 * s] = b2r * w2i + b2i * w2r;
      yr[o + 3 * s] = b3r * w3r - b3i * w3i;
      yi[o + 3 * s] = b3r * w3i + b3i * w3r;
      yr[o + 4 * s] = b4r * w4r - b4i * w4i;
      yi[o + 4 * s] = b4r * w4i + b4i * w4r;
    }
  }
}

function radix8(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { m, s, twr, twi } = st;
  const sm = s * m;
  if (s === 1) {
    radix8First(m, twr, twi, xr, xi, yr, yi);
    return;
  }
  for (let p = 0; p < m; p++) {
    const t = 7 * p;
    const w1r = twr[t]!;
    const w1i = twi[t]!;
    const w2r = twr[t + 1]!;
    const w2i = twi[t + 1]!;
    const w3r = twr[t + 2]!;
    const w3i = twi[t + 2]!;
    const w4r = twr[t + 3]!;
    const w4i = twi[t + 3]!;
    const w5r = twr[t + 4]!;
    const w5i = twi[t + 4]!;
    const w6r = twr[t + 5]!;
    const w6i = twi[t + 5]!;
    const w7r = twr[t + 6]!;
    const w7i = twi[t + 6]!;
    const ib = s * p;
    const ob = 8 * s * p;
    for (let q = 0; q < s; q++) {
      const i0 = ib + q;
      // Even inputs → E = DFT4(a0, a2, a4, a6); odd inputs → O = DFT4(a1, a3, a5, a7).
      const a0r = xr[i0]!;
      const a0i = xi[i0]!;
      const a4r = xr[i0 + 4 * sm]!;
      const a4i = xi[i0 + 4 * sm]!;
      const a2r = xr[i0 + 2 * sm]!;
      const a2i = xi[i0 + 2 * sm]!;
      const a6r = xr[i0 + 6 * sm]!;
      const a6i = xi[i0 + 6 * sm]!;
      const et0r = a0r + a4r;
      const et0i = a0i + a4i;
      const et1r = a0r - a4r;
      const et1i = a0i - a4i;
      const et2r = a2r + a6r;
      const et2i = a2i + a6i;
      const et3r = a2r - a6r;
      const et3i = a2i - a6i;
      const e0r = et0r + et2r;
      const e0i = et0i + et2i;
      const e2r = et0r - et2r;
      const e2i = et0i - et2i;
      const e1r = et1r + et3i;
      const e1i = et1i - et3r;
      const e3r = et1r - et3i;
      const e3i = et1i + et3r;
      const a1r = xr[i0 + sm]!;
      const a1i = xi[i0 + sm]!;
      const a5r = xr[i0 + 5 * sm]!;
      const a5i = xi[i0 + 5 * sm]!;
      const a3r = xr[i0 + 3 * sm]!;
      const a3i = xi[i0 + 3 * sm]!;
      const a7r = xr[i0 + 7 * sm]!;
      const a7i = xi[i0 + 7 * sm]!;
      const ot0r = a1r + a5r;
      const ot0i = a1i + a5i;
      const ot1r = a1r - a5r;
      const ot1i = a1i - a5i;
      const ot2r = a3r + a7r;
      const ot2i = a3i + a7i;
      const ot3r = a3r - a7r;
      const ot3i = a3i - a7i;
      const o0r = ot0r + ot2r;
      const o0i = ot0i + ot2i;
      const o2r = ot0r - ot2r;
      const o2i = ot0i - ot2i;
      const o1r = ot1r + ot3i;
      const o1i = ot1i - ot3r;
      const o3r = ot1r - ot3i;
      const o3i = ot1i + ot3r;
      // Twiddled odd parts: W8·O1, W8²·O2 = −i·O2, W8³·O3 with W8 = (1 − i)/√2.
      const v1r = (o1r + o1i) * R2;
      const v1i = (o1i - o1r) * R2;
      const v2r = o2i;
      const v2i = -o2r;
      const v3r = (o3i - o3r) * R2;
      const v3i = -(o3r + o3i) * R2;
      const o = ob + q;
      yr[o] = e0r + o0r;
      yi[o] = e0i + o0i;
      let br = e1r + v1r;
      let bi = e1i + v1i;
      yr[o + s] = br * w1r - bi * w1i;
      yi[o + s] = br * w1i + bi * w1r;
      br = e2r + v2r;
      bi = e2i + v2i;
      yr[o + 2 * s] = br * w2r - bi * w2i;
      yi[o + 2 * s] = br * w2i + bi * w2r;
      br = e3r + v3r;
      bi = e3i + v3i;
      yr[o + 3 * s] = br * w3r - bi * w3i;
      yi[o + 3 * s] = br * w3i + bi * w3r;
      br = e0r - o0r;
      bi = e0i - o0i;
      yr[o + 4 * s] = br * w4r - bi * w4i;
      yi[o + 4 * s] = br * w4i + bi * w4r;
      br = e1r - v1r;
      bi = e1i - v1i;
      yr[o + 5 * s] = br * w5r - bi * w5i;
      yi[o + 5 * s] = br * w5i + bi * w5r;
      br = e2r - v2r;
      bi = e2i - v2i;
      yr[o + 6 * s] = br * w6r - bi * w6i;
      yi[o + 6 * s] = br * w6i + bi * w6r;
      br = e3r - v3r;
      bi = e3i - v3i;
      yr[o + 7 * s] = br * w7r - bi * w7i;
      yi[o + 7 * s] = br * w7i + bi * w7r;
    }
  }
}

// First stage (s = 1): one butterfly per twiddle set, so a single loop over p.
function radix8First(
  m: number,
  twr: Float64Array,
  twi: Float64Array,
  xr: Float64Array,
  xi: Float64Array,
  yr: Float64Array,
  yi: Float64Array,
): void {
  for (let p = 0; p < m; p++) {
    const t = 7 * p;
    const w1r = twr[t]!;
    const w1i = twi[t]!;
    const w2r = twr[t + 1]!;
    const w2i = twi[t + 1]!;
    const w3r = twr[t + 2]!;
    const w3i = twi[t + 2]!;
    const w4r = twr[t + 3]!;
    const w4i = twi[t + 3]!;
    const w5r = twr[t + 4]!;
    const w5i = twi[t + 4]!;
    const w6r = twr[t + 5]!;
    const w6i = twi[t + 5]!;
    const w7r = twr[t + 6]!;
    const w7i = twi[t + 6]!;
    const o = 8 * p;
    // Even inputs → E = DFT4(a0, a2, a4, a6); odd inputs → O = DFT4(a1, a3, a5, a7).
    const a0r = xr[p]!;
    const a0i = xi[p]!;
    const a4r = xr[p + 4 * m]!;
    const a4i = xi[p + 4 * m]!;
    const a2r = xr[p + 2 * m]!;
    const a2i = xi[p + 2 * m]!;
    const a6r = xr[p + 6 * m]!;
    const a6i = xi[p + 6 * m]!;
    const et0r = a0r + a4r;
    const et0i = a0i + a4i;
    const et1r = a0r - a4r;
    const et1i = a0i - a4i;
    const et2r = a2r + a6r;
    const et2i = a2i + a6i;
    const et3r = a2r - a6r;
    const et3i = a2i - a6i;
    const e0r = et0r + et2r;
    const e0i = et0i + et2i;
    const e2r = et0r - et2r;
    const e2i = et0i - et2i;
    const e1r = et1r + et3i;
    const e1i = et1i - et3r;
    const e3r = et1r - et3i;
    const e3i = et1i + et3r;
    const a1r = xr[p + m]!;
    const a1i = xi[p + m]!;
    const a5r = xr[p + 5 * m]!;
    const a5i = xi[p + 5 * m]!;
    const a3r = xr[p + 3 * m]!;
    const a3i = xi[p + 3 * m]!;
    const a7r = xr[p + 7 * m]!;
    const a7i = xi[p + 7 * m]!;
    const ot0r = a1r + a5r;
    const ot0i = a1i + a5i;
    const ot1r = a1r - a5r;
    const ot1i = a1i - a5i;
    const ot2r = a3r + a7r;
    const ot2i = a3i + a7i;
    const ot3r = a3r - a7r;
    const ot3i = a3i - a7i;
    const o0r = ot0r + ot2r;
    const o0i = ot0i + ot2i;
    const o2r = ot0r - ot2r;
    const o2i = ot0i - ot2i;
    const o1r = ot1r + ot3i;
    const o1i = ot1i - ot3r;
    const o3r = ot1r - ot3i;
    const o3i = ot1i + ot3r;
    // Twiddled odd parts: W8·O1, W8²·O2 = −i·O2, W8³·O3 with W8 = (1 − i)/√2.
    const v1r = (o1r + o1i) * R2;
    const v1i = (o1i - o1r) * R2;
    const v2r = o2i;
    const v2i = -o2r;
    const v3r = (o3i - o3r) * R2;
    const v3i = -(o3r + o3i) * R2;
    yr[o] = e0r + o0r;
    yi[o] = e0i + o0i;
    let br = e1r + v1r;
    let bi = e1i + v1i;
    yr[o + 1] = br * w1r - bi * w1i;
    yi[o + 1] = br * w1i + bi * w1r;
    br = e2r + v2r;
    bi = e2i + v2i;
    yr[o + 2] = br * w2r - bi * w2i;
    yi[o + 2] = br * w2i + bi * w2r;
    br = e3r + v3r;
    bi = e3i + v3i;
    yr[o + 3] = br * w3r - bi * w3i;
    yi[o + 3] = br * w3i + bi * w3r;
    br = e0r - o0r;
    bi = e0i - o0i;
    yr[o + 4] = br * w4r - bi * w4i;
    yi[o + 4] = br * w4i + bi * w4r;
    br = e1r - v1r;
    bi = e1i - v1i;
    yr[o + 5] = br * w5r - bi * w5i;
    yi[o + 5] = br * w5i + bi * w5r;
    br = e2r - v2r;
    bi = e2i - v2i;
    yr[o + 6] = br * w6r - bi * w6i;
    yi[o + 6] = br * w6i + bi * w6r;
    br = e3r - v3r;
    bi = e3i - v3i;
    yr[o + 7] = br * w7r - bi * w7i;
    yi[o + 7] = br * w7i + bi * w7r;
  }
}

// Last stage (m = 1): every twiddle is 1.
function radix5Last(s: number, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const sm = s;
  for (let q = 0; q < s; q++) {
    const i0 = q;
    const a0r = xr[i0]!;
    const a0i = xi[i0]!;
    const a1r = xr[i0 + sm]!;
    const a1i = xi[i0 + sm]!;
    const a2r = xr[i0 + 2 * sm]!;
    const a2i = xi[i0 + 2 * sm]!;
    const a3r = xr[i0 + 3 * sm]!;
    const a3i = xi[i0 + 3 * sm]!;
    const a4r = xr[i0 + 4 * sm]!;
    const a4i = xi[i0 + 4 * sm]!;
    const t1r = a1r + a4r;
    const t1i = a1i + a4i;
    const t2r = a2r + a3r;
    const t2i = a2i + a3i;
    const d1r = a1r - a4r;
    const d1i = a1i - a4i;
    const d2r = a2r - a3r;
    const d2i = a2i - a3i;
    const m1r = a0r + C51 * t1r + C52 * t2r;
    const m1i = a0i + C51 * t1i + C52 * t2i;
    const m2r = a0r + C52 * t1r + C51 * t2r;
    const m2i = a0i + C52 * t1i + C51 * t2i;
    const n1r = S51 * d1r + S52 * d2r;
    const n1i = S51 * d1i + S52 * d2i;
    const n2r = S52 * d1r - S51 * d2r;
    const n2i = S52 * d1i - S51 * d2i;
    const o = q;
    yr[o] = a0r + t1r + t2r;
    yi[o] = a0i + t1i + t2i;
    // b1 = m1 − i·n1, b4 = m1 + i·n1, b2 = m2 − i·n2, b3 = m2 + i·n2
    const b1r = m1r + n1i;
    const b1i = m1i - n1r;
    const b4r = m1r - n1i;
    const b4i = m1i + n1r;
    const b2r = m2r + n2i;
    const b2i = m2i - n2r;
    const b3r = m2r - n2i;
    const b3i = m2i + n2r;
    yr[o + s] = b1r;
    yi[o + s] = b1i;
    yr[o + 2 * s] = b2r;
    yi[o + 2 * s] = b2i;
    yr[o + 3 * s] = b3r;
    yi[o + 3 * s] = b3i;
    yr[o + 4 * s] = b4r;
    yi[o + 4 * s] = b4i;
  }
}

// Last stage (m = 1): every twiddle is 1.
function radix3Last(s: number, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const sm = s;
  for (let q = 0; q < s; q++) {
    const i0 = q;
    const a0r = xr[i0]!;
    const a0i = xi[i0]!;
    const a1r = xr[i0 + sm]!;
    const a1i = xi[i0 + sm]!;
    const a2r = xr[i0 + 2 * sm]!;
    const a2i = xi[i0 + 2 * sm]!;
    const tr = a1r + a2r;
    const ti = a1i + a2i;
    const dr = (a1r - a2r) * S3;
    const di = (a1i - a2i) * S3;
    const mr = a0r - 0.5 * tr;
    const mi = a0i - 0.5 * ti;
    const o = q;
    yr[o] = a0r + tr;
    yi[o] = a0i + ti;
    const b1r = mr + di;
    const b1i = mi - dr;
    const b2r = mr - di;
    const b2i = mi + dr;
    yr[o + s] = b1r;
    yi[o + s] = b1i;
    yr[o + 2 * s] = b2r;
    yi[o + 2 * s] = b2i;
  }
}

// First stage with the windowing and real→complex packing folded into its loads (see forwardWindowed).
function radix8FirstWindowed(
  m: number,
  twr: Float64Array,
  twi: Float64Array,
  input: ArrayLike<number>,
  off: number,
  win: ArrayLike<number>,
  yr: Float64Array,
  yi: Float64Array,
): void {
  // Complex input a_k = z[p + k·m] with z[j] = x[2j]·w[2j] + i·x[2j+1]·w[2j+1]: real-frame distance d = 2m.
  const d = 2 * m;
  for (let p = 0; p < m; p++) {
    const j0 = 2 * p;
    const t = 7 * p;
    const w1r = twr[t]!;
    const w1i = twi[t]!;
    const w2r = twr[t + 1]!;
    const w2i = twi[t + 1]!;
    const w3r = twr[t + 2]!;
    const w3i = twi[t + 2]!;
    const w4r = twr[t + 3]!;
    const w4i = twi[t + 3]!;
    const w5r = twr[t + 4]!;
    const w5i = twi[t + 4]!;
    const w6r = twr[t + 5]!;
    const w6i = twi[t + 5]!;
    const w7r = twr[t + 6]!;
    const w7i = twi[t + 6]!;
    const o = 8 * p;
    // Even inputs → E = DFT4(a0, a2, a4, a6); odd inputs → O = DFT4(a1, a3, a5, a7).
    const a0r = input[off + j0]! * win[j0]!;
    const a0i = input[off + j0 + 1]! * win[j0 + 1]!;
    const a4r = input[off + j0 + 4 * d]! * win[j0 + 4 * d]!;
    const a4i = input[off + j0 + 4 * d + 1]! * win[j0 + 4 * d + 1]!;
    const a2r = input[off + j0 + 2 * d]! * win[j0 + 2 * d]!;
    const a2i = input[off + j0 + 2 * d + 1]! * win[j0 + 2 * d + 1]!;
    const a6r = input[off + j0 + 6 * d]! * win[j0 + 6 * d]!;
    const a6i = input[off + j0 + 6 * d + 1]! * win[j0 + 6 * d + 1]!;
    const et0r = a0r + a4r;
    const et0i = a0i + a4i;
    const et1r = a0r - a4r;
    const et1i = a0i - a4i;
    const et2r = a2r + a6r;
    const et2i = a2i + a6i;
    const et3r = a2r - a6r;
    const et3i = a2i - a6i;
    const e0r = et0r + et2r;
    const e0i = et0i + et2i;
    const e2r = et0r - et2r;
    const e2i = et0i - et2i;
    const e1r = et1r + et3i;
    const e1i = et1i - et3r;
    const e3r = et1r - et3i;
    const e3i = et1i + et3r;
    const a1r = input[off + j0 + d]! * win[j0 + d]!;
    const a1i = input[off + j0 + d + 1]! * win[j0 + d + 1]!;
    const a5r = input[off + j0 + 5 * d]! * win[j0 + 5 * d]!;
    const a5i = input[off + j0 + 5 * d + 1]! * win[j0 + 5 * d + 1]!;
    const a3r = input[off + j0 + 3 * d]! * win[j0 + 3 * d]!;
    const a3i = input[off + j0 + 3 * d + 1]! * win[j0 + 3 * d + 1]!;
    const a7r = input[off + j0 + 7 * d]! * win[j0 + 7 * d]!;
    const a7i = input[off + j0 + 7 * d + 1]! * win[j0 + 7 * d + 1]!;
    const ot0r = a1r + a5r;
    const ot0i = a1i + a5i;
    const ot1r = a1r - a5r;
    const ot1i = a1i - a5i;
    const ot2r = a3r + a7r;
    const ot2i = a3i + a7i;
    const ot3r = a3r - a7r;
    const ot3i = a3i - a7i;
    const o0r = ot0r + ot2r;
    const o0i = ot0i + ot2i;
    const o2r = ot0r - ot2r;
    const o2i = ot0i - ot2i;
    const o1r = ot1r + ot3i;
    const o1i = ot1i - ot3r;
    const o3r = ot1r - ot3i;
    const o3i = ot1i + ot3r;
    // Twiddled odd parts: W8·O1, W8²·O2 = −i·O2, W8³·O3 with W8 = (1 − i)/√2.
    const v1r = (o1r + o1i) * R2;
    const v1i = (o1i - o1r) * R2;
    const v2r = o2i;
    const v2i = -o2r;
    const v3r = (o3i - o3r) * R2;
    const v3i = -(o3r + o3i) * R2;
    yr[o] = e0r + o0r;
    yi[o] = e0i + o0i;
    let br = e1r + v1r;
    let bi = e1i + v1i;
    yr[o + 1] = br * w1r - bi * w1i;
    yi[o + 1] = br * w1i + bi * w1r;
    br = e2r + v2r;
    bi = e2i + v2i;
    yr[o + 2] = br * w2r - bi * w2i;
    yi[o + 2] = br * w2i + bi * w2r;
    br = e3r + v3r;
    bi = e3i + v3i;
    yr[o + 3] = br * w3r - bi * w3i;
    yi[o + 3] = br * w3i + bi * w3r;
    br = e0r - o0r;
    bi = e0i - o0i;
    yr[o + 4] = br * w4r - bi * w4i;
    yi[o + 4] = br * w4i + bi * w4r;
    br = e1r - v1r;
    bi = e1i - v1i;
    yr[o + 5] = br * w5r - bi * w5i;
    yi[o + 5] = br * w5i + bi * w5r;
    br = e2r - v2r;
    bi = e2i - v2i;
    yr[o + 6] = br * w6r - bi * w6i;
    yi[o + 6] = br * w6i + bi * w6r;
    br = e3r - v3r;
    bi = e3i - v3i;
    yr[o + 7] = br * w7r - bi * w7i;
    yi[o + 7] = br * w7i + bi * w7r;
  }
}
