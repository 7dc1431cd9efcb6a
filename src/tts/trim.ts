/**
 * Joining synthesised pieces without clicks or long gaps.
 *
 * `trimSilence` follows librosa.effects.trim as kokoro-onnx uses it (model-io.md §3.4): frame RMS over
 * 2048-sample frames centred every 512 samples, a frame is silent when it is more than `topDb` (60) dB
 * below the loudest frame, and the kept range runs from the first to one hop past the last non-silent
 * frame centre. Because a 2048-wide frame already counts as loud when its edge touches sound, the kept
 * range keeps at least ~512 samples (21 ms at 24 kHz) of the quiet lead-in and tail, which is then
 * faded in/out over `fadeSamples` so a cut never lands on a non-zero sample (no click).
 */

export interface TrimOptions {
  /** Threshold below the peak frame, in dB (default 60, as librosa and kokoro-onnx). */
  topDb?: number;
  frameLength?: number;
  hop?: number;
}

/** Returns [start, end) of the non-silent part of `x` (librosa-style, see the module comment); [0, 0) when all silent. */
export function nonSilentRange(x: Float32Array, opts: TrimOptions = {}): [number, number] {
  const topDb = opts.topDb ?? 60;
  const frame = opts.frameLength ?? 2048;
  const hop = opts.hop ?? 512;
  const n = x.length;
  if (n === 0) return [0, 0];
  const frames = 1 + Math.floor(n / hop);
  const half = frame >> 1;
  // Prefix sums of squares make every frame O(1); centred frames are zero-padded at the edges (librosa pads with zeros here too, since trim's rms uses constant padding).
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i]! + x[i]! * x[i]!;
  const ms = new Float64Array(frames);
  let peak = 0;
  for (let f = 0; f < frames; f++) {
    const a = Math.max(0, f * hop - half);
    const b = Math.min(n, f * hop + half);
    const v = (prefix[b]! - prefix[a]!) / frame;
    ms[f] = v;
    if (v > peak) peak = v;
  }
  if (peak <= 0) return [0, 0];
  // Compare mean squares: 10·log10(ms/peak) > −topDb.
  const threshold = peak * 10 ** (-topDb / 10);
  let first = -1;
  let last = -1;
  for (let f = 0; f < frames; f++) {
    if (ms[f]! > threshold) {
      if (first < 0) first = f;
      last = f;
    }
  }
  return [Math.min(n, first * hop), Math.min(n, (last + 1) * hop)];
}

/** Applies a raised-cosine fade-in to the first and fade-out to the last `fadeSamples` samples, in place. */
export function fadeEdges(x: Float32Array, fadeSamples: number): void {
  const f = Math.min(fadeSamples, Math.floor(x.length / 2));
  for (let i = 0; i < f; i++) {
    const g = 0.5 - 0.5 * Math.cos((Math.PI * (i + 0.5)) / f);
    x[i]! *= g;
    x[x.length - 1 - i]! *= g;
  }
}

/** Trims leading/trailing silence (see the module comment) and fades the new edges. Returns a new array. */
export function trimAndFade(x: Float32Array, fadeSamples: number, opts: TrimOptions = {}): Float32Array {
  const [a, b] = nonSilentRange(x, opts);
  const out = x.slice(a, b);
  fadeEdges(out, fadeSamples);
  return out;
}
