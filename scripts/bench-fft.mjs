#!/usr/bin/env node
// FFT benchmark: stemkit's float64 JavaScript RealFFT against the float32 WASM SIMD FFT (PFFFT, src/dsp/fft-simd.ts)
// that the float32 pipelines use, side by side in one process, CPU time, one thread.
//   1. µs per call of the two calls the STFT and iSTFT make (forwardWindowed, inverseWindowedAdd), medians of
//      interleaved repeats, and the float32 transform's error against the float64 one.
//   2. STFT + iSTFT of 60 s at HTDemucs' 4096/1024 and MDX-Net's 7680/1024, both precisions.
//   3. How far the pipelines' outputs move: `classic` and the HTDemucs stand-in (tiny.A, if ../shared is there) on
//      20 s, max |float32 − float64| over every stem and sample.
// The end-to-end CPU effect (classic on a 3-minute song, the HTDemucs contract fixture) is scripts/bench-memory.mjs
// with --fft float64,float32 (each row its own child process).
//
// Run: npm run build && node scripts/bench-fft.mjs [--sizes 512,1024,2048,4096,5120,7680] [--repeat 5] [--json]
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '512,1024,2048,4096,5120,7680' },
    repeat: { type: 'string', default: '5' },
    shared: { type: 'string', default: process.env.STEMKIT_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url)) },
    json: { type: 'boolean', default: false },
  },
});
const dist = fileURLToPath(new URL('../dist', import.meta.url));
const lib = async (p) => import(pathToFileURL(join(dist, p)).href);
const { RealFFT } = await lib('dsp/fft.js');
const { loadSimdFft, setSimdFftEnabled, simdRealFFT } = await lib('dsp/fft-simd.js');
const { stft, istft } = await lib('dsp/stft.js');
const { hannPeriodic } = await lib('dsp/windows.js');
if (!(await loadSimdFft())) throw new Error('WebAssembly SIMD is not available in this Node');

const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const repeat = Number(values.repeat);

function noise(n, seed) {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  return x;
}

/** CPU µs per call of fn, over enough calls for ≈ 40 ms. */
function perCall(fn, calls) {
  const c0 = cpuMicros();
  for (let i = 0; i < calls; i++) fn();
  return (cpuMicros() - c0) / calls;
}

// 1. Per call. Output strided by 16 into float64 scratch, as stftInto / istftInto use it.
const GROUP = 16;
const perSize = [];
for (const n of values.sizes.split(',').map(Number)) {
  const bins = n / 2 + 1;
  const window = hannPeriodic(n);
  const x = noise(n, n);
  const f64 = new RealFFT(n);
  const f32 = simdRealFFT(n);
  if (f32 === null) throw new Error(`PFFFT does not take n = ${n}`);
  const [re, im, re2, im2] = Array.from({ length: 4 }, () => new Float64Array(GROUP * bins));
  const acc = new Float64Array(n);
  const calls = Math.max(200, Math.round(4e6 / n));
  const cases = {
    forward64: () => f64.forwardWindowed(x, 0, window, 1, re, im, 0, GROUP),
    forward32: () => f32.forwardWindowed(x, 0, window, 1, re2, im2, 0, GROUP),
    inverse64: () => f64.inverseWindowedAdd(re, im, window, 1, acc, 0, 0, GROUP),
    inverse32: () => f32.inverseWindowedAdd(re, im, window, 1, acc, 0, 0, GROUP),
  };
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const fn of Object.values(cases)) perCall(fn, calls); // warm-up: optimised code
  for (let r = 0; r < repeat; r++) for (const [k, fn] of Object.entries(cases)) times[k].push(perCall(fn, calls));
  // Error of the float32 forward against the float64 one (1e-12 from a direct DFT, test/dsp/fft.test.ts).
  cases.forward64();
  cases.forward32();
  let err = 0;
  let peak = 0;
  for (let k = 0; k < bins; k++) {
    err = Math.max(err, Math.abs(re[k * GROUP] - re2[k * GROUP]), Math.abs(im[k * GROUP] - im2[k * GROUP]));
    peak = Math.max(peak, Math.abs(re[k * GROUP]), Math.abs(im[k * GROUP]));
  }
  const row = { n, ...Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])), maxAbsErr: err, relErr: err / peak };
  perSize.push(row);
  if (!values.json) {
    process.stdout.write(
      `n=${String(n).padStart(4)}  forward ${row.forward64.toFixed(2).padStart(6)} → ${row.forward32.toFixed(2).padStart(5)} µs (×${(row.forward64 / row.forward32).toFixed(2)})` +
        `  inverse ${row.inverse64.toFixed(2).padStart(6)} → ${row.inverse32.toFixed(2).padStart(5)} µs (×${(row.inverse64 / row.inverse32).toFixed(2)})` +
        `  error ${err.toExponential(1)} (${(err / peak).toExponential(1)} of peak)\n`,
    );
  }
}

// 2. STFT + iSTFT of 60 s mono at 44.1 kHz.
const signal = noise(60 * 44100, 7);
const roundTrips = [];
for (const [nFft, hop, normalized] of [[4096, 1024, true], [7680, 1024, false]]) {
  const opts = { nFft, hop, window: hannPeriodic(nFft), normalized };
  const run = (precision) => {
    const c0 = cpuMicros();
    const spec = stft(signal, { ...opts, precision });
    istft(spec, { ...opts, precision, length: signal.length });
    return (cpuMicros() - c0) / 1e6;
  };
  run('float64');
  run('float32');
  const t = { float64: [], float32: [] };
  for (let r = 0; r < repeat; r++) for (const p of ['float64', 'float32']) t[p].push(run(p));
  const row = { nFft, hop, float64: median(t.float64), float32: median(t.float32) };
  roundTrips.push(row);
  if (!values.json) {
    process.stdout.write(`stft+istft ${nFft}/${hop}, 60 s: ${row.float64.toFixed(3)} → ${row.float32.toFixed(3)} CPU-s (×${(row.float64 / row.float32).toFixed(2)})\n`);
  }
}

// 3. Pipeline outputs, float32 FFT against float64 FFT.
const session = { device: 'cpu', threads: 1 };
async function separate(model, seconds) {
  const rate = model.sampleRate;
  const total = Math.round(seconds * rate);
  const mix = Array.from({ length: model.channels }, (_, c) => {
    const x = noise(total, 101 + c);
    for (let i = 0; i < total; i++) x[i] = 0.2 * x[i] + 0.3 * Math.sin((2 * Math.PI * 220 * i) / rate + c) + 0.2 * Math.sin((2 * Math.PI * 1760.5 * i) / rate);
    return x;
  });
  const opts = { totalFrames: total };
  if (model.needsTrackStats) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < total; i++) {
      const m = mix.reduce((a, ch) => a + ch[i], 0) / mix.length;
      sum += m;
      sq += m * m;
    }
    const mean = sum / total;
    opts.trackStats = { frames: total, mean, std: Math.sqrt((sq - total * mean * mean) / (total - 1)) };
  }
  const stream = model.createStream(opts);
  const outs = {};
  const keep = (blocks) => {
    for (const [stem, b] of Object.entries(blocks)) (outs[stem] ??= b.channels.map(() => [])).forEach((parts, c) => parts.push(b.channels[c]));
  };
  const BLOCK = 1 << 16;
  for (let f = 0; f < total; f += BLOCK) keep(await stream.push({ channels: mix.map((ch) => ch.subarray(f, f + BLOCK)), sampleRate: rate }));
  keep(await stream.flush());
  return Object.fromEntries(Object.entries(outs).map(([stem, chans]) => [stem, chans.map((parts) => Float32Array.from(parts.flatMap((p) => Array.from(p))))]));
}
async function compare(name, load) {
  const result = {};
  for (const precision of ['float64', 'float32']) {
    setSimdFftEnabled(precision === 'float32');
    const model = await load();
    result[precision] = await separate(model, 20);
    await model.dispose();
  }
  setSimdFftEnabled(true);
  let diff = 0;
  let peak = 0;
  for (const [stem, chans] of Object.entries(result.float64)) {
    chans.forEach((a, c) => {
      const b = result.float32[stem][c];
      for (let i = 0; i < a.length; i++) {
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        peak = Math.max(peak, Math.abs(a[i]));
      }
    });
  }
  if (!values.json) process.stdout.write(`${name}, 20 s: outputs float32 vs float64 FFT differ by at most ${diff.toExponential(2)} (peak ${peak.toFixed(2)})\n`);
  return { name, maxAbsDiff: diff, peak };
}
const pipelines = [];
const { createClassicModel } = await lib('separate/classic.js');
pipelines.push(await compare('classic', () => createClassicModel(fileURLToPath(new URL('../models/classic.onnx', import.meta.url)), session)));
const standin = join(resolve(values.shared), 'models/htdemucs-standin/tiny.A.onnx');
if (existsSync(standin)) {
  const { createHtdemucsModel } = await lib('separate/htdemucs.js');
  const { createSession } = await lib('runtime/onnx.js');
  pipelines.push(await compare('htdemucs stand-in tiny.A', () => createHtdemucsModel({ id: 'htdemucs', files: [standin], session, createSession })));
}

if (values.json) process.stdout.write(JSON.stringify({ perSize, roundTrips, pipelines }, null, 2) + '\n');
