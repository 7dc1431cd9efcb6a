/**
 * Test helpers for the separation area: config, WAV read/write through the audio layer, signals, SI-SDR.
 */
import { createRng } from '../../src/separate/chunking.js';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { MANIFEST_NAME } from '../../src/separate/manifest.js';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ResolvedConfig } from '../../src/config/schema.js';
import { createAudioSink, openAudioSource, readAll } from '../../src/audio/open.js';
import type { RawAudio } from '../../src/audio/raw-audio.js';

/** The shared folder (models, eval music), or undefined: tests that need it skip. */
export const SHARED_DIR: string | undefined = process.env['STEMKIT_SHARED_DIR'] || undefined;

/** A CPU config with 2 threads and a private cache/runtime dir. */
export function testConfig(dir: string): ResolvedConfig {
  const { config } = resolveConfig({ env: {}, flags: { device: 'cpu', threads: '2', cacheDir: join(dir, 'cache') }, cores: 2, homeDir: dir });
  return { ...config, runtimeDir: join(dir, 'run') };
}

export function tempDir(prefix = 'stemkit-sep-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes float32 WAV (lossless, so comparisons are exact up to float32). */
export async function writeWav(path: string, audio: RawAudio, bits: 16 | 24 | 32 = 32): Promise<void> {
  const sink = await createAudioSink(path, { sampleRate: audio.sampleRate, channels: audio.channels.length, format: 'wav', bits });
  await sink.write(audio);
  await sink.finish();
}

export async function readAudio(path: string): Promise<RawAudio> {
  return readAll(await openAudioSource(path));
}

/** A deterministic PRNG for noise: the product's own seeded generator (mulberry32). */
export const rng = createRng;

/** Gaussian white noise of the given RMS. */
export function whiteNoise(n: number, rms: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(1e-12, r());
    const v = r();
    out[i] = rms * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** A sum of sines (band-limited, deterministic) of `frames` samples per channel. */
export function sines(frames: number, rate: number, channels: number, freqs: readonly number[], amp = 0.2): RawAudio {
  return {
    sampleRate: rate,
    channels: Array.from({ length: channels }, (_, c) => {
      const x = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let v = 0;
        freqs.forEach((f, k) => (v += Math.sin((2 * Math.PI * f * i) / rate + 0.7 * k + 0.3 * c)));
        x[i] = (amp * v) / freqs.length;
      }
      return x;
    }),
  };
}

export function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / Math.max(1, x.length));
}

/** Scale-invariant SDR in dB of `est` against `ref` (zero-mean not enforced; both are near zero-mean audio). */
export function siSdr(est: ArrayLike<number>, ref: ArrayLike<number>): number {
  let dot = 0;
  let rr = 0;
  const n = Math.min(est.length, ref.length);
  for (let i = 0; i < n; i++) {
    dot += est[i]! * ref[i]!;
    rr += ref[i]! * ref[i]!;
  }
  const a = dot / rr;
  let s = 0;
  let e = 0;
  for (let i = 0; i < n; i++) {
    const t = a * ref[i]!;
    s += t * t;
    e += (est[i]! - t) ** 2;
  }
  return 10 * Math.log10(s / e);
}

/** max |a − b| over the first n samples. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, from = 0, to = Math.min(a.length, b.length)): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Files below `dir` (relative, sorted), without the output manifest stemkit keeps beside stems; [] when absent. */
export function outputFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name !== MANIFEST_NAME) out.push(relative(dir, join(d, e.name)));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}
