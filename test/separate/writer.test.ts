import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createAudioSink } from '../../src/audio/open.js';
import { StemWriter, type ClipMode } from '../../src/separate/writer.js';
import { makeTempDir, sine } from '../helpers/audio-fixtures.js';

const tmp = makeTempDir('stemkit-writer-');
afterAll(() => tmp.cleanup());
let n = 0;

const RATE = 44100;

async function writer(clip: ClipMode, eager: boolean, bits: 16 | 24 = 16): Promise<{ w: StemWriter; path: string; dir: string }> {
  const dir = join(tmp.dir, `d${++n}`);
  const path = join(dir, 'stem.wav');
  const w = await StemWriter.create({
    path,
    sampleRate: RATE,
    channels: 2,
    clip,
    eager,
    createSink: (p, sampleRate, channels) => createAudioSink(p, { sampleRate, channels, format: 'wav', bits }),
  });
  return { w, path, dir };
}

/** Three blocks of a stereo sine; block `loud` (if any) is scaled past full scale. */
function blocks(loud?: number, amp = 0.7): Float32Array[][] {
  return [0, 1, 2].map((k) => {
    const b = sine(440 + 110 * k, RATE, 5000 + k, 2, amp);
    if (k === loud) for (const ch of b) for (let i = 0; i < ch.length; i++) ch[i] = Math.fround(ch[i]! * 1.8);
    return b;
  });
}

async function writeAll(w: StemWriter, bs: Float32Array[][]): Promise<void> {
  for (const b of bs) await w.write(b);
  await w.finish();
}

describe('StemWriter, clip rescale, eager (the final file written while the gain stays 1)', () => {
  for (const [label, loud] of [['quiet stem (gain 1)', undefined], ['stem that gets loud in its 2nd block', 1]] as const) {
    it(`${label}: the same bytes as the spool-only path, and only the final file is left`, async () => {
      const eager = await writer('rescale', true);
      const spool = await writer('rescale', false);
      await writeAll(eager.w, blocks(loud));
      await writeAll(spool.w, blocks(loud));
      expect(eager.w.gain).toBe(spool.w.gain);
      if (loud === undefined) expect(eager.w.gain).toBe(1);
      else expect(eager.w.gain).toBeCloseTo(1 / (1.01 * 0.7 * 1.8), 3);
      expect(Buffer.compare(readFileSync(eager.path), readFileSync(spool.path))).toBe(0);
      expect(readdirSync(eager.dir)).toEqual(['stem.wav']);
    });
  }

  it('with the gain at 1 the final file is written during the run (its temp file grows before finish)', async () => {
    const { w, dir, path } = await writer('rescale', true);
    const bs = blocks();
    await w.write(bs[0]!);
    const temps = readdirSync(dir);
    // The sink's temp WAV (header + 5000 stereo 16-bit frames) and the float32 spool.
    const wav = temps.find((f) => !f.endsWith('.f32') && f !== 'stem.wav')!;
    expect(temps.filter((f) => f.endsWith('.f32'))).toHaveLength(1);
    expect(readFileSync(join(dir, wav)).length).toBeGreaterThanOrEqual(5000 * 4);
    await w.write(bs[1]!);
    await w.write(bs[2]!);
    await w.finish();
    expect(readdirSync(dir)).toEqual(['stem.wav']);
    // 44-byte-or-more header + 15003 frames of 4 bytes.
    const size = readFileSync(path).length;
    expect(size - 15003 * 4).toBeGreaterThanOrEqual(44);
  });

  it('abort() after the stem got loud, or while still eager, leaves no file', async () => {
    for (const loud of [undefined, 0]) {
      const { w, dir } = await writer('rescale', true);
      for (const b of blocks(loud)) await w.write(b);
      await w.abort();
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  it('24-bit: eager and spool-only agree byte for byte', async () => {
    const eager = await writer('rescale', true, 24);
    const spool = await writer('rescale', false, 24);
    await writeAll(eager.w, blocks(undefined, 0.98));
    await writeAll(spool.w, blocks(undefined, 0.98));
    expect(eager.w.gain).toBe(1);
    expect(Buffer.compare(readFileSync(eager.path), readFileSync(spool.path))).toBe(0);
  });
});

describe('StemWriter peak', () => {
  it.each(['none', 'clamp', 'rescale'] as const)('%s: peakValue is the largest |sample| over every block and channel', async (clip) => {
    const { w } = await writer(clip, false);
    const bs = blocks(undefined, 0.5);
    bs[1]![1]![77] = -0.93;
    for (const b of bs) await w.write(b);
    expect(w.peakValue).toBe(Math.fround(0.93));
    await w.finish();
  });
});
