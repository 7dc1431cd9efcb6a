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
    /** The same transform in PFFFT's internal (unordered) layout, which zconvolve_accumulate reads. */
    _pffft_transform(setup: number, input: number, output: number, work: number, direction: number): void;
    /** dft_ab += dft_a · dft_b · scaling, on spectra in the internal layout of _pffft_transform. */
    _pffft_zconvolve_accumulate(setup: number, dftA: number, dftB: number, dftAb: number, scaling: number): void;
    /** direction 1 (PFFFT_BACKWARD): ordered layout → internal layout; 0: the reverse. */
    _pffft_zreorder(setup: number, input: number, output: number, direction: number): void;
    _pffft_aligned_malloc(bytes: number): number;
  }
  const factory: (moduleArg?: { print?: (s: string) => void; printErr?: (s: string) => void }) => Promise<PffftModule>;
  export default factory;
}
