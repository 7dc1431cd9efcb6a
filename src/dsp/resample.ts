/**
 * Streaming, high-quality sample-rate conversion in two stages: a sharp linear-phase low-pass applied by FFT
 * (overlap-save), then a short polyphase Kaiser-windowed sinc that moves the band-limited signal to the output rate.
 *
 * Output sample n is the band-limited interpolation of the input at time t = n·from/to (in input samples): both
 * stages are symmetric and centred, so the output is aligned with the input (zero group delay) and starts at the
 * same instant; the input is taken as zero before its first and after its last sample.
 *
 * Why two stages. A single polyphase filter has to be sharp (transition 91 % → 100 % of the lower Nyquist) at the
 * input rate: 44.1 → 16 kHz took 316 taps per output for an 85 dB design, and ~580 for soxr's stopband. Here:
 * 1. The sharp filter (passband to 0.91 × the lower Nyquist, stopband from 1.0 ×, Kaiser design for
 *    {@link SHARP_ATTENUATION_DB} dB) runs at R = U·from, with U = 2 (the input zero-stuffed to twice its rate) when
 *    upsampling or converting between close rates and U = 1 when downsampling by more than ~1.4. As a block FFT
 *    convolution its cost hardly depends on its length (~600 taps at 44.1 kHz for 44.1 → 16 kHz).
 * 2. What it leaves is band-limited to B = min(from, to)/2 with nothing between B and R − B, so the polyphase
 *    interpolator only needs a transition from B to R − B — wide (0.5 of R for U = 2, 0.64 for 44.1 → 16 kHz) — and
 *    16–20 taps per output for {@link POLY_ATTENUATION_DB} dB.
 * Figures (quality and CPU time against ffmpeg's soxr and the former single-stage design): README "Resampling" and
 * scripts/bench-resample.mjs.
 *
 * With `precision: 'float32'` both stages run in WebAssembly (fft-simd.ts's SimdCircularConvolution,
 * polyphase-simd.ts), so JavaScript only moves float32 samples between buffers: in JavaScript, the copies and
 * spectrum packing around each WASM FFT call cost more than the transforms, and the polyphase stage as much again.
 *
 * Rates are reduced to to/R = L/M. For L ≤ 4096 (every common pair: 44.1 → 16 kHz is 160/441, 44.1 → 48 kHz with
 * U = 2 is 80/147) each output uses one exact precomputed phase; for larger L the kernel is tabulated at
 * {@link INTERP_PHASES} phases and linearly interpolated between the two nearest.
 *
 * Streaming output equals one-shot output exactly: FFT blocks sit at fixed positions of the (global) stage-1 signal,
 * never at positions that depend on how the input was split. Hand-written rather than libsamplerate/soxr WASM: those
 * buffer internally with their own latency, which would have to be measured and trimmed, while this design makes
 * "streaming == one-shot" and "output length = round(len·to/from)" exact by construction.
 */
// Bad arguments here come from stemkit's own code or model data, never straight from the user: InternalError (70).
import { InternalError } from '../errors.js';
import type { RawAudio } from '../audio/raw-audio.js';
import { getRealFFT, type FftPrecision } from './stft.js';
import { simdCircularConvolution, simdRealFFT, type SimdCircularConvolution } from './fft-simd.js';
import { simdPolyphase, type SimdPolyphase } from './polyphase-simd.js';

/** Streaming resampler for a fixed number of planar channels. */
export interface Resampler {
  readonly fromRate: number;
  readonly toRate: number;
  readonly channels: number;
  /**
   * Feeds one block (one array per channel, equal lengths, any length including 0) and returns the output
   * samples that are complete so far. The concatenation of all returned blocks plus `flush()` does not depend
   * on how the input was split.
   */
  process(block: Float32Array[]): Float32Array[];
  /** Ends the stream: returns the remaining output so that the total is round(inputLength·to/from). */
  flush(): Float32Array[];
}

/**
 * Stopband attenuation of the two stages' designs, in dB. The FFT stage's length costs almost nothing, so it gets
 * more; the polyphase stage's taps are its cost, so it gets what is needed to stay below soxr's default (which
 * measures about −132 dB with scripts/bench-resample.mjs).
 */
const SHARP_ATTENUATION_DB = 150;
const POLY_ATTENUATION_DB = 140;
/** Passband edge as a fraction of the lower Nyquist frequency (ffmpeg's soxr default is 0.91); stopband from 1.0. */
const PASS_EDGE = 0.91;
/**
 * Downsampling by more than this ratio runs the sharp stage at the input rate (U = 1); closer rates and upsampling
 * zero-stuff to twice the input rate first (U = 2), which doubles the FFT work but keeps the polyphase stage short.
 * The crossover comes from the cost model FFT ≈ 20 multiply-adds per stage-1 sample, ~0.7 per polyphase tap.
 */
const U1_MAX_RATIO = 0.72;
/** Largest L (output rate / gcd) with one exact phase per output; beyond it phases are interpolated. */
const MAX_EXACT_PHASES = 4096;
const INTERP_PHASES = 8192;

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/**
 * floor(a / b) for non-negative integers, exact: doubles while a·b stays below 2^52 (the common case, cheap enough
 * to run per streamed block), BigInt beyond (a long input times a large L).
 */
function floorDiv(a: number, b: number): number {
  if (a < 2 ** 52 && b < 2 ** 26) {
    let q = Math.floor(a / b);
    // The quotient of doubles can round up to the next integer when a / b is just below it.
    if (q * b > a) q--;
    return q;
  }
  return Number(BigInt(a) / BigInt(b));
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for β ≤ 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 300; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Kaiser's β for a stopband attenuation of a dB (a > 50). */
function kaiserBeta(a: number): number {
  return 0.1102 * (a - 8.7);
}

/** Kaiser's length estimate: taps for attenuation a dB over a transition of df cycles per sample. */
function kaiserTaps(a: number, df: number): number {
  return Math.ceil((a - 7.95) / (2.285 * 2 * Math.PI * df) + 1);
}

/** Stage 1: the sharp low-pass at rate U·from, as a real frequency response for overlap-save blocks. */
interface SharpStage {
  /** Zero-stuffing factor: the stage runs at U·from. */
  U: 1 | 2;
  /** The FIR spans [−half, half] stage-1 samples (symmetric, 2·half + 1 taps; half is a multiple of U). */
  half: number;
  /** FFT size of one block, and the stage-1 samples each block completes (fftSize − 2·half, a multiple of U). */
  fftSize: number;
  step: number;
  /** Gain per bin (fftSize/2 + 1 values): the FIR's zero-phase response, real because the FIR is symmetric. */
  gain: Float64Array;
}

/** Stage 2: polyphase interpolation from U·from to `to`; output n sits at n·M/L stage-1 samples. */
interface PolyStage {
  L: number;
  M: number;
  /** Half width in stage-1 samples: each output reads 2·half of them. */
  half: number;
  /** Number of tabulated phases (rows); row p is the kernel at fractional offset p/phases. */
  phases: number;
  /** True when row = (n·M mod L) exactly; false when rows are interpolated. */
  exact: boolean;
  /** Rows of 2·half coefficients; `phases + 1` rows when interpolated (row `phases` = offset 1). */
  coef: Float64Array;
  /** Exact phases: from phase p the next output is `advance[p]` stage-1 samples on, at phase `next[p]` (no division per output). */
  advance: Int32Array;
  next: Int32Array;
}

interface Design {
  sharp: SharpStage;
  poly: PolyStage;
  /** Stage-1 index of the first sample the first FFT block completes: before output 0's kernel, a multiple of U. */
  origin: number;
  /** The float32 WASM forms of the two stages, made on first use (null: not available). */
  simdConv?: SimdCircularConvolution | null;
  simdPoly?: SimdPolyphase | null;
}

const designCache = new Map<string, Design>();

/** FFT size (a power of two) with the least estimated work per completed sample, for a FIR of 2·half + 1 taps. */
function chooseFftSize(half: number, U: number): number {
  let best = 0;
  let bestCost = Infinity;
  // Up to 16 blocks' worth of FIR: extreme ratios (a FIR of thousands of taps) still get a size.
  const largest = Math.max(1 << 16, 16 * 2 ** Math.ceil(Math.log2(2 * half + 1)));
  for (let n = 256; n <= largest; n *= 2) {
    const step = n - 2 * half;
    if (step < n / 8 || step % U !== 0) continue;
    // Sizes above 4096 leave the L1/L2 caches and run ~1.5× slower per point (measured with the float64 FFT).
    const cost = (n * Math.log2(n) * (n > 4096 ? 1.5 : 1)) / step;
    if (cost < bestCost) {
      bestCost = cost;
      best = n;
    }
  }
  return best;
}

function designSharp(from: number, to: number, U: 1 | 2): SharpStage {
  const rate = U * from;
  const band = Math.min(from, to) / 2;
  // Cycles per stage-1 sample: cutoff halfway through the transition [PASS_EDGE·band, band].
  const fc = ((1 + PASS_EDGE) / 2) * (band / rate);
  const df = (1 - PASS_EDGE) * (band / rate);
  let half = Math.ceil((kaiserTaps(SHARP_ATTENUATION_DB, df) - 1) / 2);
  half += half % U;
  const beta = kaiserBeta(SHARP_ATTENUATION_DB);
  const i0b = besselI0(beta);
  const h = new Float64Array(2 * half + 1);
  let sum = 0;
  for (let k = -half; k <= half; k++) {
    const x = 2 * fc * k;
    const sinc = k === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const u = k / half;
    const v = 2 * fc * sinc * (besselI0(beta * Math.sqrt(Math.max(0, 1 - u * u))) / i0b);
    h[k + half] = v;
    sum += v;
  }
  const fftSize = chooseFftSize(half, U);
  // Zero-phase placement (tap k at index k mod n) makes the response real. Gain U restores the level that
  // zero-stuffing divides by U; unit DC gain exactly.
  const g = new Float64Array(fftSize);
  for (let k = -half; k <= half; k++) g[(k + fftSize) % fftSize] = (U * h[k + half]!) / sum;
  const re = new Float64Array(fftSize / 2 + 1);
  const im = new Float64Array(fftSize / 2 + 1);
  getRealFFT(fftSize).forward(g, re, im);
  return { U, half, fftSize, step: fftSize - 2 * half, gain: re };
}

function designPoly(rate: number, to: number, band: number): PolyStage {
  const g = gcd(rate, to);
  const L = to / g;
  const M = rate / g;
  // Passband up to `band`, stopband from the first image of the band at rate − band: cutoff at rate/2.
  const df = (rate - 2 * band) / rate;
  // Width 2·half a multiple of 4 for the unrolled loops.
  const half = 2 * Math.ceil(kaiserTaps(POLY_ATTENUATION_DB, df) / 4);
  const beta = kaiserBeta(POLY_ATTENUATION_DB);
  const exact = L <= MAX_EXACT_PHASES;
  const phases = exact ? L : INTERP_PHASES;
  const rows = exact ? phases : phases + 1;
  const width = 2 * half;
  const coef = new Float64Array(rows * width);
  const i0b = besselI0(beta);
  for (let p = 0; p < rows; p++) {
    const frac = p / phases;
    let sum = 0;
    for (let j = 0; j < width; j++) {
      // Tap j reads stage-1 sample k = ipos − half + 1 + j, at distance τ = t − k = frac + half − 1 − j.
      const tau = frac + half - 1 - j;
      const u = tau / half;
      let v = 0;
      if (Math.abs(u) < 1) {
        const sinc = tau === 0 ? 1 : Math.sin(Math.PI * tau) / (Math.PI * tau);
        v = sinc * (besselI0(beta * Math.sqrt(1 - u * u)) / i0b);
      }
      coef[p * width + j] = v;
      sum += v;
    }
    // Unit DC gain per phase removes the small periodic gain modulation between phases.
    for (let j = 0; j < width; j++) coef[p * width + j] = coef[p * width + j]! / sum;
  }
  const advance = new Int32Array(exact ? L : 0);
  const next = new Int32Array(exact ? L : 0);
  for (let p = 0; p < advance.length; p++) {
    advance[p] = Math.floor((p + M) / L);
    next[p] = (p + M) % L;
  }
  return { L, M, half, phases, exact, coef, advance, next };
}

function design(from: number, to: number): Design {
  const key = `${from}:${to}`;
  const cached = designCache.get(key);
  if (cached !== undefined) return cached;
  const U: 1 | 2 = to <= U1_MAX_RATIO * from ? 1 : 2;
  const sharp = designSharp(from, to, U);
  const poly = designPoly(U * from, to, Math.min(from, to) / 2);
  // Output 0 reads stage-1 samples from −poly.half + 1: start the first block at or before that.
  const origin = -(poly.half + (poly.half % U));
  const d: Design = { sharp, poly, origin };
  designCache.set(key, d);
  return d;
}

/** The two stages chosen for a pair of rates, for benchmarks and documentation. */
export interface ResamplerDesign {
  /** Zero-stuffing factor of the sharp stage (it runs at upsample × fromRate). */
  upsample: 1 | 2;
  /** Taps of the sharp FIR (at upsample × fromRate) and the FFT size its blocks use. */
  sharpTaps: number;
  fftSize: number;
  /** Taps per output sample of the polyphase stage, and its number of phases (interpolated when not exact). */
  polyTaps: number;
  phases: number;
  exactPhases: boolean;
  /** Design stopband attenuation of each stage (dB), and the passband edge (fraction of the lower Nyquist frequency). */
  sharpAttenuationDb: number;
  polyAttenuationDb: number;
  passEdge: number;
}

/**
 * Describes the filters {@link createResampler} uses between two rates (which must differ).
 * @throws InternalError for non-integer or non-positive rates.
 */
export function describeResampler(fromRate: number, toRate: number): ResamplerDesign {
  checkRate(fromRate, 'input');
  checkRate(toRate, 'output');
  const { sharp, poly } = design(fromRate, toRate);
  return {
    upsample: sharp.U,
    sharpTaps: 2 * sharp.half + 1,
    fftSize: sharp.fftSize,
    polyTaps: 2 * poly.half,
    phases: poly.phases,
    exactPhases: poly.exact,
    sharpAttenuationDb: SHARP_ATTENUATION_DB,
    polyAttenuationDb: POLY_ATTENUATION_DB,
    passEdge: PASS_EDGE,
  };
}

function checkRate(rate: number, name: string): void {
  if (!Number.isInteger(rate) || rate <= 0 || rate > 10_000_000) {
    throw new InternalError(`resample: ${name} rate must be a positive integer in Hz, got ${rate}`, {
      hint: 'use an integer sample rate such as 16000, 44100 or 48000',
    });
  }
}

/** Options of {@link createResampler}. */
export interface ResamplerOptions {
  /**
   * 'float64' (default; the figures of the README's DSP section): both stages in JavaScript on the float64 FFT.
   * 'float32', where `loadSimdFft()` has loaded the WASM SIMD FFT (float64 otherwise): both stages in WebAssembly,
   * the FFT stage as PFFFT's own float32 convolution and the polyphase stage on float32 samples with float64 sums;
   * 3–5× less CPU time than float64, with the stopband at about −139 to −143 dB instead of −150 and spurious
   * output 3–4 dB higher (float32 rounding), still below soxr's. Pipelines whose data is float32 use it. Fixed for
   * the resampler's life, so streaming still equals one-shot output exactly.
   */
  precision?: FftPrecision;
}

/**
 * Creates a streaming resampler from `fromRate` to `toRate` for `channels` planar channels.
 * Equal rates give a pass-through that copies its input.
 * @throws InternalError for non-integer or non-positive rates or channel counts.
 */
export function createResampler(fromRate: number, toRate: number, channels: number, options: ResamplerOptions = {}): Resampler {
  checkRate(fromRate, 'input');
  checkRate(toRate, 'output');
  if (!Number.isInteger(channels) || channels < 1) {
    throw new InternalError(`resample: channel count must be a positive integer, got ${channels}`, {
      hint: 'pass the number of planar channels of the audio',
    });
  }
  if (fromRate === toRate) return new PassThrough(fromRate, toRate, channels);
  return new TwoStageResampler(fromRate, toRate, channels, design(fromRate, toRate), options.precision ?? 'float64');
}

function checkBlock(block: Float32Array[], channels: number): number {
  if (block.length !== channels) {
    throw new InternalError(`resample: block has ${block.length} channels, the resampler was created for ${channels}`, {
      hint: 'adapt the channel count before resampling, or create one resampler per layout',
    });
  }
  const n = block[0]?.length ?? 0;
  for (const ch of block) {
    if (ch.length !== n) {
      throw new InternalError('resample: channels of one block have different lengths', {
        hint: 'pass planar channels of equal length',
      });
    }
  }
  return n;
}

class PassThrough implements Resampler {
  constructor(
    readonly fromRate: number,
    readonly toRate: number,
    readonly channels: number,
  ) {}
  process(block: Float32Array[]): Float32Array[] {
    checkBlock(block, this.channels);
    return block.map((ch) => ch.slice());
  }
  flush(): Float32Array[] {
    return Array.from({ length: this.channels }, () => new Float32Array(0));
  }
}

type Samples = Float32Array | Float64Array;

/** A per-channel sliding window over a signal indexed globally: buf[i] holds sample start + i. */
class SlidingBuffer<T extends Samples> {
  readonly bufs: T[];
  len = 0;
  constructor(
    private readonly make: (n: number) => T,
    channels: number,
    capacity: number,
    public start: number,
  ) {
    this.bufs = Array.from({ length: channels }, () => make(capacity));
  }
  get end(): number {
    return this.start + this.len;
  }
  /**
   * Forgets samples before global index `from`, once there are enough of them for the move to pay: tiny streamed
   * blocks would otherwise shift the whole buffer per sample. At most 4096 stale samples stay, so memory is flat.
   */
  dropBefore(from: number): void {
    const drop = Math.min(from - this.start, this.len);
    if (drop < 4096 && drop < this.len >> 1) return;
    for (const b of this.bufs) b.copyWithin(0, drop, this.len);
    this.start += drop;
    this.len -= drop;
  }
  /** Makes room for n more samples per channel and returns the index where they go. */
  reserve(n: number): number {
    const need = this.len + n;
    if (need > this.bufs[0]!.length) {
      const cap = Math.max(need, 2 * this.bufs[0]!.length);
      for (let c = 0; c < this.bufs.length; c++) {
        const nb = this.make(cap);
        nb.set(this.bufs[c]!.subarray(0, this.len));
        this.bufs[c] = nb;
      }
    }
    const at = this.len;
    this.len = need;
    return at;
  }
}

/**
 * The float32 WASM forms of a design's stages when `precision` is float32 and the SIMD FFT is loaded: the FFT stage
 * as PFFFT's own convolution (no spectrum packing in JavaScript), the polyphase stage (exact phases) in
 * stemkit's SIMD module. Cached on the design: the convolution's heap memory is never freed.
 */
function simdStages(d: Design): { conv: SimdCircularConvolution; poly: SimdPolyphase | null } | null {
  // simdRealFFT answers null while the SIMD FFT is off or not loaded: the cached forms are not used then either.
  if (simdRealFFT(d.sharp.fftSize) === null) return null;
  if (d.simdConv === undefined) d.simdConv = simdCircularConvolution(d.sharp.fftSize, d.sharp.gain);
  if (d.simdConv === null) return null;
  if (d.simdPoly === undefined) {
    const p = d.poly;
    d.simdPoly = p.exact ? simdPolyphase({ L: p.L, M: p.M, coef: p.coef, width: 2 * p.half, advance: p.advance, next: p.next }) : null;
  }
  return { conv: d.simdConv, poly: d.simdPoly };
}

class TwoStageResampler implements Resampler {
  /** Input samples (stage-1 blocks read them) and stage-1 output (the polyphase stage reads it). */
  private readonly input: SlidingBuffer<Samples>;
  private readonly mid: SlidingBuffer<Samples>;
  /** Input samples received. */
  private inCount = 0;
  /** Outputs produced, and the position of the next one: t = ipos + phaseNum/L stage-1 samples. */
  private outCount = 0;
  private ipos = 0;
  private phaseNum = 0;
  private flushed = false;
  /** Float32 WASM path: both buffers hold Float32Array; null on the JavaScript FFT path. */
  private readonly simd: { conv: SimdCircularConvolution; poly: SimdPolyphase | null } | null;
  private readonly fwd: ReturnType<typeof getRealFFT>;
  private readonly inv: ReturnType<typeof getRealFFT>;
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  /** U = 2: the zero-stuffed block's spectrum (fftSize/2 + 1 bins), built from the half-size input spectrum. */
  private readonly re2: Float64Array;
  private readonly im2: Float64Array;
  private readonly block: Float64Array;

  constructor(
    readonly fromRate: number,
    readonly toRate: number,
    readonly channels: number,
    private readonly d: Design,
    precision: FftPrecision,
  ) {
    const { U, half, fftSize } = d.sharp;
    this.simd = precision === 'float32' ? simdStages(d) : null;
    const make = this.simd !== null ? (n: number): Samples => new Float32Array(n) : (n: number): Samples => new Float64Array(n);
    // The first block reads input from (origin − half)/U on: the zeros before the first sample are stored.
    const inStart = (d.origin - half) / U;
    this.input = new SlidingBuffer(make, channels, fftSize + 8192, inStart);
    this.input.reserve(-inStart);
    this.mid = new SlidingBuffer(make, channels, 2 * fftSize + 4 * d.poly.half, d.origin);
    this.fwd = getRealFFT(fftSize / U, precision);
    this.inv = getRealFFT(fftSize, precision);
    this.re = new Float64Array(fftSize / 2 + 1);
    this.im = new Float64Array(fftSize / 2 + 1);
    this.re2 = U === 2 ? new Float64Array(fftSize / 2 + 1) : this.re;
    this.im2 = U === 2 ? new Float64Array(fftSize / 2 + 1) : this.im;
    this.block = new Float64Array(fftSize);
  }

  process(block: Float32Array[]): Float32Array[] {
    if (this.flushed) {
      throw new InternalError('resample: process() called after flush()', { hint: 'create a new resampler per stream' });
    }
    const n = checkBlock(block, this.channels);
    if (n > 0) {
      this.input.dropBefore(this.nextBlockInput());
      const at = this.input.reserve(n);
      for (let c = 0; c < this.channels; c++) this.input.bufs[c]!.set(block[c]!, at);
      this.inCount += n;
    }
    this.runBlocks();
    return this.produce(this.countAvailable());
  }

  flush(): Float32Array[] {
    if (this.flushed) return Array.from({ length: this.channels }, () => new Float32Array(0));
    this.flushed = true;
    const { U } = this.d.sharp;
    const { L, M, half } = this.d.poly;
    // round(inCount·to/from), half up, in BigInt: inCount·L can pass 2^53 for long inputs with a large L.
    const total = Number((2n * BigInt(this.inCount) * BigInt(U * L) + BigInt(M)) / (2n * BigInt(M)));
    const remaining = total - this.outCount;
    if (remaining <= 0) return Array.from({ length: this.channels }, () => new Float32Array(0));
    // Stage-1 samples up to the last output's kernel, and the input (zeros after the end) their blocks read.
    const lastIpos = Number((BigInt(total - 1) * BigInt(M)) / BigInt(L));
    const { origin } = this.d;
    const { step, half: h1, fftSize } = this.d.sharp;
    const blocks = Math.ceil((lastIpos + half + 1 - origin) / step);
    const inputEnd = (origin + blocks * step - step - h1 + fftSize) / U;
    const zeros = inputEnd - this.input.end;
    if (zeros > 0) {
      this.input.dropBefore(this.nextBlockInput());
      const at = this.input.reserve(zeros);
      for (const b of this.input.bufs) b.fill(0, at, at + zeros);
    }
    this.runBlocks();
    return this.produce(remaining);
  }

  /** Input index the next FFT block starts reading at. */
  private nextBlockInput(): number {
    return (this.mid.end - this.d.sharp.half) / this.d.sharp.U;
  }

  /** Runs every FFT block whose input is complete, appending its stage-1 samples to `mid`. */
  private runBlocks(): void {
    const { U, fftSize } = this.d.sharp;
    const span = fftSize / U;
    for (;;) {
      const first = this.nextBlockInput();
      if (first + span > this.input.end) return;
      // The polyphase stage never reads before its next output's kernel.
      this.mid.dropBefore(this.ipos - this.d.poly.half + 1);
      const at = this.mid.reserve(this.d.sharp.step);
      const off = first - this.input.start;
      if (this.simd !== null) this.simdBlock(this.simd.conv, off, at);
      else this.jsBlock(off, at);
    }
  }

  /** One FFT block of every channel on the float64 (or JavaScript) FFT: input[off …] → mid[at …]. */
  private jsBlock(off: number, at: number): void {
    const { U, half, fftSize, step, gain } = this.d.sharp;
    const span = fftSize / U;
    const { re, im, re2, im2, block } = this;
    for (let c = 0; c < this.channels; c++) {
      this.fwd.forward(this.input.bufs[c]!.subarray(off, off + span), re, im);
      if (U === 1) {
        for (let k = 0; k <= fftSize / 2; k++) {
          re[k] = re[k]! * gain[k]!;
          im[k] = im[k]! * gain[k]!;
        }
      } else {
        // Zero-stuffing repeats the spectrum: bin k of the stuffed block is bin k mod (n/2) of the input block,
        // which past n/4 is the conjugate of bin n/2 − k.
        const q = fftSize / 4;
        for (let k = 0; k <= q; k++) {
          re2[k] = re[k]! * gain[k]!;
          im2[k] = im[k]! * gain[k]!;
        }
        for (let k = q + 1; k <= 2 * q; k++) {
          re2[k] = re[2 * q - k]! * gain[k]!;
          im2[k] = -im[2 * q - k]! * gain[k]!;
        }
      }
      this.inv.inverse(re2, im2, block);
      // Circular convolution is exact away from the block's ends: samples [half, half + step).
      this.mid.bufs[c]!.set(block.subarray(half, half + step), at);
    }
  }

  /** The same block on PFFFT's convolution in the WASM heap: only sample copies happen in JavaScript. */
  private simdBlock(conv: SimdCircularConvolution, off: number, at: number): void {
    const { U, half, fftSize, step } = this.d.sharp;
    const span = fftSize / U;
    for (let c = 0; c < this.channels; c++) {
      const x = this.input.bufs[c]!;
      const dst = conv.input();
      if (U === 1) dst.set(x.subarray(off, off + span));
      // Zero-stuffed: the odd samples are never written and stay zero.
      else for (let j = 0; j < span; j++) dst[2 * j] = x[off + j]!;
      this.mid.bufs[c]!.set(conv.run().subarray(half, half + step), at);
    }
  }

  /** Outputs whose kernel lies within the stage-1 samples computed so far. */
  private countAvailable(): number {
    const { L, M, half } = this.d.poly;
    // Output n needs floor(n·M/L) + half ≤ mid.end − 1.
    const maxIpos = this.mid.end - 1 - half;
    if (maxIpos < this.ipos) return 0;
    // Largest n with floor(n·M/L) ≤ maxIpos is floor(((maxIpos + 1)·L − 1) / M).
    const lastN = (maxIpos + 1) * L < 2 ** 52 ? floorDiv((maxIpos + 1) * L - 1, M) : Number((BigInt(maxIpos + 1) * BigInt(L) - 1n) / BigInt(M));
    return Math.max(0, lastN + 1 - this.outCount);
  }

  private produce(count: number): Float32Array[] {
    const out = Array.from({ length: this.channels }, () => new Float32Array(count));
    if (count === 0) return out;
    const poly = this.d.poly;
    const first = this.ipos - poly.half + 1 - this.mid.start;
    const bufs = this.mid.bufs;
    let c = 0;
    if (this.simd?.poly) {
      this.simd.poly.run(bufs as Float32Array[], out, count, first, this.phaseNum);
    } else if (poly.exact) {
      // Stereo pairs share every coefficient load; the arithmetic per channel is the same as exactOne's, so a
      // channel's samples do not depend on its neighbours.
      for (; c + 1 < this.channels; c += 2) exactPair(poly, bufs[c]!, bufs[c + 1]!, out[c]!, out[c + 1]!, first, this.phaseNum);
      if (c < this.channels) exactOne(poly, bufs[c]!, out[c]!, first, this.phaseNum);
    } else {
      for (; c < this.channels; c++) interpolatedOne(poly, bufs[c]!, out[c]!, first, this.phaseNum);
    }
    this.outCount += count;
    // Output n sits at n·M/L: ipos and phase of the next one (outCount·M can pass 2^53: BigInt then).
    const pos = this.outCount * poly.M;
    if (pos < 2 ** 52) {
      this.ipos = floorDiv(pos, poly.L);
      this.phaseNum = pos - this.ipos * poly.L;
    } else {
      const big = BigInt(this.outCount) * BigInt(poly.M);
      this.ipos = Number(big / BigInt(poly.L));
      this.phaseNum = Number(big % BigInt(poly.L));
    }
    return out;
  }
}

// The polyphase loops. `first` is the buffer index of the first output's first tap, `phase` its phase; each output
// reads 2·half consecutive stage-1 samples. Width is a multiple of 4: four partial sums per channel break the
// add-latency chain, summed in the same order everywhere.

function exactPair(
  poly: PolyStage,
  bufA: Samples,
  bufB: Samples,
  dstA: Float32Array,
  dstB: Float32Array,
  first: number,
  phase: number,
): void {
  const { coef, advance, next } = poly;
  const width = 2 * poly.half;
  let b = first;
  let p = phase;
  for (let i = 0; i < dstA.length; i++) {
    const r = p * width;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    for (let j = 0; j < width; j += 4) {
      const k0 = coef[r + j]!;
      const k1 = coef[r + j + 1]!;
      const k2 = coef[r + j + 2]!;
      const k3 = coef[r + j + 3]!;
      a0 += bufA[b + j]! * k0;
      a1 += bufA[b + j + 1]! * k1;
      a2 += bufA[b + j + 2]! * k2;
      a3 += bufA[b + j + 3]! * k3;
      b0 += bufB[b + j]! * k0;
      b1 += bufB[b + j + 1]! * k1;
      b2 += bufB[b + j + 2]! * k2;
      b3 += bufB[b + j + 3]! * k3;
    }
    dstA[i] = a0 + a1 + (a2 + a3);
    dstB[i] = b0 + b1 + (b2 + b3);
    b += advance[p]!;
    p = next[p]!;
  }
}

function exactOne(poly: PolyStage, buf: Samples, dst: Float32Array, first: number, phase: number): void {
  const { coef, advance, next } = poly;
  const width = 2 * poly.half;
  let b = first;
  let p = phase;
  for (let i = 0; i < dst.length; i++) {
    const r = p * width;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < width; j += 4) {
      s0 += buf[b + j]! * coef[r + j]!;
      s1 += buf[b + j + 1]! * coef[r + j + 1]!;
      s2 += buf[b + j + 2]! * coef[r + j + 2]!;
      s3 += buf[b + j + 3]! * coef[r + j + 3]!;
    }
    dst[i] = s0 + s1 + (s2 + s3);
    b += advance[p]!;
    p = next[p]!;
  }
}

/** Phases between tabulated rows: the outputs of the two nearest rows, linearly interpolated. */
function interpolatedOne(poly: PolyStage, buf: Samples, dst: Float32Array, first: number, phase: number): void {
  const { coef, L, M, phases } = poly;
  const width = 2 * poly.half;
  let b = first;
  let p = phase;
  for (let i = 0; i < dst.length; i++) {
    const pos = (p / L) * phases;
    const p0 = Math.floor(pos);
    const a = pos - p0;
    const r0 = p0 * width;
    const r1 = r0 + width;
    let acc0 = 0;
    let acc1 = 0;
    for (let j = 0; j < width; j++) {
      const x = buf[b + j]!;
      acc0 += x * coef[r0 + j]!;
      acc1 += x * coef[r1 + j]!;
    }
    dst[i] = acc0 + a * (acc1 - acc0);
    p += M;
    if (p >= L) {
      b += Math.floor(p / L);
      p %= L;
    }
  }
}

/**
 * Resamples a whole (short) RawAudio in one call; equal rates return copies.
 * For long audio stream it through {@link createResampler} instead.
 */
export function resampleAudio(audio: RawAudio, toRate: number, options: ResamplerOptions = {}): RawAudio {
  const r = createResampler(audio.sampleRate, toRate, Math.max(1, audio.channels.length), options);
  if (audio.channels.length === 0) return { channels: [], sampleRate: toRate };
  const a = r.process(audio.channels);
  const b = r.flush();
  const channels = a.map((x, c) => {
    const y = b[c]!;
    const out = new Float32Array(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  });
  return { channels, sampleRate: toRate };
}
