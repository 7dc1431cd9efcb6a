#!/usr/bin/env node
// Resampler benchmark: stemkit's two-stage resampler against its former single-stage one and ffmpeg's soxr, on
// speed (CPU time, file to file and net) and on quality measured the same way for all three.
// Run: npm run build && node scripts/bench-resample.mjs [--seconds 600] [--rounds 3] [--old-ref 16b095d] [--prev-ref a92f081] [--json]
//
// Speed: a WAV of `seconds` of stereo 44.1 kHz float32 (music-like: partials plus noise) is converted to 16 kHz (and
// 48 kHz) file to file, each conversion in its own child process, rounds interleaved, medians reported: stemkit
// (decode WAV → resample → encode WAV, streamed in 64 k-frame blocks) with the new and the old resampler, and
// `ffmpeg -af aresample=<rate>:resampler=soxr` (defaults: precision 20 bits, passband to 0.91 × Nyquist). CPU time is
// user + system of the child, read with the shell's `times`. Copies at the same rate (no resampling) give the
// decode/encode cost of each side, so "net" = conversion − copy; stemkit's children also report the CPU time of
// the resampler calls alone. "new float32" is the same resampler with { precision: 'float32' } (the WASM SIMD FFT,
// as the separation pipeline uses it: both stages in WASM). "prev float32" is the float32 resampler at --prev-ref
// (the FFT stage's spectrum packing and the polyphase stage in JavaScript), run on this checkout's FFT modules.
// Quality: one float32 file per rate pair holds 0.5 s tone segments (amplitude 0.5, 20 ms fades, analysed over their
// central 0.3 s); each output segment is fitted with a·sin + b·cos at the tone's frequency. Passband: the fitted
// gain in dB for tones up to 0.91 × the lower Nyquist; spurious: the level of everything but the tone (images,
// aliases, noise) relative to the input amplitude; stopband (downsampling): the level of whatever comes out for
// tones from the output Nyquist up to the input Nyquist, relative to the input amplitude.
// The old and previous resamplers are src/dsp/resample.ts at --old-ref / --prev-ref, transpiled into a temporary folder
// with their relative imports pointing into dist/ (needs the git checkout).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    rounds: { type: 'string', default: '3' },
    'old-ref': { type: 'string', default: '16b095d' },
    'prev-ref': { type: 'string', default: 'a92f081' },
    json: { type: 'boolean', default: false },
    // internal: one conversion in this (child) process
    child: { type: 'string' },
    impl: { type: 'string' },
    in: { type: 'string' },
    out: { type: 'string' },
    rate: { type: 'string' },
    precision: { type: 'string', default: 'float64' },
  },
});
const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const BLOCK = 1 << 16;
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

if (values.child !== undefined) {
  // Child: file to file with one implementation; prints the resampler's own CPU seconds.
  const { openWavSource, createWavSink } = await import(pathToFileURL(join(dist, 'audio/wav.js')).href);
  const { createResampler } = await import(pathToFileURL(values.impl).href);
  const src = await openWavSource(values.in);
  const { sampleRate, channels } = src.info;
  const to = Number(values.rate);
  if (values.precision === 'float32') {
    const { loadSimdFft } = await import(pathToFileURL(join(dist, 'dsp/fft-simd.js')).href);
    await loadSimdFft();
  }
  const r = to === sampleRate ? null : createResampler(sampleRate, to, channels, { precision: values.precision });
  const sink = await createWavSink(values.out, { sampleRate: to, channels, bits: 32 });
  let inResampler = 0;
  for (let b = await src.read(BLOCK); b !== null; b = await src.read(BLOCK)) {
    const c0 = cpuSeconds();
    const out = r ? r.process(b.channels) : b.channels;
    inResampler += cpuSeconds() - c0;
    await sink.write({ channels: out, sampleRate: to });
  }
  if (r) {
    const c0 = cpuSeconds();
    const tail = r.flush();
    inResampler += cpuSeconds() - c0;
    await sink.write({ channels: tail, sampleRate: to });
  }
  await sink.finish();
  await src.close();
  process.stdout.write(JSON.stringify({ resampleCpu: inResampler }) + '\n');
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'stemkit-bench-resample-'));
const log = (s) => {
  if (!values.json) process.stdout.write(s + '\n');
};
try {
  const { createWavSink } = await import(pathToFileURL(join(dist, 'audio/wav.js')).href);
  const newImpl = join(dist, 'dsp/resample.js');
  const oldImpl = buildOld(values['old-ref'], 'old');
  const prevImpl = buildOld(values['prev-ref'], 'prev');
  const { describeResampler } = await import(pathToFileURL(newImpl).href);

  /** Runs a shell command; returns the CPU seconds (user + system) of its children, from `times`. */
  const childCpu = (cmd) => {
    const r = spawnSync('bash', ['-c', `${cmd} >${dir}/child.out 2>${dir}/child.err; s=$?; times; exit $s`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`failed: ${cmd}\n${execFileSync('cat', [`${dir}/child.err`], { encoding: 'utf8' })}`);
    const line = r.stdout.trim().split('\n')[1];
    const [u, s] = line.split(/\s+/).map((t) => {
      const m = /^(\d+)m([\d.]+)s$/.exec(t);
      return Number(m[1]) * 60 + Number(m[2]);
    });
    return u + s;
  };
  const sh = (s) => `'${s.replaceAll("'", "'\\''")}'`;
  const ffmpeg = (inp, out, rate, soxr) =>
    `ffmpeg -nostdin -hide_banner -loglevel error -y -i ${sh(inp)} ${soxr ? `-af aresample=${rate}:resampler=soxr ` : ''}-c:a pcm_f32le ${sh(out)}`;
  const ours = (impl, inp, out, rate, precision = 'float64') =>
    `${sh(process.execPath)} ${sh(fileURLToPath(import.meta.url))} --child 1 --impl ${sh(impl)} --in ${sh(inp)} --out ${sh(out)} --rate ${rate} --precision ${precision}`;
  const readJson = () => JSON.parse(execFileSync('cat', [`${dir}/child.out`], { encoding: 'utf8' }));

  // ---- Quality -------------------------------------------------------------------------------------------------
  const SEG = 0.5;
  const quality = {};
  for (const [from, to] of [
    [44100, 16000],
    [48000, 44100],
    [16000, 44100],
  ]) {
    const band = Math.min(from, to) / 2;
    const pass = [0.01, 0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.91].map((r) => r * band);
    const stop = from > to ? [1.0, 1.005, 1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2, 2.5].map((r) => r * band).filter((f) => f < from / 2) : [];
    // Upsampling: tones just under the input Nyquist have images just above it, the hardest case.
    const extra = from < to ? [0.95, 0.98].map((r) => r * band) : [];
    const tones = [...pass, ...extra, ...stop];
    const seg = Math.round(SEG * from);
    const fade = Math.round(0.02 * from);
    const x = new Float32Array(seg * tones.length);
    tones.forEach((f, k) => {
      for (let i = 0; i < seg; i++) {
        const env = Math.min(1, i / fade, (seg - 1 - i) / fade);
        x[k * seg + i] = 0.5 * env * Math.sin((2 * Math.PI * f * i) / from);
      }
    });
    const inPath = join(dir, `tones-${from}.wav`);
    const sink = await createWavSink(inPath, { sampleRate: from, channels: 1, bits: 32 });
    await sink.write({ channels: [x], sampleRate: from });
    await sink.finish();
    const results = {};
    for (const [name, run] of [
      ['stemkit', (out) => ours(newImpl, inPath, out, to)],
      ['stemkit-f32', (out) => ours(newImpl, inPath, out, to, 'float32')],
      ['stemkit-prev-f32', (out) => ours(prevImpl, inPath, out, to, 'float32')],
      ['stemkit-old', (out) => ours(oldImpl, inPath, out, to)],
      ['soxr', (out) => ffmpeg(inPath, out, to, true)],
    ]) {
      const out = join(dir, `q-${name}.wav`);
      childCpu(run(out));
      const y = await readMono(out);
      results[name] = analyse(y, to, tones, pass.length, extra.length);
    }
    quality[`${from}->${to}`] = { design: describeResampler(from, to), ...results };
  }

  // ---- Speed ---------------------------------------------------------------------------------------------------
  const seconds = Number(values.seconds);
  const input = join(dir, 'music.wav');
  await writeMusic(createWavSink, input, seconds);
  const runs = {};
  const add = (k, v) => (runs[k] ??= []).push(v);
  const out = join(dir, 'out.wav');
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const rate of [16000, 48000]) {
      add(`soxr ${rate}`, childCpu(ffmpeg(input, out, rate, true)));
      add(`new ${rate}`, childCpu(ours(newImpl, input, out, rate)));
      add(`new ${rate} resampler`, readJson().resampleCpu);
      add(`f32 ${rate}`, childCpu(ours(newImpl, input, out, rate, 'float32')));
      add(`f32 ${rate} resampler`, readJson().resampleCpu);
      add(`prev ${rate}`, childCpu(ours(prevImpl, input, out, rate, 'float32')));
      add(`prev ${rate} resampler`, readJson().resampleCpu);
      add(`old ${rate}`, childCpu(ours(oldImpl, input, out, rate)));
      add(`old ${rate} resampler`, readJson().resampleCpu);
    }
    add('ffmpeg copy', childCpu(ffmpeg(input, out, 44100, false)));
    add('stemkit copy', childCpu(ours(newImpl, input, out, 44100)));
  }
  const med = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
  const speed = {};
  for (const rate of [16000, 48000]) {
    const soxr = med[`soxr ${rate}`];
    const soxrNet = soxr - med['ffmpeg copy'];
    speed[`44100->${rate}`] = {
      cpuSeconds: { soxr, new: med[`new ${rate}`], newFloat32: med[`f32 ${rate}`], prevFloat32: med[`prev ${rate}`], old: med[`old ${rate}`] },
      netCpuSeconds: {
        soxr: soxrNet,
        new: med[`new ${rate}`] - med['stemkit copy'],
        old: med[`old ${rate}`] - med['stemkit copy'],
        newResamplerCalls: med[`new ${rate} resampler`],
        newFloat32ResamplerCalls: med[`f32 ${rate} resampler`],
        prevFloat32ResamplerCalls: med[`prev ${rate} resampler`],
        oldResamplerCalls: med[`old ${rate} resampler`],
      },
      fileToFileRatio: { newVsSoxr: med[`new ${rate}`] / soxr, newFloat32VsSoxr: med[`f32 ${rate}`] / soxr, prevFloat32VsSoxr: med[`prev ${rate}`] / soxr, oldVsSoxr: med[`old ${rate}`] / soxr, newVsOld: med[`new ${rate}`] / med[`old ${rate}`] },
      resamplerRatio: {
        newVsSoxrNet: med[`new ${rate} resampler`] / soxrNet,
        newVsOld: med[`new ${rate} resampler`] / med[`old ${rate} resampler`],
        newFloat32VsSoxrNet: med[`f32 ${rate} resampler`] / soxrNet,
        newFloat32VsOld: med[`f32 ${rate} resampler`] / med[`old ${rate} resampler`],
      },
    };
  }
  const result = {
    signal: `${seconds} s stereo 44100 Hz float32 WAV`,
    rounds: Number(values.rounds),
    oldRef: values['old-ref'],
    prevRef: values['prev-ref'],
    loadAverage1m: (await import('node:os')).loadavg()[0],
    copyCpuSeconds: { ffmpeg: med['ffmpeg copy'], stemkit: med['stemkit copy'] },
    speed,
    quality,
  };
  if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else report(result);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  return +s[(s.length - 1) >> 1].toFixed(3);
}

/** Transpiles src/dsp/resample.ts at `ref` into the temporary folder, its relative imports pointing into dist/. */
function buildOld(ref, name) {
  const src = execFileSync('git', ['-C', root, 'show', `${ref}:src/dsp/resample.ts`], { encoding: 'utf8' });
  const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);
  const ts = require('typescript');
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const path = join(dir, `resample-${name}.mjs`);
  writeFileSync(path, js.replace(/from '(\.\.?\/[^']+)'/g, (_, rel) => `from '${pathToFileURL(join(dist, 'dsp', rel)).href}'`));
  return path;
}

async function readMono(path) {
  const { openWavSource } = await import(pathToFileURL(join(dist, 'audio/wav.js')).href);
  const src = await openWavSource(path);
  const parts = [];
  for (let b = await src.read(BLOCK); b !== null; b = await src.read(BLOCK)) parts.push(b.channels[0]);
  await src.close();
  const y = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    y.set(p, o);
    o += p.length;
  }
  return y;
}

/** Per tone segment of the output: fitted gain (dB), everything else relative to the tone (dB). */
function analyse(y, rate, tones, nPass, nExtra) {
  const seg = 0.5 * rate;
  const db = (v) => +(20 * Math.log10(Math.max(v, 1e-12))).toFixed(2);
  let ripple = 0;
  let spurious = -Infinity;
  let stopband = -Infinity;
  tones.forEach((f, k) => {
    const a = Math.round(k * seg + 0.1 * rate);
    const b = Math.round(k * seg + 0.4 * rate);
    const w = (2 * Math.PI * f) / rate;
    if (k < nPass + nExtra) {
      let ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
      for (let n = a; n < b; n++) {
        const s = Math.sin(w * n);
        const c = Math.cos(w * n);
        ss += s * s;
        cc += c * c;
        sc += s * c;
        ys += y[n] * s;
        yc += y[n] * c;
      }
      const det = ss * cc - sc * sc;
      const A = (ys * cc - yc * sc) / det;
      const B = (yc * ss - ys * sc) / det;
      let e = 0;
      for (let n = a; n < b; n++) e += (y[n] - A * Math.sin(w * n) - B * Math.cos(w * n)) ** 2;
      if (k < nPass) ripple = Math.max(ripple, Math.abs(20 * Math.log10(Math.hypot(A, B) / 0.5)));
      spurious = Math.max(spurious, db(Math.sqrt((2 * e) / (b - a)) / 0.5));
    } else {
      let e = 0;
      for (let n = a; n < b; n++) e += y[n] ** 2;
      stopband = Math.max(stopband, db(Math.sqrt((2 * e) / (b - a)) / 0.5));
    }
  });
  return { passbandRippleDb: +ripple.toExponential(2), spuriousDb: spurious, ...(Number.isFinite(stopband) ? { stopbandDb: stopband } : {}) };
}


/** Music-like stereo test file: two partials plus LCG noise per channel, written in blocks. */
async function writeMusic(createWavSink, path, seconds) {
  const rate = 44100;
  const total = Math.round(seconds * rate);
  const sink = await createWavSink(path, { sampleRate: rate, channels: 2, bits: 32 });
  for (let f = 0; f < total; f += BLOCK) {
    const n = Math.min(BLOCK, total - f);
    const chans = [0, 1].map((c) => {
      const x = new Float32Array(n);
      let s = (7919 + c * 104729 + f) >>> 0;
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const t = (f + i) / rate;
        x[i] = 0.3 * Math.sin(2 * Math.PI * 220 * t + c) + 0.2 * Math.sin(2 * Math.PI * 3520.5 * t) + 0.05 * (s / 4294967296 - 0.5);
      }
      return x;
    });
    await sink.write({ channels: chans, sampleRate: rate });
  }
  await sink.finish();
}

function report(r) {
  log(`Signal: ${r.signal}; ${r.rounds} rounds, medians; CPU seconds (user + system); load ${r.loadAverage1m.toFixed(2)}`);
  log(`Copy without resampling (decode + encode): ffmpeg ${r.copyCpuSeconds.ffmpeg} s, stemkit ${r.copyCpuSeconds.stemkit} s`);
  for (const [pair, s] of Object.entries(r.speed)) {
    log(`${pair}: file to file soxr ${s.cpuSeconds.soxr} s, new ${s.cpuSeconds.new} s (×${s.fileToFileRatio.newVsSoxr.toFixed(2)} soxr), new float32 ${s.cpuSeconds.newFloat32} s (×${s.fileToFileRatio.newFloat32VsSoxr.toFixed(2)}), prev float32 ${s.cpuSeconds.prevFloat32} s (×${s.fileToFileRatio.prevFloat32VsSoxr.toFixed(2)}), old ${s.cpuSeconds.old} s (×${s.fileToFileRatio.oldVsSoxr.toFixed(2)})`);
    log(`  resampling alone: soxr ≈ ${s.netCpuSeconds.soxr.toFixed(3)} s (conversion − copy), new ${s.netCpuSeconds.newResamplerCalls.toFixed(3)} s (×${s.resamplerRatio.newVsSoxrNet.toFixed(2)} soxr, ×${s.resamplerRatio.newVsOld.toFixed(2)} old), new float32 ${s.netCpuSeconds.newFloat32ResamplerCalls.toFixed(3)} s (×${s.resamplerRatio.newFloat32VsSoxrNet.toFixed(2)} soxr), prev float32 ${s.netCpuSeconds.prevFloat32ResamplerCalls.toFixed(3)} s, old ${s.netCpuSeconds.oldResamplerCalls.toFixed(3)} s`);
  }
  for (const [pair, q] of Object.entries(r.quality)) {
    const d = q.design;
    log(`${pair} quality (new design: U=${d.upsample}, ${d.sharpTaps}-tap sharp FIR by ${d.fftSize}-point FFT, ${d.polyTaps} taps × ${d.phases} phases):`);
    for (const k of ['stemkit', 'stemkit-f32', 'stemkit-prev-f32', 'stemkit-old', 'soxr']) log(`  ${k.padEnd(12)} ${JSON.stringify(q[k])}`);
  }
}
