#!/usr/bin/env node
// Where DTLN's time goes on its Scan path, per 8 ms step, one thread, CPU time, medians of interleaved repeats:
//   1. each stage's step graph wrapped in a Scan (src/onnx/scan.ts), run over a block of steps as DtlnStream does;
//   2. the FFTs inside the graph or in JavaScript: the forward real DFT and its inverse as two matrix products in
//      onnxruntime (batched over the block, the shape a fused Scan graph would give them at best) against the float32
//      SIMD FFT pair DtlnStream calls. The round trip through the matrices is checked against the input, so the
//      timed graph computes the real thing.
// Needs the real models under $STEMKIT_SHARED_DIR (default ../shared).
// Run: npm run build && node scripts/bench-dtln-parts.mjs [--frames 512] [--repeat 5]
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '512' },
    repeat: { type: 'string', default: '5' },
    shared: { type: 'string', default: process.env.STEMKIT_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url)) },
  },
});
const dist = fileURLToPath(new URL('../dist', import.meta.url));
const lib = async (p) => import(pathToFileURL(join(dist, p)).href);
const { GraphBuilder } = await lib('onnx/builder.js');
const { createSession } = await lib('runtime/onnx.js');
const { getRealFFT } = await lib('dsp/stft.js');
const { loadSimdFft } = await lib('dsp/fft-simd.js');
const { wrapInScan, graphSignature } = await lib('onnx/scan.js');
await loadSimdFft();

const N = 512;
const B = N / 2 + 1;
const T = Number(values.frames);
// Forward: x[n] → (re[k], im[k]) = Σ x[n]·(cos, −sin)(2πkn/N). Inverse: x[n] = (1/N)·Σ w_k·(re·cos − im·sin), w = 1 at
// DC and Nyquist, 2 between.
const fwd = new Float32Array(N * 2 * B);
const inv = new Float32Array(2 * B * N);
for (let n = 0; n < N; n++) {
  for (let k = 0; k < B; k++) {
    const a = (2 * Math.PI * k * n) / N;
    const w = (k === 0 || k === N / 2 ? 1 : 2) / N;
    fwd[n * 2 * B + k] = Math.cos(a);
    fwd[n * 2 * B + B + k] = -Math.sin(a);
    inv[k * N + n] = w * Math.cos(a);
    inv[(B + k) * N + n] = -w * Math.sin(a);
  }
}
const g = new GraphBuilder('dft');
g.input('x', 'float32', ['frames', N]);
g.op('MatMul', [g.op('MatMul', ['x', g.constant(fwd, [N, 2 * B])]), g.constant(inv, [2 * B, N])], {}, 'y');
g.output('y', 'float32', ['frames', N]);
// DTLN's own session settings (speech.ts smallModelSession: ORT's arena and memory patterns).
const sessionOpts = { device: 'cpu', threads: 1, memory: { cpuArena: true, memPattern: true } };
const session = await createSession(g.build(), sessionOpts);
let seed = 7;
const x = new Float32Array(T * N).map(() => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5);
const fft = getRealFFT(N, 'float32');
const re = new Float64Array(B);
const im = new Float64Array(B);
const out = new Float64Array(N);

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
// The stages, wired by shape as speech.ts does: the signal is the input whose last dimension is its width.
const stages = [];
for (const [file, width] of [['model_1.onnx', B], ['model_2.onnx', N]]) {
  const bytes = readFileSync(join(values.shared, 'models/dtln', file));
  const sig = graphSignature(bytes);
  const isSignal = (v) => v.shape[v.shape.length - 1] === width;
  const signal = { input: sig.inputs.find(isSignal), output: sig.outputs.find(isSignal) };
  const state = { input: sig.inputs.find((v) => v !== signal.input), output: sig.outputs.find((v) => v !== signal.output) };
  const { model, names } = wrapInScan(bytes, { states: [{ input: state.input.name, output: state.output.name }], stepInput: signal.input.name, stepOutput: signal.output.name });
  const steps = new Float32Array(T * width).map((_, i) => 0.1 + 0.1 * Math.sin(i));
  const feeds = { [names.stepsInput]: { data: steps, dims: [T, 1, 1, width] }, [names.states[0].input]: { data: new Float32Array(state.input.shape.reduce((a, b) => a * b, 1)), dims: state.input.shape } };
  stages.push({ file, session: await createSession(model, sessionOpts), feeds, times: [] });
}
const graph = [];
const js = [];
let roundTrip = 0;
for (let r = 0; r < Number(values.repeat); r++) {
  for (const st of stages) {
    const c = cpu();
    await st.session.run(st.feeds);
    st.times.push(((cpu() - c) / T) * 1e6);
  }
  let c = cpu();
  const y = (await session.run({ x: { data: x, dims: [T, N] } }))['y'].data;
  graph.push(((cpu() - c) / T) * 1e6);
  for (let i = 0; i < x.length; i++) roundTrip = Math.max(roundTrip, Math.abs(y[i] - x[i]));
  c = cpu();
  for (let f = 0; f < T; f++) {
    fft.forward(x.subarray(f * N, (f + 1) * N), re, im);
    fft.inverse(re, im, out);
  }
  js.push(((cpu() - c) / T) * 1e6);
}
await Promise.all([session.dispose(), ...stages.map((st) => st.session.dispose())]);
const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
for (const st of stages) process.stdout.write(`µs per step, ${st.file} in a Scan over ${T} steps: ${median(st.times).toFixed(2)}\n`);
process.stdout.write(
  `µs per frame (forward + inverse, ${T} frames per call): ORT MatMul DFT ${median(graph).toFixed(2)}, JS SIMD FFT ${median(js).toFixed(2)}` +
    ` (round trip through the matrices: max error ${roundTrip.toExponential(1)})\n`,
);
