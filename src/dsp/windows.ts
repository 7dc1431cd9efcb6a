/**
 * Analysis/synthesis windows, computed in float64 and stored as float32 (the precision of the models' tensors).
 * Conventions follow /work/shared/docs/model-io.md "Conventions": periodic = torch.hann_window(N),
 * symmetric = numpy.hanning(M).
 */

/** Periodic Hann, w[i] = 0.5·(1 − cos(2πi/n)), i = 0..n−1 (torch.hann_window(n)); the STFT window of HTDemucs and MDX-Net. */
export function hannPeriodic(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.5 * (1 - Math.cos((2 * Math.PI * i) / n));
  return w;
}

/**
 * Symmetric Hann, w[i] = 0.5·(1 − cos(2πi/(n−1))) (numpy.hanning(n)); used as the chunk cross-fade of MDX-Net.
 * numpy returns [1] for n = 1 and [] for n = 0; so does this.
 */
export function hannSymmetric(n: number): Float32Array {
  const w = new Float32Array(n);
  if (n === 1) {
    w[0] = 1;
    return w;
  }
  for (let i = 0; i < n; i++) w[i] = 0.5 * (1 - Math.cos((2 * Math.PI * i) / (n - 1)));
  return w;
}

/**
 * Square root of the periodic Hann, sqrt(0.5·(1 − cos(2πi/n))) = sin(πi/n): the analysis and synthesis window of
 * the 16 kHz speech models (512-point, hop 256), for which w² sums to 1 at 50 % overlap.
 */
export function sqrtHannPeriodic(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.sin((Math.PI * i) / n);
  return w;
}
