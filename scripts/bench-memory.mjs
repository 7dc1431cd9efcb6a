#!/usr/bin/env node
// Peak RSS and CPU time of each model family under ORT's CPU memory settings, side by side in one run.
// Each (family, memory setting, threads) runs in its own child process, which reports its peak RSS (VmHWM: the
// child's own peak, not the parent's — see bench-audio.mjs), its CPU time, its wall time and the wall time
// spent inside session.run (the rest is stemkit's own work: DSP, queues, copies).
//
// Separation families run the real adapter (model-rate DSP + inference, no decode/encode) on a deterministic
// stereo signal; TTS families run their session on growing inputs (the shapes vary per sentence). For separation
// families the CPU time inside session.run is measured too (inferCpu): CPU time minus it is stemkit's own work, a
// figure that, unlike the wall-clock share, holds on a busy machine.
//   htdemucs  ../shared/models/htdemucs-standin/tiny.A.onnx (or --htdemucs-model <file>, e.g. the full-size stand-in)
//   htdemucs-contract  contract A with a gain graph: stemkit's own work around an almost free model
//   gtcrn     ../shared/models/gtcrn/gtcrn_simple.onnx      dtln  ../shared/models/dtln/model_{1,2}.onnx
//   classic   models/classic.onnx                          mdx   the contract fixture (gain graph, [1,4,3072,256])
//   kokoro / piper  the contract fixtures of test/helpers/tts-fixtures.ts, rebuilt here (no real weights offline)
// Memory settings: ort (ORT's own defaults: arena + memory patterns), noarena, nopattern, lean (both off),
// noreuse / noreuse_arena (no static buffer reuse, without / with the arena) and
// stemkit (whatever DEFAULT_SESSION_MEMORY says, i.e. what `stemkit separate` uses).
//
// FFT: float32 (what stemkit runs: the WASM SIMD FFT in the float32 pipelines) and/or float64 (the SIMD FFT turned
// off, every transform on the JavaScript float64 FFT), for the side-by-side comparison of scripts/bench-fft.mjs.
//
// With several --threads the summary gives each thread count's median wall time and the speed-up over the first;
// every row shows the main thread's busy share (event-loop utilisation) and the machine's load average at its start.
//
// Run: npm run build && node scripts/bench-memory.mjs [--families htdemucs,gtcrn] [--settings ort,lean]
//        [--threads 1,2] [--fft float32,float64] [--seconds 30] [--repeat 1] [--htdemucs-model <file>] [--input <audio>] [--json]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    families: { type: 'string', default: 'htdemucs,mdx,gtcrn,dtln,classic,kokoro,piper' },
    settings: { type: 'string', default: 'ort,noarena,nopattern,lean' },
    threads: { type: 'string', default: '1' },
    fft: { type: 'string', default: 'float32' },
    seconds: { type: 'string', default: '30' },
    repeat: { type: 'string', default: '1' },
    'htdemucs-model': { type: 'string' },
    // a real recording instead of the synthetic signal (separation families; decoded by ffmpeg before the clock starts)
    input: { type: 'string' },
    shared: { type: 'string', default: process.env.STEMKIT_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url)) },
    dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) },
    json: { type: 'boolean', default: false },
    // internal: run one measurement in this (child) process
    child: { type: 'string' },
  },
});
const dist = resolve(values.dist);
const lib = async (p) => import(pathToFileURL(join(dist, p)).href);

const SETTINGS = {
  ort: { cpuArena: true, memPattern: true },
  noarena: { cpuArena: false, memPattern: true },
  nopattern: { cpuArena: true, memPattern: false },
  lean: { cpuArena: false, memPattern: false },
  // ORT's planner without static buffer reuse (its parallel executor; see SessionMemory.planReuse)
  noreuse: { cpuArena: false, memPattern: false, planReuse: false },
  noreuse_arena: { cpuArena: true, memPattern: false, planReuse: false },
  stemkit: undefined,
};

/** Peak RSS of this process in MiB (VmHWM; maxRSS where /proc is missing). */
function peakMiB() {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** CPU seconds spent making the test signal, subtracted from the figures (it is not stemkit's work). */
let signalCpu = 0;

/** The --input recording at the model's rate and channels, decoded once (looped if shorter than --seconds). */
let recording;
function decodeInput(rate, channels) {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', values.input, '-f', 'f32le', '-ar', String(rate), '-ac', String(channels), '-'], { maxBuffer: 1 << 30 });
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const n = all.length / channels;
  recording = Array.from({ length: channels }, (_, c) => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = all[i * channels + c];
    return x;
  });
}

/** frames samples of x from start on, wrapping around at its end (a copy, as a decoder hands out fresh blocks). */
function loopSlice(x, start, frames) {
  const out = new Float32Array(frames);
  for (let o = 0; o < frames; ) {
    const at = (start + o) % x.length;
    const n = Math.min(frames - o, x.length - at);
    out.set(x.subarray(at, at + n), o);
    o += n;
  }
  return out;
}

/** Deterministic music-like planar block: partials plus LCG noise, different per channel (or the --input recording). */
function signalBlock(rate, channels, start, frames) {
  const c0 = cpuSeconds();
  const out = recording ? recording.map((x) => loopSlice(x, start, frames)) : makeBlock(rate, channels, start, frames);
  signalCpu += cpuSeconds() - c0;
  return out;
}

function makeBlock(rate, channels, start, frames) {
  return Array.from({ length: channels }, (_, c) => {
    const x = new Float32Array(frames);
    let s = (7919 + c * 104729 + start) >>> 0;
    for (let i = 0; i < frames; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const t = (start + i) / rate;
      x[i] = 0.3 * Math.sin(2 * Math.PI * 220 * t + c) + 0.2 * Math.sin(2 * Math.PI * 1760.5 * t) + 0.05 * (s / 4294967296 - 0.5);
    }
    return x;
  });
}

/** Builds the model of a family; returns { kind: 'stem', model } or { kind: 'tts', session, feeds(i) }. */
/** CPU seconds of this process spent inside session.run (the model's share; the rest is stemkit's own work). */
let inferCpu = 0;

/** createSession whose sessions count the process CPU time of each run into inferCpu. */
async function timedCreateSession(path, opts) {
  const { createSession } = await lib('runtime/onnx.js');
  const s = await createSession(path, opts);
  const timed = Object.create(s);
  timed.run = async (feeds) => {
    const c = cpuSeconds();
    try {
      return await s.run(feeds);
    } finally {
      inferCpu += cpuSeconds() - c;
    }
  };
  return timed;
}

async function loadFamily(family, session, dir) {
  const createSession = timedCreateSession;
  const shared = resolve(values.shared);
  if (family === 'htdemucs') {
    const { createHtdemucsModel } = await lib('separate/htdemucs.js');
    const file = values['htdemucs-model'] ?? join(shared, 'models/htdemucs-standin/tiny.A.onnx');
    return createHtdemucsModel({ id: 'htdemucs', files: [file], session, createSession });
  }
  if (family === 'gtcrn') {
    const { createGtcrnModel } = await lib('separate/speech.js');
    return createGtcrnModel(join(shared, 'models/gtcrn/gtcrn_simple.onnx'), { id: 'gtcrn', session, createSession });
  }
  if (family === 'dtln') {
    const { createDtlnModel } = await lib('separate/speech.js');
    return createDtlnModel(join(shared, 'models/dtln/model_1.onnx'), join(shared, 'models/dtln/model_2.onnx'), { id: 'dtln', session, createSession });
  }
  if (family === 'classic') {
    const { createClassicModel } = await lib('separate/classic.js');
    return createClassicModel(fileURLToPath(new URL('../models/classic.onnx', import.meta.url)), session);
  }
  const { GraphBuilder, attr } = await lib('onnx/builder.js');
  if (family === 'htdemucs-contract') {
    // Contract A with a gain graph (test/helpers/separate-models.ts): inference is nearly free, so the run measures
    // stemkit's own work around the model (STFT, iSTFT, overlap-add, copies).
    const L = 343980;
    const g = new GraphBuilder('htdemucs_a');
    g.input('input', 'float32', [1, 2, L]);
    g.input('x.1', 'float32', [1, 4, 2048, 336]);
    const axes = g.constant(new BigInt64Array([1n]), [1]);
    g.op('Mul', [g.op('Unsqueeze', ['x.1', axes]), g.constant(Float32Array.from([0.5, 0.25, 0.125, 0.125]), [1, 4, 1, 1, 1])], {}, 'output');
    g.op('Mul', [g.op('Unsqueeze', ['input', axes]), g.constant(Float32Array.from([0.1, 0.2, 0.3, 0.4]), [1, 4, 1, 1])], {}, 'add_67');
    g.output('output', 'float32', [1, 4, 4, 2048, 336]);
    g.output('add_67', 'float32', [1, 4, 2, L]);
    const path = join(dir, 'htdemucs-contract.onnx');
    writeFileSync(path, g.build());
    const { createHtdemucsModel } = await lib('separate/htdemucs.js');
    return createHtdemucsModel({ id: 'htdemucs', files: [path], session, createSession });
  }
  if (family === 'mdx') {
    // UVR-MDX-NET-Voc_FT's contract (n_fft 7680, dim_f 3072, dim_t 256) with a gain graph: the adapter's DSP is
    // real, the network is not (no MDX weights offline).
    const g = new GraphBuilder('mdx');
    g.input('input', 'float32', ['batch', 4, 3072, 256]);
    g.op('Mul', ['input', g.constant(new Float32Array([0.5]), [1])], {}, 'output');
    g.output('output', 'float32', ['batch', 4, 3072, 256]);
    const path = join(dir, 'mdx.onnx');
    writeFileSync(path, g.build());
    const { createMdxModel } = await lib('separate/mdxnet.js');
    const params = { nFft: 7680, dimF: 3072, dimT: 256, hop: 1024, compensate: 1.009, primaryStem: 'vocals', source: 'bench' };
    return createMdxModel({ id: 'mdx', path, params, session, createSession });
  }
  // TTS fixtures: the contracts of test/helpers/tts-fixtures.ts (their outputs echo the inputs), with the input
  // length growing call by call as sentences do.
  const FLOAT = 1;
  const g = new GraphBuilder(family);
  const flat = g.constant(new BigInt64Array([-1n]), [1]);
  if (family === 'kokoro') {
    g.input('tokens', 'int64', [1, 'T']);
    g.input('style', 'float32', [1, 256]);
    g.input('speed', 'float32', [1]);
    const ids = g.op('Reshape', [g.op('Cast', ['tokens'], { to: attr.int(FLOAT) }), flat]);
    // Upsampled like a vocoder: 600 samples per token.
    const up = g.op('Tile', [ids, g.constant(new BigInt64Array([600n]), [1])]);
    g.op('Concat', [up, g.op('Reshape', ['style', flat]), 'speed'], { axis: attr.int(0) }, 'audio');
    g.output('audio', 'float32', ['N']);
  } else {
    g.input('input', 'int64', [1, 'T']);
    g.input('input_lengths', 'int64', [1]);
    g.input('scales', 'float32', [3]);
    const ids = g.op('Reshape', [g.op('Cast', ['input'], { to: attr.int(FLOAT) }), flat]);
    const up = g.op('Tile', [ids, g.constant(new BigInt64Array([256n]), [1])]);
    g.op('Reshape', [g.op('Concat', [up, 'scales'], { axis: attr.int(0) }), g.constant(new BigInt64Array([1n, 1n, 1n, -1n]), [4])], {}, 'output');
    g.output('output', 'float32', [1, 1, 1, 'N']);
  }
  const { createSession: plainCreate } = await lib('runtime/onnx.js');
  const s = await plainCreate(g.build(), session);
  const feeds = (i) => {
    const T = 20 + ((i * 37) % 480);
    const ids = { data: BigInt64Array.from({ length: T }, (_, k) => BigInt(k % 170)), dims: [1, T] };
    return family === 'kokoro'
      ? { tokens: ids, style: { data: new Float32Array(256).fill(0.1), dims: [1, 256] }, speed: { data: new Float32Array([1]), dims: [1] } }
      : { input: ids, input_lengths: { data: new BigInt64Array([BigInt(T)]), dims: [1] }, scales: { data: new Float32Array([0.667, 1, 0.8]), dims: [3] } };
  };
  return { tts: true, session: s, feeds };
}

async function child(spec) {
  const { family, setting, threads, seconds, fft } = JSON.parse(spec);
  if (fft === 'float64') (await lib('dsp/fft-simd.js')).setSimdFftEnabled(false);
  const dir = mkdtempSync(join(tmpdir(), 'stemkit-bench-mem-'));
  const session = { device: 'cpu', threads };
  if (SETTINGS[setting]) session.memory = SETTINGS[setting];
  const load1 = loadavg()[0];
  const c0 = cpuSeconds();
  const t0 = performance.now();
  const model = await loadFamily(family, session, dir);
  const load = { cpu: cpuSeconds() - c0, wall: (performance.now() - t0) / 1000, peakMiB: peakMiB() };
  if (values.input && !model.tts) decodeInput(model.sampleRate, model.channels);
  const c1 = cpuSeconds();
  const t1 = performance.now();
  inferCpu = 0;
  // The main thread's busy share: with classic's worker threads it only cuts chunks and reassembles them.
  const elu0 = performance.eventLoopUtilization();
  let infer = 0;
  let frames = 0;
  if (model.tts) {
    // One call per "sentence" (~0.5 s of text each), as many as fill the duration at 24 kHz.
    for (let i = 0; frames < seconds * 24000; i++) {
      const f = model.feeds(i);
      const a = performance.now();
      const out = await model.session.run(f);
      infer += (performance.now() - a) / 1000;
      frames += Object.values(out)[0].data.length;
    }
    await model.session.dispose();
  } else {
    const rate = model.sampleRate;
    const total = Math.round(seconds * rate);
    const BLOCK = 1 << 16;
    const opts = { totalFrames: total };
    if (model.needsTrackStats) {
      // Whole-track statistics of the mono mix, as the engine's first pass computes them.
      let sum = 0;
      let sq = 0;
      for (let f = 0; f < total; f += BLOCK) {
        const b = signalBlock(rate, model.channels, f, Math.min(BLOCK, total - f));
        for (let i = 0; i < b[0].length; i++) {
          let m = 0;
          for (const ch of b) m += ch[i];
          m /= b.length;
          sum += m;
          sq += m * m;
        }
      }
      const mean = sum / total;
      opts.trackStats = { frames: total, mean, std: Math.sqrt((sq - total * mean * mean) / (total - 1)) };
    }
    const stream = model.createStream(opts);
    const count = (blocks) => {
      const first = Object.values(blocks)[0];
      if (first) frames += first.channels[0].length;
    };
    // As the separation engine feeds it: piece by piece where the stream offers that (classic on threads).
    const feed = async (block) => {
      if (stream.pieces) for await (const p of stream.pieces(block)) count(p);
      else count(block ? await stream.push(block) : await stream.flush());
    };
    for (let f = 0; f < total; f += BLOCK) await feed({ channels: signalBlock(rate, model.channels, f, Math.min(BLOCK, total - f)), sampleRate: rate });
    await feed(null);
    infer = stream.inferSeconds;
    await model.dispose();
  }
  const cpu = cpuSeconds() - c1 - signalCpu;
  const wall = (performance.now() - t1) / 1000;
  const mainBusy = performance.eventLoopUtilization(elu0).utilization;
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ family, setting, threads, fft, seconds, frames, load, cpu, wall, infer, inferCpu, mainBusy, loadavg: load1, peakMiB: peakMiB() }) + '\n');
}

if (values.child) {
  await child(values.child);
} else {
  const families = values.families.split(',');
  const settings = values.settings.split(',');
  const threads = values.threads.split(',').map(Number);
  const seconds = Number(values.seconds);
  const ffts = values.fft.split(',');
  const rows = [];
  // Interleaved (setting inside repeat) so that a change of machine load hits every setting alike.
  for (let r = 0; r < Number(values.repeat); r++) {
    for (const family of families) {
      for (const t of threads) {
        for (const setting of settings) {
          for (const fft of ffts) {
            const args = [fileURLToPath(import.meta.url), '--child', JSON.stringify({ family, setting, threads: t, seconds, fft }), '--dist', dist, '--shared', values.shared];
            if (values['htdemucs-model']) args.push('--htdemucs-model', values['htdemucs-model']);
            if (values.input) args.push('--input', values.input);
            const res = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
            if (res.status !== 0) {
              process.stderr.write(`${family}/${setting}/${t}/${fft}: exit ${res.status}\n${res.stderr}\n`);
              continue;
            }
            const row = JSON.parse(res.stdout.trim().split('\n').pop());
            rows.push(row);
            if (!values.json) {
              const own = row.wall - row.infer;
              process.stdout.write(
                `${family.padEnd(9)} ${setting.padEnd(9)} t=${t} ${fft}  peak ${row.peakMiB.toFixed(0).padStart(5)} MiB (after load ${row.load.peakMiB.toFixed(0).padStart(5)})` +
                  `  cpu ${row.cpu.toFixed(2).padStart(7)} s  wall ${row.wall.toFixed(2).padStart(7)} s  RTF ${(row.wall / seconds).toFixed(3)}` +
                  `  cpu/audio ${(row.cpu / seconds).toFixed(3)}  outside run ${((100 * own) / row.wall).toFixed(1)} %` +
                  (row.inferCpu > 0 ? `  own cpu/audio ${((row.cpu - row.inferCpu) / seconds).toFixed(4)}` : '') +
                  `  main thread busy ${(100 * row.mainBusy).toFixed(0)} %  load ${row.loadavg.toFixed(2)}\n`,
              );
            }
          }
        }
      }
    }
  }
  if (values.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else if (threads.length > 1) {
    // Speed-up against the first thread count: medians over the repeats, which ran interleaved.
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
    for (const family of families) {
      for (const setting of settings) {
        for (const fft of ffts) {
          const of = (t) => rows.filter((r) => r.family === family && r.setting === setting && r.fft === fft && r.threads === t);
          const base = of(threads[0]);
          if (base.length === 0) continue;
          const bw = median(base.map((r) => r.wall));
          for (const t of threads.slice(1)) {
            const rs = of(t);
            if (rs.length === 0) continue;
            const w = median(rs.map((r) => r.wall));
            process.stdout.write(
              `${family} ${setting} ${fft}: median wall ${bw.toFixed(2)} s at ${threads[0]} thread(s), ${w.toFixed(2)} s at ${t}: ×${(bw / w).toFixed(2)}` +
                `  (CPU ${median(base.map((r) => r.cpu)).toFixed(2)} / ${median(rs.map((r) => r.cpu)).toFixed(2)} s, ${rs.length} runs each)\n`,
            );
          }
        }
      }
    }
  }
}
