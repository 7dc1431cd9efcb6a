#!/usr/bin/env node
// DSP benchmark: STFT+iSTFT round trips and 44.1→48 kHz resampling on a 4-minute stereo 44.1 kHz signal, one thread.
// Run: npm run build && node scripts/bench-dsp.mjs [--seconds 240] [--json]
// Uses the compiled library in dist/ (plain JS, so no TS loader is needed). Node runs JS on one thread; nothing here
// spawns workers, so every figure is single-threaded.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '240' }, json: { type: 'boolean', default: false } },
});
const seconds = Number(values.seconds);
const { stft, istft } = await import('../dist/dsp/stft.js');
const { hannPeriodic } = await import('../dist/dsp/windows.js');
const { createResampler } = await import('../dist/dsp/resample.js');

const rate = 44100;
/** Process CPU time in seconds: on a shared, loaded machine this tracks the work done better than wall time. */
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const frames = Math.round(seconds * rate);

/** Deterministic music-like test signal: a few partials plus LCG noise, different per channel. */
function makeChannel(seed) {
  const x = new Float32Array(frames);
  let s = seed >>> 0;
  for (let i = 0; i < frames; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const noise = s / 4294967296 - 0.5;
    const t = i / rate;
    x[i] = 0.3 * Math.sin(2 * Math.PI * 220 * t + seed) + 0.2 * Math.sin(2 * Math.PI * 3520.5 * t) + 0.05 * noise;
  }
  return x;
}
const channels = [makeChannel(1), makeChannel(2)];

function roundTrip(nFft, hop, input) {
  const window = hannPeriodic(nFft);
  const opts = { nFft, hop, window, normalized: true };
  let maxErr = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  for (const x of input) {
    const spec = stft(x, opts);
    const y = istft(spec, { ...opts, length: x.length });
    // Error over the whole signal: with center=true and a NOLA window the round trip is exact to float32.
    for (let i = 0; i < x.length; i++) maxErr = Math.max(maxErr, Math.abs(y[i] - x[i]));
  }
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds() - c0, maxErr };
}

function resample(from, to, input, block) {
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const r = createResampler(from, to, input.length);
  let out = 0;
  for (let i = 0; i < input[0].length; i += block) {
    out += r.process(input.map((c) => c.subarray(i, Math.min(i + block, c.length))))[0].length;
  }
  out += r.flush()[0].length;
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds() - c0, outFrames: out };
}

// Warm-up on 5 s so that the figures measure optimised code, as a long track would.
const warm = channels.map((c) => c.subarray(0, 5 * rate));
roundTrip(4096, 1024, warm);
roundTrip(7680, 1024, warm);
resample(44100, 48000, warm, 4096);

const results = {
  signal: `${seconds} s stereo ${rate} Hz`,
  loadAverage1m: (await import('node:os')).loadavg()[0],
  stft_istft_4096_1024: roundTrip(4096, 1024, channels),
  stft_istft_7680_1024: roundTrip(7680, 1024, channels),
  stft_istft_512_256: roundTrip(512, 256, channels),
  resample_44100_48000: resample(44100, 48000, channels, 4096),
  resample_44100_16000: resample(44100, 16000, channels, 4096),
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
};
if (values.json) {
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
} else {
  for (const [k, v] of Object.entries(results)) {
    process.stdout.write(`${k.padEnd(22)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
  }
}
