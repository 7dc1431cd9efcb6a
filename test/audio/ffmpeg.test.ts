import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFfmpegSink } from '../../src/audio/ffmpeg.js';
import { createAudioSink, openAudioSource, readAll, remuxVideo } from '../../src/audio/open.js';
import type { RawAudio } from '../../src/audio/raw-audio.js';
import { createWavSink } from '../../src/audio/wav.js';
import { StemkitError } from '../../src/errors.js';
import { HAS_FFMPEG, buildWav, ffmpegSync, ffprobeJson, makeTempDir, patternBytes, sine } from '../helpers/audio-fixtures.js';

const tmp = makeTempDir('stemkit-ffmpeg-');
afterAll(() => tmp.cleanup());
const at = (name: string): string => join(tmp.dir, name);

async function writeWav(path: string, audio: RawAudio, bits: 16 | 24 | 32 = 16): Promise<void> {
  const sink = await createWavSink(path, { sampleRate: audio.sampleRate, channels: audio.channels.length, bits });
  await sink.write(audio);
  await sink.finish();
}

/** SNR in dB of `b` against reference `a` over the common length, skipping `skip` frames at each end. */
function snrDb(a: Float32Array, b: Float32Array, skip = 0): number {
  let sig = 0;
  let err = 0;
  const n = Math.min(a.length, b.length) - skip;
  for (let i = skip; i < n; i++) {
    sig += a[i]! * a[i]!;
    err += (a[i]! - b[i]!) ** 2;
  }
  return 10 * Math.log10(sig / err);
}

/** Tests that inspect child processes read /proc. */
const LINUX = process.platform === 'linux';

/** Child processes of this process whose command is ffmpeg (Linux /proc). */
function ffmpegChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
      if (m && m[1] === 'ffmpeg' && Number(m[2]) === process.pid) out.push(Number(d));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

async function waitNoChildren(): Promise<number[]> {
  for (let i = 0; i < 50 && ffmpegChildren().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return ffmpegChildren();
}

describe('without ffmpeg', () => {
  it('a WAV named .mp3 is still read natively', async () => {
    const p = at('really-a-wav.mp3');
    writeFileSync(p, buildWav({ formatTag: 1, channels: 1, sampleRate: 8000, bits: 16 }, patternBytes(1, 20)));
    const src = await openAudioSource(p, { ffmpegPath: at('nope') });
    expect(src.info.format).toBe('wav pcm_s16le');
    await src.close();
  });

  it('a non-WAV input with a bad ffmpegPath is UnavailableError 69 naming the path and the fixes', async () => {
    const p = at('x.flac');
    writeFileSync(p, Buffer.concat([Buffer.from('fLaC'), patternBytes(2, 100)]));
    const e = (await openAudioSource(p, { ffmpegPath: at('nope') }).catch((x: unknown) => x)) as StemkitError;
    expect(e.exitCode).toBe(69);
    expect(e.code).toBe('E_FFMPEG_MISSING');
    expect(e.message).toBe(`ffmpeg was not found at ${at('nope')} (from FFMPEG_PATH or the config's ffmpegPath)`);
    expect(e.hint).toMatch(/WAV works without it; install it with `apt-get install ffmpeg` \/ `brew install ffmpeg`, or set FFMPEG_PATH/);
  });

  it('with no ffmpeg on PATH: "ffmpeg was not found on PATH", for sources and for non-WAV sinks', async () => {
    const saved = process.env.PATH;
    process.env.PATH = tmp.dir;
    try {
      const p = at('y.mp3');
      writeFileSync(p, Buffer.concat([Buffer.from('ID3\x04'), patternBytes(3, 100)]));
      await expect(openAudioSource(p)).rejects.toMatchObject({ exitCode: 69, message: 'ffmpeg was not found on PATH; it is needed for formats other than WAV' });
      await expect(createAudioSink(at('z.flac'), { sampleRate: 8000, channels: 1 })).rejects.toMatchObject({ exitCode: 69 });
      // WAV output needs no ffmpeg
      const sink = await createAudioSink(at('z.wav'), { sampleRate: 8000, channels: 1 });
      await sink.abort();
    } finally {
      process.env.PATH = saved;
    }
  });

  it('an unknown output extension is UsageError 64 listing the formats', async () => {
    await expect(createAudioSink(at('a.xyz'), { sampleRate: 8000, channels: 1 })).rejects.toMatchObject({
      exitCode: 64,
      message: 'cannot tell the output format from ".xyz"',
      hint: 'use one of: wav, flac, mp3, opus, ogg, m4a',
    });
  });
});

describe.skipIf(!HAS_FFMPEG)('through ffmpeg', () => {
  const rate = 44100;
  const ref = sine(1000, rate, rate * 2, 2, 0.5); // 2 s stereo
  const refWav = at('ref.wav');
  beforeAll(async () => {
    await writeWav(refWav, { channels: ref, sampleRate: rate }, 16);
  });

  it('decodes FLAC bit-exactly equal to the 16-bit WAV it was made from, in any block size', async () => {
    ffmpegSync(['-i', refWav, at('ref.flac')]);
    const wav = await readAll(await openAudioSource(refWav));
    const src = await openAudioSource(at('ref.flac'));
    expect(src.info).toEqual({ sampleRate: rate, channels: 2, frames: rate * 2, format: 'flac flac', isVideo: false });
    const parts: Float32Array[] = [];
    for (let b = await src.read(1000); b !== null; b = await src.read(1000)) {
      expect(b.channels[0]!.length).toBeLessThanOrEqual(1000);
      parts.push(b.channels[1]!);
    }
    await src.close();
    const right = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let off = 0;
    for (const p of parts) {
      right.set(p, off);
      off += p.length;
    }
    expect(right).toEqual(wav.channels[1]);
  });

  // A 1 kHz sine at -6 dBFS. Measured with ffmpeg 5.1 here: flac 91.8 dB (16-bit quantisation), mp3 320k 81.8,
  // aac 256k 47.6, vorbis 256k 41.2, opus 192k 47.3 (against a 48 kHz reference). Floors sit ~6-10 dB below.
  it.each([
    ['flac', 85],
    ['mp3', 70],
    ['m4a', 37],
    ['ogg', 31],
    ['opus', 37],
  ] as const)('encodes %s and decodes it back (SNR floor %i dB)', async (format, floor) => {
    const out = at(`enc.${format}`);
    const sink = await createAudioSink(out, { sampleRate: rate, channels: 2 });
    for (let i = 0; i < ref[0]!.length; i += 10000) {
      await sink.write({ channels: ref.map((c) => c.subarray(i, i + 10000)), sampleRate: rate });
    }
    expect(readdirSync(tmp.dir)).not.toContain(`enc.${format}`);
    await sink.finish();
    const back = await readAll(await openAudioSource(out));
    // libopus only runs at 48 kHz (ffmpeg resamples); the same continuous sine sampled at 48 kHz is the reference.
    const outRate = format === 'opus' ? 48000 : rate;
    expect(back.sampleRate).toBe(outRate);
    const expected = format === 'opus' ? sine(1000, 48000, 96000, 2, 0.5) : ref;
    // Lossy encoders add up to a codec frame of padding; compare the common part, skipping 2048 frames at each end.
    expect(Math.abs(back.channels[0]!.length - expected[0]!.length)).toBeLessThanOrEqual(2048);
    expect(snrDb(expected[0]!, back.channels[0]!, 2048)).toBeGreaterThan(floor);
  });

  it('FLAC 24-bit keeps 24-bit precision', async () => {
    const out = at('deep.flac');
    const sink = await createAudioSink(out, { sampleRate: rate, channels: 1, bits: 24 });
    await sink.write({ channels: [ref[0]!], sampleRate: rate });
    await sink.finish();
    expect(ffprobeJson(out).streams[0]).toMatchObject({ codec_name: 'flac', bits_per_raw_sample: '24' });
    const back = await readAll(await openAudioSource(out));
    let maxErr = 0;
    for (let i = 0; i < ref[0]!.length; i++) maxErr = Math.max(maxErr, Math.abs(back.channels[0]![i]! - ref[0]![i]!));
    // ffmpeg converts float → s32 and the encoder keeps the top 24 bits (truncation): under one 24-bit step,
    // where a 16-bit path would be off by up to 1.5e-5.
    expect(maxErr).toBeLessThan(1 / 8388608);
  });

  it('several sinks and sources open at once (a batch writing stems concurrently)', async () => {
    const names = ['s1.flac', 's2.mp3', 's3.wav', 's4.m4a', 's5.flac'];
    const sinks = await Promise.all(names.map((n) => createAudioSink(at(n), { sampleRate: rate, channels: 2 })));
    const srcA = await openAudioSource(refWav);
    for (let b = await srcA.read(4096); b !== null; b = await srcA.read(4096)) await Promise.all(sinks.map((s) => s.write(b)));
    await srcA.close();
    await Promise.all(sinks.map((s) => s.finish()));
    const sources = await Promise.all(names.map((n) => openAudioSource(at(n))));
    const all = await Promise.all(sources.map((s) => readAll(s)));
    expect(all.map((a) => a.channels.length)).toEqual([2, 2, 2, 2, 2]);
    expect(all[0]!.channels[0]).toEqual(all[4]!.channels[0]);
    expect(all[0]!.channels[0]!.length).toBe(rate * 2);
  });

  it('a compressed (IMA ADPCM) WAV falls back to ffmpeg', async () => {
    const p = at('adpcm.wav');
    ffmpegSync(['-i', refWav, '-c:a', 'adpcm_ima_wav', p]);
    const src = await openAudioSource(p);
    expect(src.info.format).toBe('wav adpcm_ima_wav');
    const a = await readAll(src);
    expect(snrDb(ref[0]!, a.channels[0]!, 2048)).toBeGreaterThan(28); // 4-bit IMA ADPCM of this sine measured 38.6 dB
  });

  it('a damaged file: DataError 65 with the ffprobe stderr tail', async () => {
    const p = at('junk.mp3');
    writeFileSync(p, patternBytes(11, 5000));
    const e = (await openAudioSource(p).catch((x: unknown) => x)) as StemkitError;
    expect(e).toBeInstanceOf(StemkitError);
    expect(e.exitCode).toBe(65);
    expect(e.message.split('\n')[0]).toMatch(/^ffprobe could not read .*junk\.mp3 \(exit code 1\)$/);
    expect(e.message).toMatch(/\n {2}ffmpeg: \S/);
    expect((e.details as { stderr: string[] }).stderr.length).toBeGreaterThan(0);
  });

  it('a malformed bitrate is UsageError 64 before ffmpeg starts', async () => {
    await expect(createAudioSink(at('b.mp3'), { sampleRate: rate, channels: 2, bitrate: 'lots' })).rejects.toMatchObject({ exitCode: 64, message: 'invalid bitrate "lots"' });
  });

  it('an encoder failure (ffmpeg rejects the bitrate): FfmpegError 73 with stderr, and no file left behind', async () => {
    const out = at('bad-bitrate.mp3');
    // createFfmpegSink skips createAudioSink's bitrate check, so ffmpeg itself fails.
    const sink = await createFfmpegSink(out, { format: 'mp3', sampleRate: rate, channels: 2, bitrate: 'lots' });
    const err = await (async () => {
      try {
        await sink.write({ channels: ref, sampleRate: rate });
        await sink.finish();
      } catch (e) {
        return e as StemkitError;
      }
      return undefined;
    })();
    expect(err?.exitCode).toBe(73);
    expect(err?.message).toMatch(/^ffmpeg could not encode .*bad-bitrate\.mp3 as mp3 \(exit code \d+\)\n {2}ffmpeg: /);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('bad-bitrate'))).toEqual([]);
  });

  it('a file with only video: "has no audio track"', async () => {
    const p = at('silent-film.mp4');
    ffmpegSync(['-f', 'lavfi', '-i', 'testsrc=s=32x24:r=5:d=1', '-c:v', 'libx264', p]);
    await expect(openAudioSource(p)).rejects.toMatchObject({ exitCode: 65, code: 'E_NO_AUDIO' });
  });

  it.skipIf(!LINUX)('abort (Ctrl-C) kills the decoder and the encoder; read/write reject with 130', async () => {
    const long = at('long.flac');
    ffmpegSync(['-f', 'lavfi', '-i', 'sine=f=300:d=120:r=44100', long]);
    const ac = new AbortController();
    const src = await openAudioSource(long, { signal: ac.signal });
    const sink = await createAudioSink(at('aborted.mp3'), { sampleRate: 44100, channels: 1, signal: ac.signal });
    const b = await src.read(4096);
    await sink.write(b!);
    expect(ffmpegChildren()).toHaveLength(2);
    ac.abort();
    await expect(src.read(4096)).rejects.toMatchObject({ exitCode: 130 });
    await expect(sink.write(b!)).rejects.toMatchObject({ exitCode: 130 });
    await sink.abort();
    await src.close();
    expect(await waitNoChildren()).toEqual([]);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('aborted'))).toEqual([]);
  });

  it('one signal shared by many files (a batch) leaves no listeners behind (no MaxListeners warning)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    const ac = new AbortController();
    const flac = at('many.flac');
    ffmpegSync(['-i', refWav, '-t', '0.1', flac]);
    try {
      // 6 files × (source + sink) = 12 listeners if they leaked; Node warns above 10.
      for (let i = 0; i < 6; i++) {
        await readAll(await openAudioSource(flac, { signal: ac.signal }));
        const sink = await createAudioSink(at(`many${i}.flac`), { sampleRate: rate, channels: 1, signal: ac.signal });
        await sink.write({ channels: [ref[0]!.subarray(0, 1000)], sampleRate: rate });
        await sink.finish();
      }
      await new Promise((r) => setTimeout(r, 50)); // warnings are emitted on a later tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it.skipIf(!LINUX)('ffmpeg dying mid-stream is an error, never a silently short decode or encode', async () => {
    const src = await openAudioSource(at('long.flac'));
    await src.read(4096);
    const [decoder] = ffmpegChildren();
    process.kill(decoder!, 'SIGKILL');
    const readErr = await (async () => {
      for (;;) if ((await src.read(65536)) === null) return undefined;
    })().catch((e: unknown) => e as StemkitError);
    expect(readErr).toMatchObject({ exitCode: 65, code: 'E_FFMPEG' });
    expect(readErr?.message).toMatch(/^ffmpeg could not decode .*long\.flac \(killed by SIGKILL\)/);
    await src.close();

    const sink = await createAudioSink(at('killed.flac'), { sampleRate: rate, channels: 2 });
    await sink.write({ channels: ref, sampleRate: rate });
    const [encoder] = ffmpegChildren();
    process.kill(encoder!, 'SIGKILL');
    const writeErr = await (async () => {
      for (let i = 0; i < 100; i++) await sink.write({ channels: ref, sampleRate: rate });
      await sink.finish();
    })().catch((e: unknown) => e as StemkitError);
    expect(writeErr).toMatchObject({ exitCode: 73, code: 'E_FFMPEG' });
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('killed'))).toEqual([]);
  });

  it.skipIf(!LINUX)('backpressure: an unread source stalls ffmpeg instead of buffering the whole decode', async () => {
    const p = at('ten-min.flac');
    ffmpegSync(['-f', 'lavfi', '-i', 'sine=f=440:r=44100:d=600', '-ac', '2', p]); // decodes to 212 MB of f32le
    const src = await openAudioSource(p);
    const [pid] = ffmpegChildren();
    const written = (): number => Number(/wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
    await new Promise((r) => setTimeout(r, 1500));
    const w1 = written();
    await new Promise((r) => setTimeout(r, 1500));
    const w2 = written();
    // Without backpressure ffmpeg would still be writing (w2 > w1) or would have written all 212 MB and exited.
    expect(ffmpegChildren()).toEqual([pid]);
    expect(w1).toBeLessThan(16 * 1024 * 1024); // pipe buffer + the stream's high-water mark, far below 212 MB
    expect(w2 - w1).toBeLessThan(65536); // stalled: at most one more pipe buffer
    // Reading resumes it, and the data is intact.
    const b = await src.read(44100);
    expect(b!.channels[0]![100]).toBeCloseTo(Math.sin((2 * Math.PI * 440 * 100) / 44100) / 8, 3); // lavfi sine amplitude is 1/8
    await src.close();
  });

  it('a short file opened now and read later keeps all its data (its ffmpeg has exited meanwhile)', async () => {
    const p = at('short.flac');
    ffmpegSync(['-i', refWav, '-t', '0.5', p]);
    const src = await openAudioSource(p);
    await new Promise((r) => setTimeout(r, 500));
    const a = await readAll(src);
    expect(a.channels[0]!.length).toBe(22050);
    expect(a.channels[0]![1000]).toBe(Math.round(ref[0]![1000]! * 32768) / 32768); // 16-bit FLAC is exact
  });

  it.skipIf(!LINUX)('close() before the end stops ffmpeg (no orphan process)', async () => {
    const src = await openAudioSource(at('long.flac'));
    await src.read(10);
    await src.close();
    expect(await waitNoChildren()).toEqual([]);
  });

  it('reads the audio track of a video; remuxVideo copies the video and sums the stems', async () => {
    const video = at('clip.mp4');
    ffmpegSync(['-f', 'lavfi', '-i', 'testsrc=s=64x48:r=10:d=2', '-f', 'lavfi', '-i', 'sine=f=500:d=2:r=44100', '-c:v', 'libx264', '-c:a', 'aac', '-shortest', video]);
    const src = await openAudioSource(video);
    expect(src.info).toMatchObject({ isVideo: true, channels: 1, sampleRate: 44100, format: 'mov aac' });
    await src.close();
    // Two stems whose sum is the reference sine: 0.25 + 0.75 of it.
    const half = (g: number): RawAudio => ({ channels: ref.map((c) => c.map((v) => v * g)), sampleRate: rate });
    await writeWav(at('stemA.wav'), half(0.25), 32);
    await writeWav(at('stemB.wav'), half(0.75), 32);
    const out = at('out/clip-remixed.mp4');
    await remuxVideo({ video, audio: [at('stemA.wav'), at('stemB.wav')], out });
    const inV = ffprobeJson(video).streams.find((s) => s.codec_type === 'video')!;
    const outP = ffprobeJson(out);
    const outV = outP.streams.find((s) => s.codec_type === 'video')!;
    expect(outV.codec_name).toBe('h264');
    expect(outV.nb_frames).toBe(inV.nb_frames); // copied, not re-encoded
    expect(outV.width).toBe(64);
    expect(outP.streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac', channels: 2 });
    const back = await readAll(await openAudioSource(out));
    expect(snrDb(ref[0]!, back.channels[0]!, 2048)).toBeGreaterThan(25); // the same AAC 256k encode of this sine measured 47.6 dB in the encode test above
  });

  it('remuxVideo refuses to overwrite its input and needs at least one stem', async () => {
    const v = at('clip2.mp4');
    copyFileSync(at('clip.mp4'), v);
    await expect(remuxVideo({ video: v, audio: [refWav], out: v })).rejects.toMatchObject({ exitCode: 64 });
    await expect(remuxVideo({ video: v, audio: [], out: at('o.mp4') })).rejects.toMatchObject({ exitCode: 64 });
  });
});
