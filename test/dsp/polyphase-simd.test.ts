import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSimdFft, simdCircularConvolution } from '../../src/dsp/fft-simd.js';
import { simdPolyphase } from '../../src/dsp/polyphase-simd.js';
import { maxAbs, naiveIrfft, naiveRfft, noise } from '../helpers/dsp-reference.js';

const root = join(import.meta.dirname, '../..');

/** Clang's major version, or null without clang (the committed build is only comparable with the same major). */
function clangMajor(): number | null {
  try {
    const m = /clang version (\d+)\./.exec(execFileSync('clang', ['--version'], { encoding: 'utf8' }));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A random exact-phase table for to/from = L/M (the layout resample.ts's PolyStage uses). */
function tables(L: number, M: number, width: number, seed: number) {
  const coef = Float64Array.from(noise(L * width, seed));
  const advance = new Int32Array(L);
  const next = new Int32Array(L);
  for (let p = 0; p < L; p++) {
    advance[p] = Math.floor((p + M) / L);
    next[p] = (p + M) % L;
  }
  return { L, M, coef, width, advance, next };
}

describe('the polyphase stage on WebAssembly SIMD', () => {
  it.each([
    [160, 441, 16], // 44.1 → 16 kHz
    [147, 160, 20], // 48 → 44.1 kHz at twice the input rate
    [5, 7, 36], // a width without its own unrolled loop
  ])('L = %i, M = %i, %i taps: equals the float64 dot products up to the float32 output rounding', (L, M, width) => {
    const t = tables(L, M, width, L + M);
    const poly = simdPolyphase(t);
    expect(poly).not.toBeNull(); // Node ≥ 20 always has WebAssembly SIMD
    // 20000 outputs cross the 8192-output chunks inside run(); three channels run as a pair and a single.
    const count = 20000;
    const first = 3;
    const phase = Math.floor(L / 3);
    const inLen = first + Math.ceil(((count + 1) * M) / L) + width;
    const bufs = [noise(inLen, 1), noise(inLen, 2), noise(inLen, 3)];
    const out = bufs.map(() => new Float32Array(count));
    poly!.run(bufs, out, count, first, phase);
    for (let c = 0; c < 3; c++) {
      let b = first;
      let p = phase;
      let worst = 0;
      for (let i = 0; i < count; i++) {
        let s = 0;
        for (let j = 0; j < width; j++) s += bufs[c]![b + j]! * t.coef[p * width + j]!;
        // float64 sums: the only rounding that matters is the float32 output's, ≤ 2^-24 of |s|.
        worst = Math.max(worst, Math.abs(out[c]![i]! - s) / Math.max(Math.abs(s), 1e-30));
        b += t.advance[p]!;
        p = t.next[p]!;
      }
      expect(worst).toBeLessThan(2 ** -23);
    }
    // The third channel ran alone, the first two as a pair: the same input gives the same samples either way.
    const again = [bufs[2]!, bufs[2]!];
    const out2 = again.map(() => new Float32Array(count));
    poly!.run(again, out2, count, first, phase);
    expect(out2[0]).toEqual(out[2]);
  });

  it.skipIf(clangMajor() !== 14)('the committed module is what the C source builds to (clang 14 present)', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts/build-wasm.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('committed files match the source');
    expect(r.status).toBe(0);
  });
});

describe('PFFFT circular convolution in the WASM heap', () => {
  beforeAll(async () => {
    expect(await loadSimdFft()).toBe(true);
  });

  it.each([64, 4096])('n = %i: equals the float64 circular convolution within float32 rounding', (n) => {
    // A real response: bins with unit, fractional and tiny gains (a stopband).
    const gain = Float64Array.from({ length: n / 2 + 1 }, (_, k) => (k < n / 8 ? 1 : k < n / 4 ? 0.5 - k / n : 1e-7));
    const conv = simdCircularConvolution(n, gain);
    expect(conv).not.toBeNull();
    const x = noise(n, 9);
    const even = x.map((v, j) => (j % 2 === 0 ? v : 0));
    const check = (input: Float32Array): void => {
      const y = conv!.run();
      const spec = naiveRfft(input);
      const ref = naiveIrfft(spec.re.map((v, k) => v * gain[k]!), spec.im.map((v, k) => v * gain[k]!), n);
      expect(maxAbs(y.map((v, i) => v - ref[i]!)) / maxAbs(ref)).toBeLessThan(3e-7);
    };
    // Zero-stuffing callers write only the even samples: the odd ones start zero, and keep what was last written.
    const writeEven = (): void => {
      const view = conv!.input();
      for (let j = 0; j < n; j += 2) view[j] = x[j]!;
    };
    writeEven();
    check(even);
    conv!.input().set(x);
    check(x);
    conv!.input().fill(0);
    writeEven();
    check(even);
  });

  it('refuses sizes PFFFT cannot do and responses of the wrong length', () => {
    expect(simdCircularConvolution(100, new Float64Array(51))).toBeNull();
    expect(simdCircularConvolution(64, new Float64Array(32))).toBeNull();
  });
});
