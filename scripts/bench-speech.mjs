#!/usr/bin/env node
// GTCRN / DTLN: stemkit's adapter against sherpa-onnx-node's C++ denoiser on the same model file and input,
// one thread, CPU time side by side (each run in its own child process, interleaved, medians reported).
// The input: espeak-ng speech (16 kHz) repeated to --seconds, plus deterministic noise at about 5 dB SNR.
// sherpa-onnx-node is NOT a dependency of stemkit: install it in the benchmark's own folder first,
//   mkdir -p .bench/sherpa && npm install --prefix .bench/sherpa sherpa-onnx-node
// (.bench/ is gitignored). sherpa-onnx has no DTLN runner; DTLN is compared with a bare onnxruntime-node loop
// (the two sessions per 8 ms block with preallocated tensors, no DSP: a floor no JS pipeline can beat).
// stemkit-dtln-frame is stemkit's DTLN run step by step (stepping: 'frame', two session.run per 8 ms block), the
// reference its Scan path (the default, stemkit-dtln) must equal.
// Run: npm run build && node scripts/bench-speech.mjs [--seconds 60] [--repeat 3] [--kinds stemkit-dtln,ort-dtln] [--json]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    repeat: { type: 'string', default: '3' },
    // a subset of: stemkit-gtcrn, sherpa-gtcrn, stemkit-dtln, stemkit-dtln-frame, ort-dtln
    kinds: { type: 'string' },
    json: { type: 'boolean', default: false },
    shared: { type: 'string', default: process.env.STEMKIT_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url)) },
    sherpa: { type: 'string', default: fileURLToPath(new URL('../.bench/sherpa', import.meta.url)) },
    child: { type: 'string' },
    input: { type: 'string' },
    out: { type: 'string' },
  },
});
const RATE = 16000;
const shared = resolve(values.shared);
const GTCRN = join(shared, 'models/gtcrn/gtcrn_simple.onnx');
/** sherpa-onnx reads the STFT and cache layout from metadata that upstream's file lacks: a copy with it added. */
const GTCRN_META = {
  model_type: 'gtcrn', version: '1', sample_rate: '16000', n_fft: '512', hop_length: '256', window_length: '512', window_type: 'hann_sqrt',
  conv_cache_shape: '2,1,16,16,33', tra_cache_shape: '2,3,1,1,16', inter_cache_shape: '2,1,33,16',
};
function writeSherpaGtcrn(path) {
  const require = createRequire(import.meta.url);
  const { onnx } = require('onnx-proto');
  const m = onnx.ModelProto.decode(readFileSync(GTCRN));
  for (const [key, value] of Object.entries(GTCRN_META)) m.metadataProps.push(onnx.StringStringEntryProto.create({ key, value }));
  writeFileSync(path, onnx.ModelProto.encode(m).finish());
}
const DTLN = [join(shared, 'models/dtln/model_1.onnx'), join(shared, 'models/dtln/model_2.onnx')];
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const dist = fileURLToPath(new URL('../dist', import.meta.url));
const lib = async (p) => import(pathToFileURL(join(dist, p)).href);

async function child(kind) {
  const x = new Float32Array(readFileSync(values.input).buffer.slice(0));
  let y;
  const c0 = cpuSeconds();
  const t0 = performance.now();
  let infer = NaN;
  if (kind === 'sherpa-gtcrn') {
    const require = createRequire(join(resolve(values.sherpa), 'package.json'));
    const sherpa = require('sherpa-onnx-node');
    const d = new sherpa.OfflineSpeechDenoiser({ model: { gtcrn: { model: join(values.input, '..', 'gtcrn_meta.onnx') }, numThreads: 1, debug: 0 } });
    y = d.run({ samples: x, sampleRate: RATE }).samples;
  } else if (kind === 'ort-dtln') {
    const ort = await import('onnxruntime-node');
    const o = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3 };
    const [s1, s2] = await Promise.all(DTLN.map((p) => ort.InferenceSession.create(p, o)));
    const mag = new ort.Tensor('float32', new Float32Array(257), [1, 1, 257]);
    const blk = new ort.Tensor('float32', new Float32Array(512), [1, 1, 512]);
    let st1 = new ort.Tensor('float32', new Float32Array(512), [1, 2, 128, 2]);
    let st2 = new ort.Tensor('float32', new Float32Array(512), [1, 2, 128, 2]);
    infer = 0;
    for (let b = 0; b + 512 <= x.length; b += 128) {
      const a = performance.now();
      const r1 = await s1.run({ [s1.inputNames[0]]: mag, [s1.inputNames[1]]: st1 });
      st1 = r1[s1.outputNames[1]];
      const r2 = await s2.run({ [s2.inputNames[0]]: blk, [s2.inputNames[1]]: st2 });
      st2 = r2[s2.outputNames[1]];
      infer += (performance.now() - a) / 1000;
    }
    y = new Float32Array(0);
  } else {
    const { createSession } = await lib('runtime/onnx.js');
    const speech = await lib('separate/speech.js');
    const session = { device: 'cpu', threads: 1 };
    const model =
      kind === 'stemkit-gtcrn'
        ? await speech.createGtcrnModel(GTCRN, { id: 'gtcrn', session, createSession })
        : await speech.createDtlnModel(DTLN[0], DTLN[1], { id: 'dtln', session, createSession, stepping: kind === 'stemkit-dtln-frame' ? 'frame' : undefined });
    const stream = model.createStream({ wantedStems: ['speech'] });
    const parts = [];
    const take = (b) => b['speech'] && parts.push(b['speech'].channels[0]);
    for (let i = 0; i < x.length; i += 16384) take(await stream.push({ channels: [x.subarray(i, i + 16384)], sampleRate: RATE }));
    take(await stream.flush());
    infer = stream.inferSeconds;
    await model.dispose();
    y = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      y.set(p, o);
      o += p.length;
    }
  }
  const cpu = cpuSeconds() - c0;
  const wall = (performance.now() - t0) / 1000;
  if (values.out) writeFileSync(values.out, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  process.stdout.write(JSON.stringify({ kind, cpu, wall, infer, samples: y.length }) + '\n');
}

/** SI-SDR of `est` against `ref` in dB (both zero-mean'd), over their common length. */
function siSdr(est, ref) {
  const n = Math.min(est.length, ref.length);
  let dot = 0;
  let rr = 0;
  for (let i = 0; i < n; i++) {
    dot += est[i] * ref[i];
    rr += ref[i] * ref[i];
  }
  const a = dot / rr;
  let s = 0;
  let e = 0;
  for (let i = 0; i < n; i++) {
    const t = a * ref[i];
    s += t * t;
    e += (est[i] - t) ** 2;
  }
  return 10 * Math.log10(s / e);
}

function makeInput(dir, seconds) {
  const text =
    'The quick brown fox jumps over the lazy dog. Speech enhancement models remove noise from recordings of people talking. ' +
    'This sentence is read by a synthetic voice, so that the benchmark needs no downloaded corpus.';
  const wav = join(dir, 'speech.wav');
  execFileSync('espeak-ng', ['-w', wav, text]);
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', wav, '-ac', '1', '-ar', String(RATE), '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  const speech = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const n = Math.round(seconds * RATE);
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = 0.5 * speech[i % speech.length] + 0.05 * (s / 4294967296 - 0.5) + 0.02 * Math.sin((2 * Math.PI * 120 * i) / RATE);
  }
  const path = join(dir, 'input.f32');
  writeFileSync(path, Buffer.from(x.buffer));
  return path;
}

if (values.child) {
  await child(values.child);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'stemkit-bench-speech-'));
  try {
    const seconds = Number(values.seconds);
    const input = makeInput(dir, seconds);
    writeSherpaGtcrn(join(dir, 'gtcrn_meta.onnx'));
    const haveSherpa = existsSync(join(resolve(values.sherpa), 'node_modules/sherpa-onnx-node'));
    const all = ['stemkit-gtcrn', ...(haveSherpa ? ['sherpa-gtcrn'] : []), 'stemkit-dtln', 'stemkit-dtln-frame', 'ort-dtln'];
    const kinds = values.kinds ? all.filter((k) => values.kinds.split(',').includes(k)) : all;
    if (!haveSherpa) process.stderr.write(`sherpa-onnx-node not found under ${values.sherpa}: GTCRN is measured without its reference\n`);
    const runs = Object.fromEntries(kinds.map((k) => [k, []]));
    for (let r = 0; r < Number(values.repeat); r++) {
      for (const kind of kinds) {
        const out = join(dir, `${kind}.f32`);
        const res = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, '--input', input, '--out', out, '--shared', shared, '--sherpa', values.sherpa], { encoding: 'utf8' });
        if (res.status !== 0) throw new Error(`${kind} failed: ${res.stderr}`);
        runs[kind].push(JSON.parse(res.stdout.trim().split('\n').pop()));
      }
    }
    const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
    const summary = Object.fromEntries(kinds.map((k) => [k, { cpu: median(runs[k].map((x) => x.cpu)), infer: median(runs[k].map((x) => x.infer)), cpuRuns: runs[k].map((x) => +x.cpu.toFixed(3)) }]));
    if (kinds.includes('stemkit-gtcrn') && kinds.includes('sherpa-gtcrn')) {
      const a = new Float32Array(readFileSync(join(dir, 'stemkit-gtcrn.f32')).buffer.slice(0));
      const b = new Float32Array(readFileSync(join(dir, 'sherpa-gtcrn.f32')).buffer.slice(0));
      summary.gtcrnRatio = summary['stemkit-gtcrn'].cpu / summary['sherpa-gtcrn'].cpu;
      summary.gtcrnSiSdrVsSherpa = siSdr(a, b);
    }
    const read = (k) => new Float32Array(readFileSync(join(dir, `${k}.f32`)).buffer.slice(0));
    for (const k of ['stemkit-dtln', 'stemkit-dtln-frame']) {
      if (kinds.includes(k) && kinds.includes('ort-dtln')) summary[`${k === 'stemkit-dtln' ? 'dtln' : 'dtlnFrame'}RatioToBareOrt`] = summary[k].cpu / summary['ort-dtln'].cpu;
    }
    if (kinds.includes('stemkit-dtln') && kinds.includes('stemkit-dtln-frame')) {
      const a = read('stemkit-dtln');
      const b = read('stemkit-dtln-frame');
      summary.dtlnScanVsFrameMaxDiff = a.length === b.length ? a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0) : NaN;
    }
    summary.seconds = seconds;
    if (values.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    else for (const [k, v] of Object.entries(summary)) process.stdout.write(`${k.padEnd(20)} ${typeof v === 'object' ? JSON.stringify(v) : typeof v === 'number' ? v.toFixed(3) : v}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
