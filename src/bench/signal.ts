/**
 * The built-in benchmark input: a deterministic, music-like stereo signal (drums, bass, chords and a
 * centred voice-like line), generated block by block so a long one never sits in memory.
 * Same seconds + rate → the same samples on every machine (integer-seeded PRNG, no Math.random).
 */
import type { RawAudio } from '../audio/raw-audio.js';

const BPM = 120;
/** Overall gain keeping the worst-case sum of all parts under full scale. */
const LEVEL = 0.45;

/**
 * White noise as a pure function of the sample index (a 32-bit integer hash, mulberry32's mixer), so any
 * block split yields the same samples. Returns a value in [−1, 1).
 */
function noiseAt(n: number, salt: number): number {
  let t = (Math.imul(n, 0x9e3779b1) ^ salt) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
}

const midiHz = (m: number): number => 440 * 2 ** ((m - 69) / 12);
const BASS = [36, 36, 43, 41, 38, 38, 45, 43];
const CHORDS = [
  [60, 64, 67],
  [57, 60, 64],
  [53, 57, 60],
  [55, 59, 62],
];
const MELODY = [72, 74, 76, 79, 76, 74, 72, 69, 67, 69, 72, 74];

/**
 * Generates frames [start, start + frames) of the benchmark signal at `sampleRate`.
 * Levels keep the sum below full scale (peak ≈ 0.9).
 */
export function benchSignalBlock(start: number, frames: number, sampleRate: number): RawAudio {
  const left = new Float32Array(frames);
  const right = new Float32Array(frames);
  const beat = (60 / BPM) * sampleRate;
  for (let i = 0; i < frames; i++) {
    const n = start + i;
    const t = n / sampleRate;
    const b = Math.floor(n / beat);
    const inBeat = (n - b * beat) / sampleRate;
    // Drums: kick on 1 and 3, snare on 2 and 4, hats every eighth.
    const kick = b % 2 === 0 ? Math.sin(2 * Math.PI * (50 + 80 * Math.exp(-inBeat * 30)) * inBeat) * Math.exp(-inBeat * 8) : 0;
    const snare = b % 2 === 1 ? noiseAt(n, 0x51ed) * Math.exp(-inBeat * 18) * 0.5 : 0;
    const eighth = (n % (beat / 2)) / sampleRate;
    const hat = noiseAt(n, 0x4a7) * Math.exp(-eighth * 60) * 0.15;
    // Bass: one note per beat, two harmonics.
    const bf = midiHz(BASS[b % BASS.length]!);
    const bass = (Math.sin(2 * Math.PI * bf * t) + 0.3 * Math.sin(4 * Math.PI * bf * t)) * 0.3 * Math.exp(-inBeat * 1.5);
    // Chords: a bar (4 beats) each, panned left/right, decaying harmonics.
    const chord = CHORDS[Math.floor(b / 4) % CHORDS.length]!;
    let pad = 0;
    for (const m of chord) {
      const f = midiHz(m);
      pad += Math.sin(2 * Math.PI * f * t) + 0.4 * Math.sin(4 * Math.PI * f * t) + 0.15 * Math.sin(6 * Math.PI * f * t);
    }
    pad *= 0.06;
    // Voice-like line: vibrato and a few harmonics, centred.
    const vf = midiHz(MELODY[Math.floor(b / 2) % MELODY.length]!) * (1 + 0.01 * Math.sin(2 * Math.PI * 5.5 * t));
    const env = Math.min(1, ((n % (2 * beat)) / sampleRate) * 20) * 0.2;
    const voice = env * (Math.sin(2 * Math.PI * vf * t) + 0.5 * Math.sin(4 * Math.PI * vf * t) + 0.25 * Math.sin(6 * Math.PI * vf * t));
    const centre = 0.5 * kick + 0.35 * snare + bass + voice;
    left[i] = LEVEL * (centre + 0.7 * pad + hat);
    right[i] = LEVEL * (centre + 0.3 * pad + 0.6 * hat);
  }
  return { channels: [left, right], sampleRate };
}

/** Bytes of 16-bit stereo WAV data for `seconds` at `sampleRate` (the unit of the MB/s targets). */
export function wavBytes(frames: number, channels: number): number {
  return frames * channels * 2;
}
