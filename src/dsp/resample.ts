/**
 * Streaming, high-quality sample-rate conversion: a Kaiser-windowed sinc evaluated as a polyphase filter.
 *
 * Output sample n is the band-limited interpolation of the input at time t = n·from/to (in input samples),
 * with a kernel centred on t. So the output is aligned with the input (zero group delay) and starts at the
 * same instant; the input is taken as zero before its first and after its last sample.
 *
 * Filter: passband edge 0.9 × the lower Nyquist, stopband edge 1.0 × the lower Nyquist (nothing above the
 * output Nyquist can alias), Kaiser design for 90 dB, giving < 0.001 dB ripple and > 85 dB measured
 * attenuation (test/dsp/resample.test.ts). Every polyphase row is normalised to unit DC gain.
 *
 * Rates are reduced to to/from = L/M. For L ≤ 4096 (every common pair: 44100↔48000 is 160/147,
 * 44100→16000 is 160/441) each output uses one exact precomputed phase; for larger L the kernel is tabulated
 * at 1024 phases and linearly interpolated between the two nearest (interpolation error ~1e-6; the same quality
 * tests pass, see 44100 → 44101 in test/dsp/resample.test.ts).
 *
 * Hand-written rather than libsamplerate/speex WASM: those libraries buffer internally with their own latency,
 * which would have to be measured and trimmed, while this design makes "streaming output == one-shot output"
 * and "output length = round(len·to/from)" exact by construction.
 */
// Bad arguments here come from stemkit's own code or model data, never straight from the user: InternalError (70).
import { InternalError } from '../errors.js';
import type { RawAudio } from '../audio/raw-audio.js';

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

/** Stopband attenuation the Kaiser window is designed for, in dB. */
const ATTENUATION_DB = 90;
/** Passband edge and stopband edge as fractions of the lower Nyquist frequency. */
const PASS_EDGE = 0.9;
const STOP_EDGE = 1.0;
/** Largest L (output rate / gcd) with one exact phase per output; beyond it phases are interpolated. */
const MAX_EXACT_PHASES = 4096;
const INTERP_PHASES = 1024;

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for β ≤ 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Polyphase kernel table shared by all resamplers with the same rates. */
interface Kernel {
  /** Half width in input samples: each output reads 2·half inputs. */
  half: number;
  /** Number of tabulated phases (rows); row p is the kernel at fractional offset p/phases. */
  phases: number;
  /** True when row = (n·M mod L) exactly; false when rows are interpolated. */
  exact: boolean;
  /** Rows of 2·half coefficients; `phases + 1` rows when interpolated (row `phases` = offset 1). */
  coef: Float64Array;
}

const kernelCache = new Map<string, Kernel>();

function designKernel(from: number, to: number, L: number): Kernel {
  const key = `${from}:${to}`;
  const cached = kernelCache.get(key);
  if (cached !== undefined) return cached;
  const lower = Math.min(from, to);
  // Frequencies in cycles per input sample.
  const fc = (0.5 * ((PASS_EDGE + STOP_EDGE) / 2) * lower) / from;
  const df = (0.5 * (STOP_EDGE - PASS_EDGE) * lower) / from;
  const beta = 0.1102 * (ATTENUATION_DB - 8.7);
  // Kaiser's length estimate N = (A − 7.95) / (2.285 · 2π·Δf) taps at the input rate.
  const taps = (ATTENUATION_DB - 7.95) / (2.285 * 2 * Math.PI * df) + 1;
  const half = Math.ceil(taps / 2);
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
      // Tap j reads input k = ipos − half + 1 + j, at distance τ = t − k = frac + half − 1 − j.
      const tau = frac + half - 1 - j;
      const u = tau / half;
      let v = 0;
      if (Math.abs(u) < 1) {
        const x = 2 * fc * tau;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        v = 2 * fc * sinc * (besselI0(beta * Math.sqrt(1 - u * u)) / i0b);
      }
      coef[p * width + j] = v;
      sum += v;
    }
    // Unit DC gain per phase removes the small periodic gain modulation between phases.
    for (let j = 0; j < width; j++) coef[p * width + j] = coef[p * width + j]! / sum;
  }
  const kernel: Kernel = { half, phases, exact, coef };
  kernelCache.set(key, kernel);
  return kernel;
}

function checkRate(rate: number, name: string): void {
  if (!Number.isInteger(rate) || rate <= 0 || rate > 10_000_000) {
    throw new InternalError(`resample: ${name} rate must be a positive integer in Hz, got ${rate}`, {
      hint: 'use an integer sample rate such as 16000, 44100 or 48000',
    });
  }
}

/**
 * Creates a streaming resampler from `fromRate` to `toRate` for `channels` planar channels.
 * Equal rates give a pass-through that copies its input.
 * @throws InternalError for non-integer or non-positive rates or channel counts.
 */
export function createResampler(fromRate: number, toRate: number, channels: number): Resampler {
  checkRate(fromRate, 'input');
  checkRate(toRate, 'output');
  if (!Number.isInteger(channels) || channels < 1) {
    throw new InternalError(`resample: channel count must be a positive integer, got ${channels}`, {
      hint: 'pass the number of planar channels of the audio',
    });
  }
  const g = gcd(fromRate, toRate);
  const L = toRate / g;
  const M = fromRate / g;
  if (L === M) return new PassThrough(fromRate, toRate, channels);
  return new PolyphaseResampler(fromRate, toRate, channels, L, M, designKernel(fromRate, toRate, L));
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

class PolyphaseResampler implements Resampler {
  /** Per channel: input history; buf[i] holds global input sample bufStart + i (float64: no conversion per tap). */
  private readonly bufs: Float64Array[];
  private bufStart: number;
  private bufLen = 0;
  /** Input samples received. */
  private inCount = 0;
  /** Outputs produced, and the position of the next one: t = ipos + phaseNum/L input samples. */
  private outCount = 0;
  private ipos = 0;
  private phaseNum = 0;
  private flushed = false;

  constructor(
    readonly fromRate: number,
    readonly toRate: number,
    readonly channels: number,
    private readonly L: number,
    private readonly M: number,
    private readonly kernel: Kernel,
  ) {
    // `half` zeros of history stand for the silence before the first sample.
    const cap = 4 * kernel.half + 4096;
    this.bufs = Array.from({ length: channels }, () => new Float64Array(cap));
    this.bufStart = -kernel.half;
    this.bufLen = kernel.half;
  }

  process(block: Float32Array[]): Float32Array[] {
    if (this.flushed) {
      throw new InternalError('resample: process() called after flush()', { hint: 'create a new resampler per stream' });
    }
    const n = checkBlock(block, this.channels);
    this.append(block, n);
    this.inCount += n;
    return this.produce(this.countAvailable(this.inCount));
  }

  flush(): Float32Array[] {
    if (this.flushed) return Array.from({ length: this.channels }, () => new Float32Array(0));
    this.flushed = true;
    const { L, M } = this;
    // round(inCount·L/M), half up, in BigInt: inCount·L can pass 2^53 for long inputs with a large L.
    const total = Number((2n * BigInt(this.inCount) * BigInt(L) + BigInt(M)) / (2n * BigInt(M)));
    const remaining = total - this.outCount;
    if (remaining <= 0) return Array.from({ length: this.channels }, () => new Float32Array(0));
    // Zeros after the end, enough for the last output's kernel.
    const lastIpos = Number((BigInt(total - 1) * BigInt(M)) / BigInt(L));
    const need = lastIpos + this.kernel.half + 1 - (this.bufStart + this.bufLen);
    if (need > 0) {
      const zeros = new Float32Array(need);
      this.append(
        Array.from({ length: this.channels }, () => zeros),
        need,
      );
    }
    return this.produce(remaining);
  }

  /** Outputs computable when inputs [0, available) are known: those whose kernel ends before `available`. */
  private countAvailable(available: number): number {
    const { L, M } = this;
    // Output n needs floor(n·M/L) + half ≤ available − 1.
    const maxIpos = available - 1 - this.kernel.half;
    if (maxIpos < this.ipos) return 0;
    // Largest n with floor(n·M/L) ≤ maxIpos is floor(((maxIpos + 1)·L − 1) / M).
    const lastN = Number((BigInt(maxIpos + 1) * BigInt(L) - 1n) / BigInt(M));
    return Math.max(0, lastN + 1 - this.outCount);
  }

  private append(block: Float32Array[], n: number): void {
    if (n === 0) return;
    // Drop history no longer needed by the next output.
    const keepFrom = this.ipos - this.kernel.half + 1;
    const drop = keepFrom - this.bufStart;
    if (drop > 0) {
      for (const b of this.bufs) b.copyWithin(0, drop, this.bufLen);
      this.bufStart += drop;
      this.bufLen -= drop;
    }
    const need = this.bufLen + n;
    if (need > this.bufs[0]!.length) {
      const cap = Math.max(need, 2 * this.bufs[0]!.length);
      for (let c = 0; c < this.channels; c++) {
        const nb = new Float64Array(cap);
        nb.set(this.bufs[c]!.subarray(0, this.bufLen));
        this.bufs[c] = nb;
      }
    }
    for (let c = 0; c < this.channels; c++) this.bufs[c]!.set(block[c]!.subarray(0, n), this.bufLen);
    this.bufLen += n;
  }

  private produce(count: number): Float32Array[] {
    const out = Array.from({ length: this.channels }, () => new Float32Array(count));
    if (count === 0) return out;
    const { L, M, kernel } = this;
    const { half, coef, phases, exact } = kernel;
    const width = 2 * half;
    // Stereo, exact phases: both channels in one pass share every coefficient load (same arithmetic per channel
    // as the generic loop below, so results do not depend on which path ran).
    const pairs = exact ? this.channels >> 1 : 0;
    for (let c = 0; c < 2 * pairs; c += 2) {
      const bufA = this.bufs[c]!;
      const bufB = this.bufs[c + 1]!;
      const dstA = out[c]!;
      const dstB = out[c + 1]!;
      let ipos = this.ipos;
      let phaseNum = this.phaseNum;
      const base0 = -half + 1 - this.bufStart;
      for (let i = 0; i < count; i++) {
        const b = ipos + base0;
        const r = phaseNum * width;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        let b0 = 0;
        let b1 = 0;
        let b2 = 0;
        let b3 = 0;
        let j = 0;
        for (; j + 3 < width; j += 4) {
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
        for (; j < width; j++) {
          a0 += bufA[b + j]! * coef[r + j]!;
          b0 += bufB[b + j]! * coef[r + j]!;
        }
        dstA[i] = a0 + a1 + (a2 + a3);
        dstB[i] = b0 + b1 + (b2 + b3);
        phaseNum += M;
        if (phaseNum >= L) {
          ipos += Math.floor(phaseNum / L);
          phaseNum %= L;
        }
      }
    }
    for (let c = 2 * pairs; c < this.channels; c++) {
      const buf = this.bufs[c]!;
      const dst = out[c]!;
      let ipos = this.ipos;
      let phaseNum = this.phaseNum;
      const base0 = -half + 1 - this.bufStart;
      for (let i = 0; i < count; i++) {
        const b = ipos + base0;
        let acc: number;
        if (exact) {
          const r = phaseNum * width;
          // Four partial sums break the add-latency chain (width is even; the tail handles width % 4 = 2).
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0;
          let j = 0;
          for (; j + 3 < width; j += 4) {
            s0 += buf[b + j]! * coef[r + j]!;
            s1 += buf[b + j + 1]! * coef[r + j + 1]!;
            s2 += buf[b + j + 2]! * coef[r + j + 2]!;
            s3 += buf[b + j + 3]! * coef[r + j + 3]!;
          }
          for (; j < width; j++) s0 += buf[b + j]! * coef[r + j]!;
          acc = s0 + s1 + (s2 + s3);
        } else {
          const pos = (phaseNum / L) * phases;
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
          acc = acc0 + a * (acc1 - acc0);
        }
        dst[i] = acc;
        phaseNum += M;
        if (phaseNum >= L) {
          ipos += Math.floor(phaseNum / L);
          phaseNum %= L;
        }
      }
    }
    // Advance the shared position once, identically to the per-channel loops above.
    for (let i = 0; i < count; i++) {
      this.phaseNum += M;
      if (this.phaseNum >= L) {
        this.ipos += Math.floor(this.phaseNum / L);
        this.phaseNum %= L;
      }
    }
    this.outCount += count;
    return out;
  }
}

/**
 * Resamples a whole (short) RawAudio in one call; equal rates return copies.
 * For long audio stream it through {@link createResampler} instead.
 */
export function resampleAudio(audio: RawAudio, toRate: number): RawAudio {
  const r = createResampler(audio.sampleRate, toRate, Math.max(1, audio.channels.length));
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
