// Types for the parts of @echogarden/pffft-wasm that fft-simd.ts uses (the package ships none): an Emscripten
// MODULARIZE factory over PFFFT's C API (pffft.h), with byte pointers into the module's heap.
declare module '@echogarden/pffft-wasm/simd' {
  export interface PffftModule {
    /** The heap as float32; Emscripten replaces this view when the heap grows. */
    HEAPF32: Float32Array;
    /** PFFFT_Setup* for size n; transform 0 = PFFFT_REAL, 1 = PFFFT_COMPLEX. 0 when n does not factor. */
    _pffft_new_setup(n: number, transform: number): number;
    /** direction 0 = PFFFT_FORWARD, 1 = PFFFT_BACKWARD; all pointers 16-byte aligned. */
    _pffft_transform_ordered(setup: number, input: number, output: number, work: number, direction: number): void;
    _pffft_aligned_malloc(bytes: number): number;
  }
  const factory: (moduleArg?: { print?: (s: string) => void; printErr?: (s: string) => void }) => Promise<PffftModule>;
  export default factory;
}
