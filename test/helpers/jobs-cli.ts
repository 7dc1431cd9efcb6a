/**
 * Fixtures for tests that run the real CLI (`node bin/stemkit.js separate …`) several times at once:
 * a slow identity model with the MDX-Net contract, sine inputs, and the slot take/release times parsed
 * from the processes' `--json --verbose` output.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openWavSource } from '../../src/audio/wav.js';
import { readAll } from '../../src/audio/open.js';
import type { RawAudio } from '../../src/audio/raw-audio.js';
import { buildSlowIdentityMdxModel } from './jobs-slow-model.js';
import { repoRoot, spawnNode, type JsonLine, type Proc } from './jobs-procs.js';

export const stemkitBin = join(repoRoot, 'bin', 'stemkit.js');

/**
 * Writes `<dir>/slow.onnx` and its sidecar `<dir>/slow.json` (UVR model-data format, which `separate --model`
 * reads): dim_f 2048, n_fft 5120 (cut-off 17.6 kHz), dim_t 256, primary stem vocals.
 */
export function writeSlowModel(dir: string, matmuls: number): string {
  mkdirSync(dir, { recursive: true });
  const model = join(dir, 'slow.onnx');
  writeFileSync(model, buildSlowIdentityMdxModel({ dimF: 2048, matmuls }));
  writeFileSync(join(dir, 'slow.json'), JSON.stringify({ compensate: 1, mdx_dim_f_set: 2048, mdx_dim_t_set: 8, mdx_n_fft_scale_set: 5120, primary_stem: 'Vocals' }));
  return model;
}

/** The sample value of the test sine at frame i (stereo, both channels equal). */
export const sineAt = (i: number, freq: number, rate = 44100, amp = 0.3): number => amp * Math.sin((2 * Math.PI * freq * i) / rate);

/** A 16-bit PCM stereo WAV of a sine. */
export function writeSineWav(path: string, seconds: number, freq: number, rate = 44100): void {
  const frames = Math.round(rate * seconds);
  const data = Buffer.alloc(frames * 4);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(sineAt(i, freq, rate) * 32767);
    data.writeInt16LE(v, i * 4);
    data.writeInt16LE(v, i * 4 + 2);
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(2, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 4, 28);
  h.writeUInt16LE(4, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([h, data]));
}

export async function readWav(path: string): Promise<RawAudio> {
  return readAll(await openWavSource(path));
}

/** Runs the built CLI in its own process. */
export function stemkit(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return spawnNode([stemkitBin, ...args], { env });
}

const TOOK = /^took slot (\S+) at (\S+Z) /;
const RELEASING = /^releasing slot (\S+) at (\S+Z)$/;

/** [take, release] epoch-ms pairs of each slot hold, from the `--json --verbose` debug log lines on stderr. */
export function slotHolds(lines: readonly JsonLine[]): Array<[number, number]> {
  const holds: Array<[number, number]> = [];
  let open: number | undefined;
  for (const l of lines) {
    if (l['type'] !== 'log' || typeof l['message'] !== 'string') continue;
    const t = TOOK.exec(l['message']);
    if (t) open = Date.parse(t[2]!);
    const r = RELEASING.exec(l['message']);
    if (r && open !== undefined) {
      holds.push([open, Date.parse(r[2]!)]);
      open = undefined;
    }
  }
  return holds;
}

export const isTook = (l: JsonLine): boolean => l['type'] === 'log' && typeof l['message'] === 'string' && TOOK.test(l['message']);
export const isWaiting = (l: JsonLine): boolean => l['type'] === 'log' && typeof l['message'] === 'string' && l['message'].startsWith('waiting for a free slot');
