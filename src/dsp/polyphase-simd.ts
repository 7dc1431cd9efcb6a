/**
 * The resampler's polyphase stage on WebAssembly SIMD (float32 samples, float64 coefficients and sums), from
 * stemkit's own C source (src/dsp/wasm/polyphase.c, built by scripts/build-wasm.mjs into polyphase-wasm.ts). Used
 * by the float32 resampler for exact phases; JavaScript keeps the float64 and interpolated-phase paths.
 *
 * The module has its own memory and no imports. Per design one instance holds the coefficient rows and phase
 * tables; samples go through it in chunks of {@link CHUNK} outputs (one memory copy in and out per chunk), so its
 * memory does not grow with the caller's block size.
 */
import { POLYPHASE_WASM_BASE64 } from './polyphase-wasm.js';

/** Outputs per call into the module. */
const CHUNK = 8192;

// The few WebAssembly JS API members used here (the project's type libraries declare none).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface PolyExports {
  memory: WasmMemory;
  __heap_base: { value: number };
  poly_pair(coef: number, width: number, advance: number, next: number, xa: number, xb: number, ya: number, yb: number, count: number, state: number): void;
  poly_one(coef: number, width: number, advance: number, next: number, x: number, y: number, count: number, state: number): void;
}

/** Compiled once per process; null where WebAssembly SIMD is unavailable (the JavaScript loops run instead). */
let compiled: object | null | undefined;

function polyModule(): object | null {
  if (compiled === undefined) {
    try {
      compiled = new wasm.Module(Buffer.from(POLYPHASE_WASM_BASE64, 'base64'));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** The phase tables of an exact polyphase design (see resample.ts's PolyStage). */
export interface PolyTables {
  L: number;
  M: number;
  /** Rows of `width` coefficients, one per phase. */
  coef: Float64Array;
  width: number;
  advance: Int32Array;
  next: Int32Array;
}

/** One design's polyphase filter in WASM; not re-entrant (one call at a time, as JavaScript runs). */
export class SimdPolyphase {
  private readonly x: PolyExports;
  private readonly width: number;
  private readonly L: number;
  private readonly M: number;
  /** Byte pointers into the module's memory. */
  private readonly state: number;
  private readonly coef: number;
  private readonly advance: number;
  private readonly next: number;
  private readonly xa: number;
  private readonly xb: number;
  private readonly ya: number;
  private readonly yb: number;
  /** Input samples one chunk can read, per channel. */
  private readonly span: number;

  constructor(x: PolyExports, t: PolyTables) {
    this.x = x;
    this.width = t.width;
    this.L = t.L;
    this.M = t.M;
    this.span = Math.ceil((CHUNK * t.M) / t.L) + t.width + 2;
    let at = (x.__heap_base.value + 15) & ~15;
    const take = (bytes: number): number => {
      const p = at;
      at += (bytes + 15) & ~15;
      return p;
    };
    this.state = take(8);
    this.coef = take(8 * t.coef.length);
    this.advance = take(4 * t.L);
    this.next = take(4 * t.L);
    this.xa = take(4 * this.span);
    this.xb = take(4 * this.span);
    this.ya = take(4 * CHUNK);
    this.yb = take(4 * CHUNK);
    const pages = Math.ceil((at - x.memory.buffer.byteLength) / 65536);
    if (pages > 0) x.memory.grow(pages);
    const buf = x.memory.buffer;
    new Float64Array(buf, this.coef, t.coef.length).set(t.coef);
    new Int32Array(buf, this.advance, t.L).set(t.advance);
    new Int32Array(buf, this.next, t.L).set(t.next);
  }

  /**
   * Computes out[c][0 .. count) for every channel: output i reads `width` samples of bufs[c] from index
   * first + (offset of output i), starting at phase `phase`.
   */
  run(bufs: readonly Float32Array[], out: readonly Float32Array[], count: number, first: number, phase: number): void {
    const { x, width, L, M } = this;
    const buf = x.memory.buffer;
    const f32 = new Float32Array(buf);
    const state = new Int32Array(buf, this.state, 2);
    for (let c = 0; c < bufs.length; c += 2) {
      const pair = c + 1 < bufs.length;
      let b = first;
      let p = phase;
      for (let done = 0; done < count; ) {
        const k = Math.min(CHUNK, count - done);
        // The chunk's last output reads from b + floor((p + (k − 1)·M)/L); k·M stays far below 2^53.
        const span = Math.floor((p + (k - 1) * M) / L) + width;
        f32.set(bufs[c]!.subarray(b, b + span), this.xa >> 2);
        if (pair) f32.set(bufs[c + 1]!.subarray(b, b + span), this.xb >> 2);
        state[0] = 0;
        state[1] = p;
        if (pair) x.poly_pair(this.coef, width, this.advance, this.next, this.xa, this.xb, this.ya, this.yb, k, this.state);
        else x.poly_one(this.coef, width, this.advance, this.next, this.xa, this.ya, k, this.state);
        out[c]!.set(f32.subarray(this.ya >> 2, (this.ya >> 2) + k), done);
        if (pair) out[c + 1]!.set(f32.subarray(this.yb >> 2, (this.yb >> 2) + k), done);
        b += state[0]!;
        p = state[1]!;
        done += k;
      }
    }
  }
}

/** A fresh instance for one design's tables, or null without WebAssembly SIMD. */
export function simdPolyphase(t: PolyTables): SimdPolyphase | null {
  const m = polyModule();
  if (m === null) return null;
  const inst = new wasm.Instance(m, {});
  return new SimdPolyphase(inst.exports as unknown as PolyExports, t);
}
