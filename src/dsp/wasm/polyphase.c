/*
 * The resampler's polyphase stage on WebAssembly SIMD, for src/dsp/resample.ts's float32 path.
 * Build: node scripts/build-wasm.mjs (clang --target=wasm32 -msimd128; the output is committed as
 * src/dsp/polyphase-wasm.ts so that neither CI nor consumers need a compiler).
 *
 * No static data and no libc: every buffer is a pointer the JavaScript side lays out in this module's memory.
 *
 * Output i is the dot product of `width` (a multiple of 4) consecutive float32 samples, from index b, with row p of
 * the float64 coefficients; then b += advance[p] and p = next[p]. state = {b, p} on entry and on return, so calls
 * chain over chunks. The samples are promoted to float64 and summed in two float64x2 accumulators: float32 lanes
 * measured 0.4 dB more spurious output (scripts/bench-resample.mjs) for a quarter less time of the whole
 * resampler at 44.1 → 48 kHz. Each channel's sums run in the same order whether it is computed alone or in a pair,
 * so a channel's samples do not depend on its neighbours.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* Samples x[0..3] times k[0..3], added to the accumulators s0 (lanes 0, 1) and s1 (lanes 2, 3). */
static inline __attribute__((always_inline)) void mac4(const float *x, v128_t c0, v128_t c1, v128_t *s0, v128_t *s1) {
  v128_t v = wasm_v128_load(x);
  *s0 = wasm_f64x2_add(*s0, wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(v), c0));
  *s1 = wasm_f64x2_add(*s1, wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1)), c1));
}

static inline float total(v128_t s0, v128_t s1) {
  v128_t s = wasm_f64x2_add(s0, s1);
  return (float)(wasm_f64x2_extract_lane(s, 0) + wasm_f64x2_extract_lane(s, 1));
}

/* One output of two channels, sharing each coefficient load. */
static inline __attribute__((always_inline)) void dot_pair(const double *k, const float *xa, const float *xb, int width,
                                                           float *ya, float *yb) {
  v128_t a0 = wasm_f64x2_splat(0), a1 = a0, b0 = a0, b1 = a0;
  for (int j = 0; j < width; j += 4) {
    v128_t c0 = wasm_v128_load(k + j);
    v128_t c1 = wasm_v128_load(k + j + 2);
    mac4(xa + j, c0, c1, &a0, &a1);
    mac4(xb + j, c0, c1, &b0, &b1);
  }
  *ya = total(a0, a1);
  *yb = total(b0, b1);
}

static inline __attribute__((always_inline)) float dot_one(const double *k, const float *x, int width) {
  v128_t s0 = wasm_f64x2_splat(0), s1 = s0;
  for (int j = 0; j < width; j += 4) mac4(x + j, wasm_v128_load(k + j), wasm_v128_load(k + j + 2), &s0, &s1);
  return total(s0, s1);
}

/* The common widths (16 and 20 taps) get loops the compiler unrolls completely. */
#define PAIR_LOOP(W)                                                                                 \
  for (int i = 0; i < count; i++) {                                                                   \
    dot_pair(coef + p * (W), xa + b, xb + b, (W), ya + i, yb + i);                                    \
    b += advance[p];                                                                                  \
    p = next[p];                                                                                      \
  }

#define ONE_LOOP(W)                                                                                  \
  for (int i = 0; i < count; i++) {                                                                   \
    y[i] = dot_one(coef + p * (W), x + b, (W));                                                       \
    b += advance[p];                                                                                  \
    p = next[p];                                                                                      \
  }

EXPORT("poly_pair")
void poly_pair(const double *coef, int width, const int32_t *advance, const int32_t *next, const float *xa,
               const float *xb, float *ya, float *yb, int count, int32_t *state) {
  int b = state[0];
  int p = state[1];
  if (width == 16) {
    PAIR_LOOP(16)
  } else if (width == 20) {
    PAIR_LOOP(20)
  } else {
    PAIR_LOOP(width)
  }
  state[0] = b;
  state[1] = p;
}

EXPORT("poly_one")
void poly_one(const double *coef, int width, const int32_t *advance, const int32_t *next, const float *x, float *y,
              int count, int32_t *state) {
  int b = state[0];
  int p = state[1];
  if (width == 16) {
    ONE_LOOP(16)
  } else if (width == 20) {
    ONE_LOOP(20)
  } else {
    ONE_LOOP(width)
  }
  state[0] = b;
  state[1] = p;
}
