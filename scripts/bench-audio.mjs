#!/usr/bin/env node
// Audio I/O benchmark: WAV decode of a 40 MB file, FLAC decode, WAV encode, 44.1→48 kHz resampling and
// STFT+iSTFT round trips on 4 minutes of stereo, and peak RSS while streaming a 60-minute WAV through
// decode → STFT → iSTFT → write compared with a 3-minute one (each in its own child process).
// Run: npm run build && node scripts/bench-audio.mjs [--json] [--skip-rss] [--dist <dir>]
// Uses the compiled library (dist/ by default; plain JS, so no TS loader is needed). Single-threaded.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    'skip-rss': { type: 'boolean', default: false },
    dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) },
    // internal: run one streaming pass in this (child) process and print its peak RSS
    'child-stream': { type: 'string' },
    out: { type: 'string' },
  },
});
const dist = resolve(values.dist);
const lib = async (p) => import(pathToFileURL(join(dist, p)).href);
const { openAudioSource, createAudioSink } = await lib('audio/open.js');
const { openWavSource, createWavSink } = await lib('audio/wav.js');

const RATE = 44100;
const BLOCK = 1 << 16;

/** Deterministic music-like signal block: two partials plus LCG noise, different per channel. */
function signalBlock(startFrame, frames, seedBase = 1) {
  return [0, 1].map((c) => {
    const x = new Float32Array(frames);
    let s = (seedBase * 7919 + c * 104729 + startFrame) >>> 0;
    for (let i = 0; i < frames; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const t = (startFrame + i) / RATE;
      x[i] = 0.3 * Math.sin(2 * Math.PI * 220 * t + c) + 0.2 * Math.sin(2 * Math.PI * 3520.5 * t) + 0.05 * (s / 4294967296 - 0.5);
    }
    return x;
  });
}

async function writeSignalWav(path, seconds, bits = 16) {
  const total = Math.round(seconds * RATE);
  const sink = await createWavSink(path, { sampleRate: RATE, channels: 2, bits });
  for (let f = 0; f < total; f += BLOCK) await sink.write({ channels: signalBlock(f, Math.min(BLOCK, total - f)), sampleRate: RATE });
  await sink.finish();
}

async function readThrough(path, open) {
  const src = await open(path);
  let frames = 0;
  for (let b = await src.read(BLOCK); b !== null; b = await src.read(BLOCK)) frames += b.channels[0].length;
  await src.close();
  return frames;
}

function best(n, fn) {
  return (async () => {
    let t = Infinity;
    let result;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      result = await fn();
      t = Math.min(t, (performance.now() - t0) / 1000);
    }
    return { seconds: t, result };
  })();
}

/**
 * Peak RSS of this process in KB. On Linux, getrusage's maxRSS (process.resourceUsage().maxRSS) carries the
 * parent's peak over fork+exec, so a child spawned by a big parent reports the parent's size; VmHWM in
 * /proc/self/status is the peak of this process's own address space. Elsewhere maxRSS is used.
 */
function peakRssKB() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

// ---------- child mode: one streaming pass, print peak RSS ----------
if (values['child-stream'] !== undefined) {
  const { stft, istft } = await lib('dsp/stft.js');
  const { hannPeriodic } = await lib('dsp/windows.js');
  const nFft = 4096;
  const hop = 1024;
  const window = hannPeriodic(nFft);
  // Chunks of ~6 s, as a separation model would consume them: STFT → iSTFT per channel, then written.
  const CHUNK = 262144;
  const src = await openWavSource(values['child-stream']);
  const sink = await createWavSink(values.out, { sampleRate: src.info.sampleRate, channels: src.info.channels, bits: 16 });
  const t0 = performance.now();
  let frames = 0;
  for (let b = await src.read(CHUNK); b !== null; b = await src.read(CHUNK)) {
    const len = b.channels[0].length;
    if (len > nFft) {
      b = { channels: b.channels.map((x) => istft(stft(x, { nFft, hop, window }), { nFft, hop, window, length: len })), sampleRate: b.sampleRate };
    }
    await sink.write(b);
    frames += len;
  }
  await src.close();
  await sink.finish();
  process.stdout.write(JSON.stringify({ frames, seconds: (performance.now() - t0) / 1000, peakRssKB: peakRssKB(), maxRssKB: process.resourceUsage().maxRSS }) + '\n');
  process.exit(0);
}

// ---------- parent ----------
const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'stemkit-bench-audio-'));
const results = {};
const log = (msg) => {
  if (!values.json) process.stdout.write(msg + '\n');
};
try {
  // Memory first, while this parent is still small (see peakRssKB).
  if (!values['skip-rss']) {
    const rss = {};
    for (const minutes of [3, 60]) {
      const p = join(dir, `stream${minutes}.wav`);
      await writeSignalWav(p, minutes * 60);
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--dist', dist, '--child-stream', p, '--out', join(dir, `out${minutes}.wav`)], {
        encoding: 'utf8',
      });
      rss[minutes] = JSON.parse(out.trim().split('\n').pop());
      rmSync(p, { force: true });
      rmSync(join(dir, `out${minutes}.wav`), { force: true });
      log(`Stream ${minutes} min WAV → STFT/iSTFT 4096/1024 → WAV: ${rss[minutes].seconds.toFixed(1)} s, peak RSS ${(rss[minutes].peakRssKB / 1024).toFixed(0)} MB (getrusage maxRSS ${(rss[minutes].maxRssKB / 1024).toFixed(0)} MB)`);
    }
    const ratio = rss[60].peakRssKB / rss[3].peakRssKB;
    results.peakRss = { mb3: +(rss[3].peakRssKB / 1024).toFixed(1), mb60: +(rss[60].peakRssKB / 1024).toFixed(1), ratio: +ratio.toFixed(3), target: '< 1.3' };
    log(`Peak RSS ratio 60 min / 3 min: ${ratio.toFixed(3)} (target < 1.3)`);
  }
  // 40 MB of 16-bit stereo 44.1 kHz = 226.8 s.
  const wav40 = join(dir, 'forty.wav');
  const seconds40 = (40 * 1000 * 1000) / (RATE * 4);
  await writeSignalWav(wav40, seconds40);
  const mb = statSync(wav40).size / 1e6;
  const wavDec = await best(3, () => readThrough(wav40, (p) => openWavSource(p)));
  results.wavDecode = { fileMB: +mb.toFixed(1), seconds: +wavDec.seconds.toFixed(3), target: '< 0.2 s' };
  log(`WAV decode   ${mb.toFixed(1)} MB (${seconds40.toFixed(0)} s stereo 16-bit): ${wavDec.seconds.toFixed(3)} s (target < 0.2 s)`);

  const wavEnc = await best(3, async () => {
    const src = await openWavSource(wav40);
    const sink = await createWavSink(join(dir, 'enc.wav'), { sampleRate: RATE, channels: 2, bits: 16 });
    for (let b = await src.read(BLOCK); b !== null; b = await src.read(BLOCK)) await sink.write(b);
    await src.close();
    await sink.finish();
  });
  results.wavCopy16 = { seconds: +wavEnc.seconds.toFixed(3) };
  log(`WAV decode+encode 16-bit (same file): ${wavEnc.seconds.toFixed(3)} s`);

  if (hasFfmpeg) {
    const flac = join(dir, 'forty.flac');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', wav40, flac]);
    const flacDec = await best(3, () => readThrough(flac, (p) => openAudioSource(p)));
    results.flacDecode = { fileMB: +(statSync(flac).size / 1e6).toFixed(1), seconds: +flacDec.seconds.toFixed(3) };
    log(`FLAC decode  ${results.flacDecode.fileMB} MB (same audio, via ffmpeg f32le pipe): ${flacDec.seconds.toFixed(3)} s`);
    const flacEnc = await best(1, async () => {
      const src = await openWavSource(wav40);
      const sink = await createAudioSink(join(dir, 'enc.flac'), { sampleRate: RATE, channels: 2 });
      for (let b = await src.read(BLOCK); b !== null; b = await src.read(BLOCK)) await sink.write(b);
      await src.close();
      await sink.finish();
    });
    results.flacEncode = { seconds: +flacEnc.seconds.toFixed(3) };
    log(`FLAC encode  (same audio, WAV → ffmpeg pipe): ${flacEnc.seconds.toFixed(3)} s`);
  } else {
    log('FLAC: skipped (ffmpeg not found)');
  }

  // DSP on 4 minutes of stereo (the DSP engineer's scripts/bench-dsp.mjs has the detailed version).
  const frames4 = 240 * RATE;
  const sig = signalBlock(0, frames4);
  const { createResampler } = await lib('dsp/resample.js');
  const rs = await best(1, () => {
    const r = createResampler(44100, 48000, 2);
    let n = 0;
    for (let f = 0; f < frames4; f += BLOCK) n += r.process(sig.map((c) => c.subarray(f, f + BLOCK)))[0].length;
    return n + r.flush()[0].length;
  });
  results.resample = { seconds: +rs.seconds.toFixed(3), outFrames: rs.result };
  log(`Resample 44.1→48 kHz, 4 min stereo (streamed in ${BLOCK}-frame blocks): ${rs.seconds.toFixed(3)} s`);
  const { stft, istft } = await lib('dsp/stft.js');
  const { hannPeriodic } = await lib('dsp/windows.js');
  for (const [nFft, hop] of [[4096, 1024], [7680, 1024]]) {
    const window = hannPeriodic(nFft);
    const r = await best(1, () => {
      let err = 0;
      for (const x of sig) {
        const y = istft(stft(x, { nFft, hop, window }), { nFft, hop, window, length: x.length });
        for (let i = nFft; i < x.length - nFft; i += 997) err = Math.max(err, Math.abs(y[i] - x[i]));
      }
      return err;
    });
    results[`stft${nFft}`] = { seconds: +r.seconds.toFixed(3), maxErr: r.result };
    log(`STFT+iSTFT ${nFft}/${hop}, 4 min stereo: ${r.seconds.toFixed(3)} s (max interior error ${r.result.toExponential(1)})`);
  }

} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (values.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
