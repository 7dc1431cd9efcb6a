/**
 * The "done when" round trips: a 60-minute WAV (read → write, bit-exact) and a 10-minute MP4
 * (decode → write → compare; remuxing is covered on a 2-second clip in ffmpeg.test.ts, because re-encoding
 * 10 minutes of AAC costs ~20 CPU-seconds). Files live in os.tmpdir() and are deleted afterwards; comparisons
 * are incremental, so the test itself never holds a whole track.
 */
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createAudioSink, openAudioSource } from '../../src/audio/open.js';
import type { AudioSource } from '../../src/audio/raw-audio.js';
import { openWavSource } from '../../src/audio/wav.js';
import { HAS_FFMPEG, buildWav, ffmpegSync, makeTempDir, patternBytes } from '../helpers/audio-fixtures.js';

const tmp = makeTempDir('stemkit-long-');
afterAll(() => tmp.cleanup());

const CHUNK = 1 << 20; // pattern chunk k (1 MiB) is patternBytes(k, CHUNK)

async function writePatternWav(path: string, dataBytes: number, spec: { channels: number; sampleRate: number; bits: number }): Promise<void> {
  const header = buildWav({ formatTag: 1, ...spec }, new Uint8Array(0));
  header.writeUInt32LE(header.length - 8 + dataBytes, 4);
  header.writeUInt32LE(dataBytes, header.length - 4);
  const ws = createWriteStream(path);
  ws.write(header);
  for (let off = 0, k = 0; off < dataBytes; off += CHUNK, k++) {
    if (!ws.write(patternBytes(k, Math.min(CHUNK, dataBytes - off)))) await once(ws, 'drain');
  }
  ws.end();
  await once(ws, 'finish');
}

/** Compares the data chunk of `path` with the regenerated pattern, 1 MiB at a time. Returns the first differing offset or -1. */
async function firstDifference(path: string, dataOffset: number, dataBytes: number): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    for (let off = 0, k = 0; off < dataBytes; off += CHUNK, k++) {
      const len = Math.min(CHUNK, dataBytes - off);
      const { bytesRead } = await fh.read(buf, 0, len, dataOffset + off);
      if (bytesRead !== len) return off + bytesRead;
      const want = patternBytes(k, len);
      if (!buf.subarray(0, len).equals(want)) {
        for (let i = 0; i < len; i++) if (buf[i] !== want[i]) return off + i;
      }
    }
    return -1;
  } finally {
    await fh.close();
  }
}

describe('60-minute WAV', () => {
  it('16-bit stereo 44.1 kHz: read → write in blocks is bit-exact over all 635 MB', async () => {
    const frames = 60 * 60 * 44100;
    const dataBytes = frames * 4;
    const input = join(tmp.dir, 'hour.wav');
    await writePatternWav(input, dataBytes, { channels: 2, sampleRate: 44100, bits: 16 });
    const src = await openWavSource(input);
    expect(src.info).toMatchObject({ frames, channels: 2, sampleRate: 44100 });
    const out = join(tmp.dir, 'hour-out.wav');
    const sink = await createAudioSink(out, { sampleRate: 44100, channels: 2, bits: 16 });
    let n = 0;
    for (let b = await src.read(65536); b !== null; b = await src.read(65536)) {
      n += b.channels[0]!.length;
      await sink.write(b);
    }
    await src.close();
    await sink.finish();
    expect(n).toBe(frames);
    const back = await openWavSource(out);
    await back.close();
    expect(back.header).toMatchObject({ frames, dataBytes, container: 'RIFF' });
    expect(await firstDifference(out, back.header.dataOffset, dataBytes)).toBe(-1);
  });
});

async function nextExactly(src: AudioSource, frames: number): Promise<Float32Array[] | null> {
  const b = await src.read(frames);
  return b === null ? null : b.channels;
}

describe.skipIf(!HAS_FFMPEG)('10-minute MP4', () => {
  it('decode → WAV (float) → decode is exact, streamed in blocks', async () => {
    const video = join(tmp.dir, 'ten.mp4');
    // Tiny picture at 1 fps keeps the video cheap; stereo AAC with a different tone per side. The fast AAC
    // coder halves the generation time (the default two-loop coder costs ~20 CPU-seconds for 10 minutes).
    ffmpegSync([
      '-f', 'lavfi', '-i', 'testsrc=s=32x24:r=1:d=600',
      '-f', 'lavfi', '-i', 'sine=f=440:r=44100:d=600',
      '-f', 'lavfi', '-i', 'sine=f=660:r=44100:d=600',
      '-filter_complex', '[1:a][2:a]amerge=inputs=2[a]', '-map', '0:v', '-map', '[a]',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-aac_coder', 'fast', '-b:a', '128k', '-shortest', video,
    ]);
    const src = await openAudioSource(video);
    expect(src.info).toMatchObject({ isVideo: true, channels: 2, sampleRate: 44100 });
    expect(Math.abs(src.info.frames! - 600 * 44100)).toBeLessThan(44100); // ffprobe's duration, within a second
    const wav = join(tmp.dir, 'ten.wav');
    const sink = await createAudioSink(wav, { sampleRate: 44100, channels: 2, bits: 32 });
    let frames = 0;
    for (let b = await src.read(44100); b !== null; b = await src.read(44100)) {
      frames += b.channels[0]!.length;
      await sink.write(b);
    }
    await src.close();
    await sink.finish();
    expect(Math.abs(frames - 600 * 44100)).toBeLessThan(44100);

    // A second decode of the MP4 and the WAV agree sample for sample (float32 WAV is lossless).
    const a = await openAudioSource(video);
    const b = await openAudioSource(wav);
    let compared = 0;
    let maxDiff = 0;
    for (;;) {
      const x = await nextExactly(a, 8192);
      if (x === null) break;
      const y = await nextExactly(b, x[0]!.length);
      expect(y).not.toBeNull();
      // The WAV reader always returns the frames asked for while data remains.
      expect(y![0]!.length).toBe(x[0]!.length);
      for (let c = 0; c < 2; c++) for (let i = 0; i < x[c]!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[c]![i]! - y![c]![i]!));
      compared += x[0]!.length;
    }
    expect(await b.read(1)).toBeNull();
    await a.close();
    await b.close();
    expect(compared).toBe(frames);
    expect(maxDiff).toBe(0);
  });
});
