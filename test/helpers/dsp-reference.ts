/**
 * Naive float64 reference implementations for the DSP tests, written independently of src/dsp:
 * O(n²) DFTs and a literal transcription of torch.stft / torch.istft (center=True, reflect padding).
 */

/** cos/sin of 2π·r/n for integer r, exact index arithmetic so that large j·k products keep full precision. */
function twiddles(n: number): { c: Float64Array; s: Float64Array } {
  const c = new Float64Array(n);
  const s = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    c[r] = Math.cos((2 * Math.PI * r) / n);
    s[r] = Math.sin((2 * Math.PI * r) / n);
  }
  return { c, s };
}

/** numpy.fft.rfft by definition: X[k] = Σ_j x[j]·e^(−2πijk/n), k = 0..n/2. */
export function naiveRfft(x: ArrayLike<number>): { re: Float64Array; im: Float64Array } {
  const n = x.length;
  const { c, s } = twiddles(n);
  const bins = Math.floor(n / 2) + 1;
  const re = new Float64Array(bins);
  const im = new Float64Array(bins);
  for (let k = 0; k < bins; k++) {
    let sr = 0;
    let si = 0;
    for (let j = 0; j < n; j++) {
      const r = (j * k) % n;
      sr += x[j]! * c[r]!;
      si -= x[j]! * s[r]!;
    }
    re[k] = sr;
    im[k] = si;
  }
  return { re, im };
}

/** numpy.fft.irfft for even n: Hermitian extension, imaginary parts of DC and Nyquist ignored, 1/n included. */
export function naiveIrfft(re: ArrayLike<number>, im: ArrayLike<number>, n: number): Float64Array {
  const { c, s } = twiddles(n);
  const out = new Float64Array(n);
  const h = n / 2;
  for (let j = 0; j < n; j++) {
    let acc = re[0]! + (j % 2 === 0 ? re[h]! : -re[h]!);
    for (let k = 1; k < h; k++) {
      const r = (j * k) % n;
      acc += 2 * (re[k]! * c[r]! - im[k]! * s[r]!);
    }
    out[j] = acc / n;
  }
  return out;
}

/** torch reflect padding (edge not repeated), requires pad < x.length like torch. */
export function naiveReflectPad(x: ArrayLike<number>, left: number, right: number): Float64Array {
  const n = x.length;
  const out = new Float64Array(left + n + right);
  for (let i = 0; i < left; i++) out[i] = x[left - i]!;
  for (let i = 0; i < n; i++) out[left + i] = x[i]!;
  for (let i = 0; i < right; i++) out[left + n + i] = x[n - 2 - i]!;
  return out;
}

export interface NaiveSpec {
  re: Float64Array[];
  im: Float64Array[];
}

/** torch.stft(x, nFft, hop, window, center, pad_mode='reflect', normalized, onesided=True): frames × bins. */
export function naiveStft(
  x: ArrayLike<number>,
  nFft: number,
  hop: number,
  window: ArrayLike<number>,
  center: boolean,
  normalized: boolean,
): NaiveSpec {
  const padded = center ? naiveReflectPad(x, nFft / 2, nFft / 2) : Float64Array.from(x as ArrayLike<number>);
  const frames = 1 + Math.floor((padded.length - nFft) / hop);
  const scale = normalized ? 1 / Math.sqrt(nFft) : 1;
  const re: Float64Array[] = [];
  const im: Float64Array[] = [];
  for (let t = 0; t < frames; t++) {
    const frame = new Float64Array(nFft);
    for (let j = 0; j < nFft; j++) frame[j] = padded[t * hop + j]! * window[j]!;
    const X = naiveRfft(frame);
    re.push(X.re.map((v) => v * scale));
    im.push(X.im.map((v) => v * scale));
  }
  return { re, im };
}

/** torch.istft(X, nFft, hop, window, center=True, normalized, onesided=True, length). */
export function naiveIstft(
  spec: NaiveSpec,
  nFft: number,
  hop: number,
  window: ArrayLike<number>,
  normalized: boolean,
  length: number,
): Float64Array {
  const frames = spec.re.length;
  const olaLen = nFft + hop * (frames - 1);
  const ola = new Float64Array(olaLen);
  const env = new Float64Array(olaLen);
  const scale = normalized ? Math.sqrt(nFft) : 1;
  for (let t = 0; t < frames; t++) {
    const y = naiveIrfft(
      spec.re[t]!.map((v) => v * scale),
      spec.im[t]!.map((v) => v * scale),
      nFft,
    );
    for (let j = 0; j < nFft; j++) {
      ola[t * hop + j] = ola[t * hop + j]! + y[j]! * window[j]!;
      env[t * hop + j] = env[t * hop + j]! + window[j]! * window[j]!;
    }
  }
  const out = new Float64Array(length);
  for (let i = 0; i < length && nFft / 2 + i < olaLen; i++) out[i] = ola[nFft / 2 + i]! / env[nFft / 2 + i]!;
  return out;
}

/**
 * Max |ours − reference| over all bins and frames of a bin-major spectrogram against a frame-major naive one,
 * relative to the reference's largest component. Throws when the shapes differ.
 */
export function specError(ours: { re: ArrayLike<number>; im: ArrayLike<number>; bins: number; frames: number }, ref: NaiveSpec): number {
  const frames = ref.re.length;
  if (ours.frames !== frames || ours.bins !== ref.re[0]!.length) {
    throw new Error(`spectrogram is ${ours.bins} × ${ours.frames}, the reference ${ref.re[0]!.length} × ${frames}`);
  }
  let err = 0;
  let scale = 0;
  for (let t = 0; t < frames; t++) {
    for (let k = 0; k < ours.bins; k++) {
      const i = k * frames + t;
      err = Math.max(err, Math.abs(ours.re[i]! - ref.re[t]![k]!), Math.abs(ours.im[i]! - ref.im[t]![k]!));
      scale = Math.max(scale, Math.abs(ref.re[t]![k]!), Math.abs(ref.im[t]![k]!));
    }
  }
  return err / scale;
}

/** Deterministic uniform noise in [−0.5, 0.5) (LCG), so failures reproduce. */
export function noise(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/** Sum of sines Σ a·sin(2π·f·i/rate + φ), as float32. */
export function sines(n: number, rate: number, parts: Array<[freq: number, amp: number, phase?: number]>): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const [f, a, p] of parts) v += a * Math.sin((2 * Math.PI * f * i) / rate + (p ?? 0));
    out[i] = v;
  }
  return out;
}

export function maxAbs(x: ArrayLike<number>, from = 0, to = x.length): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, from = 0, to = Math.min(a.length, b.length)): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
