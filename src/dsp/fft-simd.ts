/**
 * Float32 real FFT on WebAssembly SIMD: PFFFT (BSD, @echogarden/pffft-wasm), behind the {@link RealTransform}
 * interface of the float64 RealFFT, for pipelines whose data is float32 anyway.
 *
 * PFFFT is 4–6× faster than the float64 JavaScript FFT (scripts/bench-fft.mjs) with errors of about 6e-8 of the
 * spectrum's peak, below the float32 rounding that the spectrogram tensors apply in any case. It handles
 * n = 2^a·3^b·5^c with n a multiple of 32; other sizes keep the float64 FFT.
 *
 * The WASM module is compiled on the first {@link loadSimdFft} call, never at import, so commands that need no FFT
 * (`stemkit --help`, config errors) do not pay for it. Each size owns three buffers in the module's heap (input,
 * output, PFFFT's work area), allocated once; calls copy the frame in (windowed) and the bins out and allocate
 * nothing.
 */
import type { PffftModule } from '@echogarden/pffft-wasm/simd';
import { isSupportedFftSize, type BinMajorBatch, type RealTransform } from './fft.js';

const PFFFT_REAL = 0;
const PFFFT_FORWARD = 0;
const PFFFT_BACKWARD = 1;

let pffft: PffftModule | null = null;
let loading: Promise<boolean> | null = null;
let enabled = true;
/** Frames per {@link BinMajorBatch} call: 16 float32 bins are one 64-byte cache line of a bin-major tensor. */
const BATCH = 16;
/** Per size: its transform, or null when PFFFT refused the size. */
const instances = new Map<number, SimdRealFFT | null>();

/**
 * Compiles and instantiates the WASM SIMD FFT once per process (later calls return the same promise).
 * Resolves false, without throwing, where WebAssembly SIMD is unavailable: callers then keep the float64 FFT.
 */
export function loadSimdFft(): Promise<boolean> {
  loading ??= (async () => {
    try {
      const { default: factory } = await import('@echogarden/pffft-wasm/simd');
      // Emscripten prints its own abort messages; the library never prints, and a failure here only means float64.
      pffft = await factory({ print: () => {}, printErr: () => {} });
      return true;
    } catch {
      return false;
    }
  })();
  return loading;
}

/**
 * Turns the SIMD FFT off (or back on) for the whole process: while off, every float32 request gets the float64
 * FFT. For side-by-side benchmarks and comparisons; pipelines never call it.
 */
export function setSimdFftEnabled(on: boolean): void {
  enabled = on;
}

/** True when PFFFT's real transform takes size n (its own rule: n = 2^a·3^b·5^c with a ≥ 5). */
export function isSimdFftSize(n: number): boolean {
  return Number.isInteger(n) && n >= 32 && n % 32 === 0 && isSupportedFftSize(n);
}

/**
 * The SIMD transform of size n, or null when it is off, not loaded yet ({@link loadSimdFft}) or cannot do n.
 * Instances are shared per size, like the float64 ones.
 */
export function simdRealFFT(n: number): RealTransform | null {
  if (!enabled || pffft === null || !isSimdFftSize(n)) return null;
  let fft = instances.get(n);
  if (fft === undefined) {
    const setup = pffft._pffft_new_setup(n, PFFFT_REAL);
    fft = setup === 0 ? null : new SimdRealFFT(pffft, setup, n);
    instances.set(n, fft);
  }
  return fft;
}

/**
 * PFFFT's ordered real spectrum is [X₀, X_{n/2}, Re X₁, Im X₁, …, Re X_{n/2−1}, Im X_{n/2−1}] (DC and Nyquist are
 * real); its backward transform reads the same layout and returns n·x.
 */
class SimdRealFFT implements RealTransform, BinMajorBatch {
  readonly maxFrames = BATCH;
  /** Float indices of the buffers in the heap (byte pointer / 4). */
  private readonly inAt: number;
  private readonly outAt: number;
  /** Byte pointer of PFFFT's work area (n floats), so that it never uses the small WASM stack. */
  private readonly work: number;

  constructor(
    private readonly mod: PffftModule,
    private readonly setup: number,
    readonly n: number,
  ) {
    this.inAt = mod._pffft_aligned_malloc(4 * n) >> 2;
    this.outAt = mod._pffft_aligned_malloc(4 * n) >> 2;
    this.work = mod._pffft_aligned_malloc(4 * n);
    this.span = n + 16;
  }

  /**
   * Float indices of the batch's input and output areas (BATCH frames each, `span` floats apart), allocated on
   * first use. The frames are n + 16 floats apart, not n: a power-of-two distance would map the same bin of every
   * frame to one L1 cache set, and the bin-major loops touch all frames at once.
   */
  private batchIn = -1;
  private batchOut = -1;
  private readonly span: number;

  get binMajor(): BinMajorBatch {
    return this;
  }

  private batchAreas(): void {
    if (this.batchIn >= 0) return;
    this.batchIn = this.mod._pffft_aligned_malloc(4 * BATCH * this.span) >> 2;
    this.batchOut = this.mod._pffft_aligned_malloc(4 * BATCH * this.span) >> 2;
  }

  loadFrame(u: number, input: ArrayLike<number>, offset: number, window: ArrayLike<number>): void {
    this.batchAreas();
    const h = this.mod.HEAPF32;
    const n = this.n;
    const a = this.batchIn + u * this.span;
    for (let j = 0; j < n; j++) h[a + j] = input[offset + j]! * window[j]!;
  }

  forwardStaged(g: number, scale: number, re: Float32Array, im: Float32Array, reOffset: number, imOffset: number, stride: number, bins: number): void {
    this.batchAreas();
    const m = this.n / 2;
    const n = this.span;
    for (let u = 0; u < g; u++) {
      this.mod._pffft_transform_ordered(this.setup, 4 * (this.batchIn + u * n), 4 * (this.batchOut + u * n), this.work, PFFFT_FORWARD);
    }
    const h = this.mod.HEAPF32;
    const b = this.batchOut;
    // Ordered layout per frame: [X₀, X_m, Re X₁, Im X₁, …]; bin k of frame u at b + u·span + 2k.
    if (bins > 0) {
      for (let u = 0; u < g; u++) {
        re[reOffset + u] = h[b + u * n]! * scale;
        im[imOffset + u] = 0;
      }
    }
    const held = Math.min(bins, m);
    for (let k = 1; k < held; k++) {
      const ro = reOffset + k * stride;
      const io = imOffset + k * stride;
      let p = b + 2 * k;
      for (let u = 0; u < g; u++, p += n) {
        re[ro + u] = h[p]! * scale;
        im[io + u] = h[p + 1]! * scale;
      }
    }
    if (bins > m) {
      for (let u = 0; u < g; u++) {
        re[reOffset + m * stride + u] = h[b + u * n + 1]! * scale;
        im[imOffset + m * stride + u] = 0;
      }
    }
  }

  forward(input: ArrayLike<number>, re: Float64Array, im: Float64Array): void {
    // The heap view is read per call: a later size's allocation may have grown the heap and replaced it.
    const h = this.mod.HEAPF32;
    const a = this.inAt;
    const n = this.n;
    for (let j = 0; j < n; j++) h[a + j] = input[j]!;
    this.finishForward(h, 1, re, im, 0, 1);
  }

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
    const h = this.mod.HEAPF32;
    const a = this.inAt;
    const n = this.n;
    for (let j = 0; j < n; j++) h[a + j] = input[offset + j]! * window[j]!;
    this.finishForward(h, scale, re, im, outOffset, outStride);
  }

  inverse(re: ArrayLike<number>, im: ArrayLike<number>, out: Float64Array): void {
    const h = this.mod.HEAPF32;
    this.runInverse(h, re, im, 0, 1);
    const b = this.outAt;
    const n = this.n;
    const inv = 1 / n;
    for (let j = 0; j < n; j++) out[j] = h[b + j]! * inv;
  }

  inverseWindowedAdd(
    re: ArrayLike<number>,
    im: ArrayLike<number>,
    window: ArrayLike<number>,
    scale: number,
    out: Float64Array | Float32Array,
    offset: number,
    inOffset = 0,
    inStride = 1,
    bins = this.n / 2 + 1,
  ): void {
    const h = this.mod.HEAPF32;
    this.runInverse(h, re, im, inOffset, inStride, bins);
    const b = this.outAt;
    const n = this.n;
    const inv = scale / n;
    for (let j = 0; j < n; j++) out[offset + j] = out[offset + j]! + h[b + j]! * inv * window[j]!;
  }

  /** Transforms the input buffer and unpacks PFFFT's ordered spectrum, times scale, into re/im. */
  private finishForward(h: Float32Array, scale: number, re: Float64Array, im: Float64Array, o: number, st: number): void {
    this.mod._pffft_transform_ordered(this.setup, 4 * this.inAt, 4 * this.outAt, this.work, PFFFT_FORWARD);
    const b = this.outAt;
    const m = this.n / 2;
    re[o] = h[b]! * scale;
    im[o] = 0;
    re[o + m * st] = h[b + 1]! * scale;
    im[o + m * st] = 0;
    for (let k = 1; k < m; k++) {
      re[o + k * st] = h[b + 2 * k]! * scale;
      im[o + k * st] = h[b + 2 * k + 1]! * scale;
    }
  }

  /**
   * Packs bins [0, bins) (bin k at o + k·st; the others zero) into PFFFT's ordered layout and runs the backward
   * transform.
   */
  private runInverse(h: Float32Array, re: ArrayLike<number>, im: ArrayLike<number>, o: number, st: number, bins = this.n / 2 + 1): void {
    const a = this.inAt;
    const m = this.n / 2;
    const held = Math.min(bins, m);
    h[a] = bins > 0 ? re[o]! : 0;
    h[a + 1] = bins > m ? re[o + m * st]! : 0;
    for (let k = 1; k < held; k++) {
      h[a + 2 * k] = re[o + k * st]!;
      h[a + 2 * k + 1] = im[o + k * st]!;
    }
    if (held < m) h.fill(0, a + 2 * Math.max(1, held), a + 2 * m);
    this.mod._pffft_transform_ordered(this.setup, 4 * a, 4 * this.outAt, this.work, PFFFT_BACKWARD);
  }
}

/**
 * Circular convolution of n float32 samples with a fixed zero-phase (symmetric) filter, entirely inside PFFFT's
 * heap: forward transform, product with the filter's response (`pffft_zconvolve_accumulate`, in PFFFT's internal
 * bin order, so no reordering per block), backward transform scaled by 1/n. For FFT-block (overlap-save) filters:
 * the JavaScript side only copies samples into {@link input} and out of the returned view, with no spectrum
 * packing.
 */
export class SimdCircularConvolution {
  /** Float indices (byte pointer / 4) of the input, the input's spectrum, the product, and the output. */
  private readonly inAt: number;
  private readonly specAt: number;
  private readonly prodAt: number;
  private readonly outAt: number;
  /** Byte pointers of the filter's response (internal layout) and of PFFFT's work area. */
  private readonly response: number;
  private readonly work: number;

  /** Use {@link simdCircularConvolution}, which checks the size. */
  constructor(
    private readonly mod: PffftModule,
    private readonly setup: number,
    readonly n: number,
    gain: ArrayLike<number>,
  ) {
    const alloc = (): number => mod._pffft_aligned_malloc(4 * n);
    this.inAt = alloc() >> 2;
    this.specAt = alloc() >> 2;
    this.prodAt = alloc() >> 2;
    this.outAt = alloc() >> 2;
    this.response = alloc();
    this.work = alloc();
    // The response enters once rounded to float32 from the caller's (float64) values, in the ordered layout
    // (DC, Nyquist, then re/im pairs), reordered by PFFFT into its internal one: a float32 transform of the
    // kernel instead would add its own rounding to the stopband.
    const h = mod.HEAPF32;
    const a = this.inAt;
    const m = n / 2;
    h[a] = gain[0]!;
    h[a + 1] = gain[m]!;
    for (let k = 1; k < m; k++) {
      h[a + 2 * k] = gain[k]!;
      h[a + 2 * k + 1] = 0;
    }
    mod._pffft_zreorder(setup, 4 * a, this.response, PFFFT_BACKWARD);
    // Callers that write only some input samples (zero-stuffing) rely on the others staying zero.
    h.fill(0, a, a + n);
  }

  /**
   * The n input samples, a view into the heap: write them, then call {@link run}. Samples not written keep their
   * previous values (zero at first). Take a fresh view per block: the heap's buffer changes when it grows.
   */
  input(): Float32Array {
    return this.mod.HEAPF32.subarray(this.inAt, this.inAt + this.n);
  }

  /** Filters the input circularly; returns the n outputs as a view valid until the next call. */
  run(): Float32Array {
    const { mod, setup, n } = this;
    mod._pffft_transform(setup, 4 * this.inAt, 4 * this.specAt, this.work, PFFFT_FORWARD);
    mod.HEAPF32.fill(0, this.prodAt, this.prodAt + n);
    mod._pffft_zconvolve_accumulate(setup, 4 * this.specAt, this.response, 4 * this.prodAt, 1 / n);
    mod._pffft_transform(setup, 4 * this.prodAt, 4 * this.outAt, this.work, PFFFT_BACKWARD);
    return mod.HEAPF32.subarray(this.outAt, this.outAt + n);
  }
}

/**
 * A {@link SimdCircularConvolution} of size n with the real response `gain` (n/2 + 1 bins, DC to Nyquist), or null
 * when the SIMD FFT is off, not loaded ({@link loadSimdFft}) or cannot do n. Each call allocates heap memory that
 * is never freed: callers cache one per filter.
 */
export function simdCircularConvolution(n: number, gain: ArrayLike<number>): SimdCircularConvolution | null {
  if (!enabled || pffft === null || !isSimdFftSize(n) || gain.length !== n / 2 + 1) return null;
  const setup = pffft._pffft_new_setup(n, PFFFT_REAL);
  return setup === 0 ? null : new SimdCircularConvolution(pffft, setup, n, gain);
}
