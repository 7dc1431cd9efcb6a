/**
 * STFT and inverse STFT with the conventions of torch.stft / torch.istft (onesided, `center=True` with reflect
 * padding by default, optional `normalized` scaling), which the separation models were trained with
 * (/work/shared/docs/model-io.md §1.4 HTDemucs and §2.3 MDX-Net).
 *
 * Spectrograms are bin-major ([bins][frames], like torch's [F, T]), float32, as the ONNX graphs want them.
 * Per-frame helpers (`stftFrame`, `istftFrameAdd`, `steadyStateEnvelope`) serve streaming callers such as the
 * 16 kHz speech models, which analyse and synthesise one hop at a time.
 */
// Bad arguments here come from stemkit's own code or model data, never straight from the user: InternalError (70).
import { InternalError } from '../errors.js';
import { RealFFT, type RealTransform } from './fft.js';
import { simdRealFFT } from './fft-simd.js';

/**
 * Which FFT a transform runs on. 'float64': the JavaScript RealFFT (reference accuracy, every size).
 * 'float32': the WASM SIMD FFT of fft-simd.ts (4–6× faster, errors ≈ 6e-8 of the spectrum's peak) once
 * `loadSimdFft()` has resolved and where it supports the size; otherwise the float64 FFT.
 */
export type FftPrecision = 'float64' | 'float32';

export interface StftOptions {
  /** FFT length; also the window length (win_length == n_fft). Even, of the form 2^a·3^b·5^c. */
  nFft: number;
  /** Hop between frames in samples. */
  hop: number;
  /** Window of length nFft (e.g. `hannPeriodic(nFft)`). */
  window: Float32Array;
  /** Reflect-pad nFft/2 samples on both sides so that frame t is centred on sample t·hop (default true). */
  center?: boolean;
  /** Scale the forward transform by 1/√nFft, and the inverse input by √nFft (default false). */
  normalized?: boolean;
  /** FFT to run on (default 'float64'); float32 pipelines pass 'float32' after awaiting `loadSimdFft()`. */
  precision?: FftPrecision;
}

/** A onesided complex spectrogram, bin-major: value (k, t) is at index k·frames + t. */
export interface Spectrogram {
  re: Float32Array;
  im: Float32Array;
  /** nFft/2 + 1. */
  bins: number;
  frames: number;
}

/**
 * Envelope values below this are treated as "no window energy": the output sample is set to 0 instead of
 * dividing by (almost) zero. torch.istft raises when the envelope is below 1e-11 inside the output; this only
 * happens with windows/hops that violate NOLA or with center=false edges, and a 0 there is the useful answer.
 */
export const ENVELOPE_FLOOR = 1e-11;

const fftCache = new Map<number, RealFFT>();

/**
 * A shared real FFT per size and precision: construction computes twiddles, so repeated STFT calls reuse them.
 * 'float32' gives the WASM SIMD FFT where it is loaded and takes n, the float64 RealFFT otherwise.
 */
export function getRealFFT(n: number, precision: FftPrecision = 'float64'): RealTransform {
  if (precision === 'float32') {
    const simd = simdRealFFT(n);
    if (simd !== null) return simd;
  }
  let fft = fftCache.get(n);
  if (fft === undefined) {
    fft = new RealFFT(n);
    fftCache.set(n, fft);
  }
  return fft;
}

/**
 * Frames are transformed in groups of GROUP through a small bin-major scratch (bin k of frame u at k·GROUP + u,
 * written by the FFT with a stride), so that the big bin-major spectrogram is read/written in runs of GROUP
 * contiguous values (one 64-byte cache line of float32) instead of one scattered value per bin per frame.
 */
const GROUP = 16;

function checkOptions(opts: StftOptions, where: string): void {
  const { nFft, hop, window } = opts;
  if (!Number.isInteger(nFft) || nFft < 2 || nFft % 2 !== 0) {
    throw new InternalError(`${where}: nFft must be an even integer ≥ 2, got ${nFft}`, {
      hint: 'use an FFT size such as 512, 4096, 5120, 6144 or 7680',
    });
  }
  if (!Number.isInteger(hop) || hop < 1) {
    throw new InternalError(`${where}: hop must be a positive integer, got ${hop}`, { hint: 'pass e.g. hop = nFft / 4' });
  }
  if (window.length !== nFft) {
    throw new InternalError(`${where}: window length ${window.length} differs from nFft ${nFft}`, {
      hint: 'build the window with the same length as nFft, e.g. hannPeriodic(nFft)',
    });
  }
}

/**
 * Index into a signal of length len with numpy/torch "reflect" rules: the edge sample is not repeated
 * (x[−1] → x[1], x[len] → x[len−2]); pads longer than the signal keep reflecting (numpy behaviour;
 * torch refuses them).
 */
function reflectIndex(i: number, len: number): number {
  if (len === 1) return 0;
  const period = 2 * (len - 1);
  let j = i % period;
  if (j < 0) j += period;
  return j < len ? j : period - j;
}

/** Copy of `signal` with `pad` reflected samples on both sides. */
export function reflectPad(signal: Float32Array, pad: number): Float32Array {
  const len = signal.length;
  const out = new Float32Array(len + 2 * pad);
  out.set(signal, pad);
  if (len > 0) {
    for (let i = 0; i < pad; i++) {
      out[i] = signal[reflectIndex(i - pad, len)]!;
      out[pad + len + i] = signal[reflectIndex(len + i, len)]!;
    }
  }
  return out;
}

/**
 * Windowed FFT of one frame: input[offset .. offset+n) · window, times `scale`, into n/2+1 bins.
 * With scale = 1/√n this is one column of a `normalized` STFT.
 */
export function stftFrame(
  input: ArrayLike<number>,
  offset: number,
  window: ArrayLike<number>,
  fft: RealTransform,
  outRe: Float64Array,
  outIm: Float64Array,
  scale = 1,
): void {
  fft.forwardWindowed(input, offset, window, scale, outRe, outIm);
}

/**
 * Synthesis of one frame: inverse FFT of (re, im)·scale (including the usual 1/n), times `window`, added into
 * out[offset .. offset+n). With scale = √n this inverts a `normalized` frame. Dividing the accumulated output
 * by the window-square envelope (see {@link steadyStateEnvelope}) completes the iSTFT.
 */
export function istftFrameAdd(
  re: ArrayLike<number>,
  im: ArrayLike<number>,
  window: ArrayLike<number>,
  fft: RealTransform,
  out: Float64Array | Float32Array,
  offset: number,
  scale = 1,
): void {
  fft.inverseWindowedAdd(re, im, window, scale, out, offset);
}

/**
 * Window-square envelope of a long frame sequence away from its edges: e[i] = Σ_k w²(i + k·hop), i = 0..hop−1.
 * For a streaming iSTFT, output sample j (far from the start) is ola[j] / e[j mod hop].
 * For sqrt-Hann 512/256 every value is 1; for periodic Hann with hop n/4 every value is 1.5.
 */
export function steadyStateEnvelope(window: ArrayLike<number>, hop: number): Float64Array {
  const e = new Float64Array(hop);
  for (let j = 0; j < window.length; j++) {
    const w = window[j]!;
    e[j % hop] = e[j % hop]! + w * w;
  }
  return e;
}

/** Σ_t w²(i − t·hop) over frames t = 0..frames−1: the iSTFT denominator at OLA index i, summed explicitly. */
function envelopeAt(window: ArrayLike<number>, hop: number, frames: number, i: number): number {
  const nFft = window.length;
  let e = 0;
  const tMin = Math.max(0, Math.ceil((i - nFft + 1) / hop));
  const tMax = Math.min(frames - 1, Math.floor(i / hop));
  for (let t = tMin; t <= tMax; t++) {
    const w = window[i - t * hop]!;
    e += w * w;
  }
  return e;
}

/** A bin-major region inside a larger float32 tensor: value (bin k, frame t) at offset + k·stride + t. */
export interface SpectrogramView {
  re: Float32Array;
  im: Float32Array;
  reOffset: number;
  imOffset: number;
  /** Values from one bin's row to the next (the tensor's frame count). */
  stride: number;
}

/** Which part of a (virtually padded) signal's STFT {@link stftInto} computes. */
export interface StftRegion {
  /**
   * Reflect padding applied to the signal before the centring pad, without copying it (HTDemucs pads
   * 1536 | 1620 samples, model-io.md §1.4). Default 0 on both sides.
   */
  padLeft?: number;
  padRight?: number;
  /** Frames [firstFrame, firstFrame + frames) of the full STFT are written. */
  firstFrame: number;
  frames: number;
  /** Bins [0, bins) are written (at most nFft/2 + 1). */
  bins: number;
}

/** Which part of an iSTFT {@link istftInto} computes, and from which frames. */
export interface IstftRegion {
  /** Frames of the whole spectrogram: the window-square envelope counts every one of them. */
  totalFrames: number;
  /** The frames the view holds, [firstFrame, firstFrame + frames); the others are zero. */
  firstFrame: number;
  frames: number;
  /** The bins the view holds, [0, bins); the higher ones are zero. */
  bins: number;
  /** out[outOffset + k] receives sample start + k of the iSTFT (torch.istft's output indexing), k < length. */
  start: number;
  length: number;
  /** Add into `out` instead of overwriting it. Each sample is rounded to float32 before the addition. */
  add?: boolean;
}

/**
 * Steady-state part of the iSTFT's output: out[o + i] (= or +=) acc[i] / steady[i mod hop] for i in [from, to), with
 * acc[0] on a hop boundary. A function of its own, with monomorphic arguments, for the hot loop.
 */
function emitSteady(acc: Float64Array, steady: Float64Array, hop: number, from: number, to: number, out: Float32Array, o: number, add: boolean): void {
  for (let b = from - (from % hop); b < to; b += hop) {
    const i0 = Math.max(b, from);
    const i1 = Math.min(b + hop, to);
    if (add) for (let i = i0; i < i1; i++) out[o + i] = out[o + i]! + Math.fround(steady[i - b]! > ENVELOPE_FLOOR ? acc[i]! / steady[i - b]! : 0);
    else for (let i = i0; i < i1; i++) out[o + i] = steady[i - b]! > ENVELOPE_FLOOR ? acc[i]! / steady[i - b]! : 0;
  }
}

/** Float64 scratch of one FFT size, reused by every call (JS is single-threaded and the calls are synchronous). */
const scratchCache = new Map<number, { fr: Float64Array; fi: Float64Array; acc: Float64Array; edge: Float32Array }>();

function scratchFor(nFft: number, hop: number): { fr: Float64Array; fi: Float64Array; acc: Float64Array; edge: Float32Array } {
  let s = scratchCache.get(nFft);
  const accLen = GROUP * hop + nFft;
  if (s === undefined || s.acc.length < accLen) {
    const bins = nFft / 2 + 1;
    s = { fr: new Float64Array(GROUP * bins), fi: new Float64Array(GROUP * bins), acc: new Float64Array(accLen), edge: new Float32Array(nFft) };
    scratchCache.set(nFft, s);
  }
  return s;
}

/**
 * Short-time Fourier transform, like `torch.stft(x, nFft, hop, window=window, center, pad_mode='reflect',
 * normalized, onesided=True, return_complex=True)`.
 *
 * Frames: 1 + ⌊(len + 2·pad − nFft) / hop⌋ with pad = nFft/2 when centred, else 0.
 * @throws InternalError on inconsistent options or a (non-centred) signal shorter than nFft.
 */
export function stft(signal: Float32Array, opts: StftOptions): Spectrogram {
  checkOptions(opts, 'stft');
  const frames = stftFrameCount(signal.length, opts);
  const bins = opts.nFft / 2 + 1;
  const re = new Float32Array(bins * frames);
  const im = new Float32Array(bins * frames);
  stftInto(signal, opts, { firstFrame: 0, frames, bins }, { re, im, reOffset: 0, imOffset: 0, stride: frames });
  return { re, im, bins, frames };
}

/**
 * Frame count of the STFT of `len` samples (after `padLeft + padRight` extra reflect padding).
 * @throws InternalError when the (padded, non-centred) signal is shorter than nFft.
 */
export function stftFrameCount(len: number, opts: StftOptions, padLeft = 0, padRight = 0): number {
  const { nFft, hop } = opts;
  const pad = (opts.center ?? true) ? nFft / 2 : 0;
  const paddedLen = len + padLeft + padRight + 2 * pad;
  if (paddedLen < nFft) {
    throw new InternalError(`stft: signal of ${len} samples is shorter than nFft ${nFft}`, {
      hint: 'pad the signal or use center=true',
    });
  }
  return 1 + Math.floor((paddedLen - nFft) / hop);
}

/**
 * {@link stft} of a region, written straight into a bin-major tensor (no spectrogram is allocated): frames
 * [firstFrame, firstFrame + frames) and bins [0, bins) of the STFT of reflectPad(signal, padLeft | padRight).
 * The values are exactly those of `stft` on the padded copy.
 * @throws InternalError on inconsistent options or a region outside the STFT.
 */
export function stftInto(signal: Float32Array, opts: StftOptions, region: StftRegion, target: SpectrogramView): void {
  checkOptions(opts, 'stft');
  const { nFft, hop, window } = opts;
  const center = opts.center ?? true;
  const scale = opts.normalized === true ? 1 / Math.sqrt(nFft) : 1;
  const c = center ? nFft / 2 : 0;
  const padL = region.padLeft ?? 0;
  const padR = region.padRight ?? 0;
  const len = signal.length;
  const total = stftFrameCount(len, opts, padL, padR);
  const allBins = nFft / 2 + 1;
  const { firstFrame, frames, bins } = region;
  if (firstFrame < 0 || frames < 0 || firstFrame + frames > total || bins < 0 || bins > allBins) {
    throw new InternalError(`stft: region of frames ${firstFrame}+${frames}, ${bins} bins lies outside the ${total} × ${allBins} STFT`, {
      hint: 'check the frame range against stftFrameCount()',
    });
  }
  const paddedLen = len + padL + padR;
  const { re, im, reOffset, imOffset, stride } = target;
  const fft = getRealFFT(nFft, opts.precision);
  // Frames lying inside the signal are read in place; only the few that reach into the padding are assembled in
  // a one-frame buffer (centring pad reflected over the padded signal, as torch does on the padded copy).
  const { fr, fi, edge } = scratchFor(nFft, hop);
  const batch = fft.binMajor !== undefined && fft.binMajor.maxFrames >= GROUP ? fft.binMajor : undefined;
  for (let t0 = 0; t0 < frames; t0 += GROUP) {
    const g = Math.min(GROUP, frames - t0);
    for (let u = 0; u < g; u++) {
      const first = (firstFrame + t0 + u) * hop - c - padL;
      let src: ArrayLike<number> = signal;
      let at = first;
      if (first < 0 || first + nFft > len) {
        for (let j = 0; j < nFft; j++) {
          const p = reflectIndex(first + padL + j, paddedLen) - padL;
          edge[j] = p >= 0 && p < len ? signal[p]! : len === 0 ? 0 : signal[reflectIndex(p, len)]!;
        }
        src = edge;
        at = 0;
      }
      if (batch) batch.loadFrame(u, src, at, window);
      else fft.forwardWindowed(src, at, window, scale, fr, fi, u, GROUP);
    }
    if (batch) {
      batch.forwardStaged(g, scale, re, im, reOffset + t0, imOffset + t0, stride, bins);
      continue;
    }
    for (let k = 0; k < bins; k++) {
      const ro = reOffset + k * stride + t0;
      const io = imOffset + k * stride + t0;
      const q = k * GROUP;
      for (let u = 0; u < g; u++) {
        re[ro + u] = fr[q + u]!;
        im[io + u] = fi[q + u]!;
      }
    }
  }
}

/**
 * Inverse STFT, like `torch.istft(X, nFft, hop, window=window, center, normalized, onesided=True, length)`:
 * inverse FFT per frame (×√nFft first when normalized), window, overlap-add, divide by the window-square
 * envelope Σ_t w²(n − t·hop) (samples whose envelope is below {@link ENVELOPE_FLOOR} become 0), then drop
 * nFft/2 samples at the start when centred.
 *
 * Output length: `length` when given (zero-padded if it runs past the overlap-add buffer), otherwise
 * hop·(frames − 1) when centred and nFft + hop·(frames − 1) when not.
 * @throws InternalError when spec.bins ≠ nFft/2 + 1, the arrays do not match bins·frames, or length is invalid.
 */
export function istft(spec: Spectrogram, opts: StftOptions & { length?: number }): Float32Array {
  checkOptions(opts, 'istft');
  const { nFft, hop } = opts;
  const center = opts.center ?? true;
  const bins = nFft / 2 + 1;
  const frames = spec.frames;
  if (spec.bins !== bins || spec.re.length !== bins * frames || spec.im.length !== bins * frames) {
    throw new InternalError(
      `istft: spectrogram has ${spec.bins} bins × ${frames} frames (${spec.re.length} values), expected ${bins} bins for nFft ${nFft}`,
      { hint: 'pad the frequency axis back to nFft/2 + 1 bins (zeros) before the inverse' },
    );
  }
  if (opts.length !== undefined && (!Number.isInteger(opts.length) || opts.length < 0)) {
    throw new InternalError(`istft: length must be a non-negative integer, got ${opts.length}`, {
      hint: 'pass the number of output samples wanted, or omit it',
    });
  }
  const start = center ? nFft / 2 : 0;
  const olaLen = frames > 0 ? nFft + hop * (frames - 1) : 0;
  const outLen = opts.length ?? Math.max(0, olaLen - 2 * start);
  const out = new Float32Array(outLen);
  if (frames === 0) return out;
  const view = { re: spec.re, im: spec.im, reOffset: 0, imOffset: 0, stride: frames };
  istftInto(view, opts, { totalFrames: frames, firstFrame: 0, frames, bins, start: 0, length: outLen }, out);
  return out;
}

/**
 * {@link istft} of a spectrogram held in part by a bin-major view (frames and bins outside it are zero), writing
 * or adding samples [start, start + length) into `out` at `outOffset`: no spectrogram or signal is allocated.
 * The values are exactly those of `istft` on the zero-filled spectrogram (with `add`, each sample is rounded to
 * float32 first, as adding istft's float32 output would).
 * @throws InternalError on inconsistent options or region.
 */
export function istftInto(source: SpectrogramView, opts: StftOptions, region: IstftRegion, out: Float32Array, outOffset = 0): void {
  checkOptions(opts, 'istft');
  const { nFft, hop, window } = opts;
  const center = opts.center ?? true;
  const scale = opts.normalized === true ? Math.sqrt(nFft) : 1;
  const allBins = nFft / 2 + 1;
  const { totalFrames: frames, firstFrame, bins, start, length } = region;
  const present = region.frames;
  if (firstFrame < 0 || present < 0 || firstFrame + present > frames || bins < 0 || bins > allBins || start < 0 || length < 0 || outOffset + length > out.length) {
    throw new InternalError(`istft: region (frames ${firstFrame}+${present} of ${frames}, ${bins} bins, samples ${start}+${length}) does not fit`, {
      hint: 'check the region against the spectrogram and the output buffer',
    });
  }
  if (frames === 0 || length === 0) return;
  const add = region.add === true;
  // Overlap-add through a float64 accumulator of one group of frames: after frames t0 .. t0+g−1 are added, OLA
  // samples [t0·hop, (t0+g)·hop) receive no further frames, so they are divided by the envelope and written out,
  // and the accumulator shifts by g hops (once per group, not per frame). Memory stays O(GROUP·hop + nFft).
  const { acc } = scratchFor(nFft, hop);
  const accLen = GROUP * hop + nFft;
  acc.fill(0, 0, accLen);
  const steady = steadyStateEnvelope(window, hop);
  // OLA index j is covered by a full set of frames when j ≥ nFft − 1 and j < frames·hop: there the envelope is
  // the steady-state value; only the edges need the explicit sum. OLA index j is output sample j − shift.
  const lo = nFft - 1;
  const hi = frames * hop;
  const shift = (center ? nFft / 2 : 0) + start - outOffset;
  const end = outOffset + length;
  // Writes OLA samples [j0, j0 + count), held in acc from index 0.
  const emit = (j0: number, count: number): void => {
    const from = Math.max(0, outOffset + shift - j0);
    const to = Math.min(count, end + shift - j0);
    if (from >= to) return;
    if (j0 % hop === 0 && j0 + from >= lo && j0 + to <= hi) {
      emitSteady(acc, steady, hop, from, to, out, j0 - shift, add);
      return;
    }
    for (let i = from; i < to; i++) {
      const j = j0 + i;
      const e = j >= lo && j < hi ? steady[j % hop]! : envelopeAt(window, hop, frames, j);
      const v = e > ENVELOPE_FLOOR ? acc[i]! / e : 0;
      if (add) out[j - shift] = out[j - shift]! + Math.fround(v);
      else out[j - shift] = v;
    }
  };
  const fft = getRealFFT(nFft, opts.precision);
  // Views starting at each plane's offset, read by the FFT at one (frame) offset with the tensor's stride. Straight
  // from the tensor, frame by frame: a group's 16 frames share each bin's cache line, which stays in L2 between
  // them (staging a group's spectra in the WASM heap first measured 35 % slower).
  const re = source.re.subarray(source.reOffset);
  const im = source.im.subarray(source.imOffset);
  const { stride } = source;
  // Frames t with t·hop < end + shift reach the wanted samples; none after them does.
  const wantedFrames = Math.min(frames, Math.ceil((end + shift) / hop));
  for (let t0 = 0; t0 < frames; t0 += GROUP) {
    const g = Math.min(GROUP, frames - t0);
    const needed = Math.min(g, wantedFrames - t0);
    if (needed <= 0) return;
    // Frames the view does not hold are zero: they add nothing (the envelope still counts them).
    const a = Math.max(0, firstFrame - t0);
    const b = Math.min(needed, firstFrame + present - t0);
    for (let u = a; u < b; u++) fft.inverseWindowedAdd(re, im, window, scale, acc, u * hop, t0 + u - firstFrame, stride, bins);
    emit(t0 * hop, needed * hop);
    if (needed < g) return;
    const tail = g * hop + nFft - hop;
    acc.copyWithin(0, g * hop, tail);
    acc.fill(0, nFft - hop, tail);
  }
  // The last frame's remaining nFft − hop samples are complete too.
  if (nFft > hop) emit(frames * hop, nFft - hop);
}
