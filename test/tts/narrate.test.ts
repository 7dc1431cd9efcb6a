import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { acquireSlots } from '../../src/jobs/semaphore.js';
import { buildNarrationArgs, filterPath } from '../../src/tts/narrate.js';
import { buildKokoroTimingModel, npz, voiceTable } from '../helpers/tts-fixtures.js';
import { runTtsCli } from '../helpers/tts-cli.js';

describe('buildNarrationArgs', () => {
  const base = { speech: '/t/s.wav', subtitles: '/t/s.srt', clipHasAudio: true, burn: false, duration: 4, muxer: 'mp4', audioCodec: ['-c:a', 'aac', '-b:a', '256k'], output: '/o/n.mp4.tmp' };
  const fmt = 'aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo';

  it('clip, replace: video copied, speech padded to the clip, soft mov_text track, cut at the clip length', () => {
    expect(buildNarrationArgs({ ...base, visual: 'clip.mp4', image: false, mode: 'replace' })).toEqual([
      '-hide_banner', '-nostdin', '-y', '-v', 'error',
      '-i', 'clip.mp4', '-i', '/t/s.wav', '-i', '/t/s.srt',
      '-filter_complex', `[1:a]${fmt},apad=whole_dur=4.000[aout]`,
      '-map', '0:v:0', '-map', '[aout]', '-map', '2:s:0',
      '-c:v', 'copy', '-c:a', 'aac', '-b:a', '256k', '-c:s', 'mov_text',
      '-t', '4.000', '-f', 'mp4', '/o/n.mp4.tmp',
    ]);
  });

  it('clip, duck: the clip sound compressed by a sidechain keyed on the speech, then the speech added', () => {
    const args = buildNarrationArgs({ ...base, visual: 'clip.mp4', image: false, mode: 'duck' });
    expect(args[args.indexOf('-filter_complex') + 1]).toBe(
      `[0:a]${fmt}[bg];[1:a]${fmt},apad=whole_dur=4.000,asplit=2[sp][key];[bg][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[ducked];[ducked][sp]amix=inputs=2:duration=first:normalize=0[aout]`,
    );
  });

  it('still image, burnt subtitles: looped, encoded with libx264, even size, no soft track', () => {
    expect(buildNarrationArgs({ ...base, visual: 'c.png', image: true, mode: 'mix', clipHasAudio: false, burn: true, duration: 2.5 })).toEqual([
      '-hide_banner', '-nostdin', '-y', '-v', 'error', '-loop', '1', '-framerate', '25',
      '-i', 'c.png', '-i', '/t/s.wav',
      '-filter_complex', `[0:v:0]scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p,subtitles=filename=/t/s.srt[vout];[1:a]${fmt},apad=whole_dur=2.500[aout]`,
      '-map', '[vout]', '-map', '[aout]',
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-tune', 'stillimage', '-r', '25',
      '-c:a', 'aac', '-b:a', '256k', '-t', '2.500', '-f', 'mp4', '/o/n.mp4.tmp',
    ]);
  });

  it('escapes paths for the subtitles filter (option level, then graph level)', () => {
    expect(filterPath("/a b/it's:x,[1].srt")).toBe("/a b/it\\\\\\'s\\\\:x\\,\\[1\\].srt");
  });
});

const dir = mkdtempSync(join(tmpdir(), 'stemkit-narrate-'));
const env = { STEMKIT_RUNTIME_DIR: join(dir, 'run'), STEMKIT_CACHE_DIR: join(dir, 'cache') };
const model = join(dir, 'kokoro.onnx');
const voices = join(dir, 'voices.npz');
const clip = join(dir, 'clip.mp4');
const cover = join(dir, 'cover.png');
const TEXT = 'Hello world, this is a narrated clip. It costs $5.50, friend.';

function ff(args: string[]): string {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

interface Probe {
  streams: Array<{ codec_type: string; codec_name: string; duration?: string; width?: number; height?: number }>;
  format: { duration: string };
}
function probe(path: string): Probe {
  const r = spawnSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], { encoding: 'utf8' });
  return JSON.parse(r.stdout) as Probe;
}
function packetSizes(path: string, stream: 'v' | 's'): number[] {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', stream, '-show_entries', 'packet=size', '-of', 'csv=p=0', path], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter((l) => l !== '').map(Number);
}
/** The output's audio (mono, 48 kHz) between two times. */
function audio(path: string, from: number, to: number): Float32Array {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-ss', String(from), '-t', String(to - from), '-i', path, '-map', '0:a:0', '-ac', '1', '-ar', '48000', '-f', 'f32le', '-'], { maxBuffer: 64 << 20 });
  return new Float32Array(new Uint8Array(r.stdout).buffer);
}
function rms(path: string, from: number, to: number): number {
  const x = audio(path, from, to);
  return Math.sqrt(x.reduce((a, v) => a + v * v, 0) / Math.max(1, x.length));
}
/** Amplitude of the 440 Hz tone between two times (correlation with sin/cos; the speech has no 440 Hz line). */
function tone(path: string, from: number, to: number): number {
  const x = audio(path, from, to);
  let c = 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    c += x[i]! * Math.cos((2 * Math.PI * 440 * i) / 48000);
    s += x[i]! * Math.sin((2 * Math.PI * 440 * i) / 48000);
  }
  return (2 * Math.hypot(c, s)) / x.length;
}
function srtCues(path: string): number {
  return readFileSync(path, 'utf8').trim().split(/\n{2,}/).length;
}
const dur = (p: Probe, type: string): number => Number(p.streams.find((s) => s.codec_type === type)!.duration ?? p.format.duration);

beforeAll(() => {
  writeFileSync(model, buildKokoroTimingModel({ duration: true }));
  writeFileSync(voices, npz({ af_heart: voiceTable(0) }, 0));
  // 6 s of test pattern (h264) with a 440 Hz tone (AAC, amplitude 1/8: RMS 0.088), longer than the speech.
  ff(['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '6', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', clip]);
  ff(['-f', 'lavfi', '-i', 'testsrc=size=161x121', '-frames:v', '1', cover]);
});

describe('stemkit tts --video (ffmpeg, checked with ffprobe)', () => {
  it('replace: the clip with the speech as soundtrack, video copied, a soft subtitle track of every cue', async () => {
    const out = join(dir, 'narrated.mp4');
    const srt = join(dir, 'narrated.srt');
    const r = await runTtsCli([TEXT, '-m', model, '--voices', voices, '--video', clip, '-o', out, '--subtitles', srt, '--max-cue-chars', '30', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const p = probe(out);
    expect(p.streams.map((s) => [s.codec_type, s.codec_name])).toEqual([['video', 'h264'], ['audio', 'aac'], ['subtitle', 'mov_text']]);
    // The video keeps the clip's length; the audio and the file too (within 50 ms).
    expect(Math.abs(dur(p, 'video') - 6)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(dur(p, 'audio') - 6)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(Number(p.format.duration) - 6)).toBeLessThanOrEqual(0.05);
    // Copied, not re-encoded: the same video packets, byte for byte in size.
    expect(packetSizes(out, 'v')).toEqual(packetSizes(clip, 'v'));
    // mov_text writes a 2-byte empty sample in each gap; the cues are the larger ones.
    const cues = packetSizes(out, 's').filter((n) => n > 2).length;
    expect(cues).toBe(srtCues(srt));
    expect(cues).toBeGreaterThanOrEqual(3);
    // Replace: after the speech the soundtrack is silent (AAC noise only).
    const rec = r.json().find((j) => j['type'] === 'tts')!;
    const speechSec = rec['durationSec'] as number;
    expect(rms(out, speechSec + 0.3, 5.8)).toBeLessThan(0.005);
    expect(rec['video']).toMatchObject({ path: out, audio: 'replace', subtitleCues: cues, softSubtitles: true, burnt: false });
  });

  it('mix keeps the clip sound under and after the speech; duck lowers it under the speech and brings it back', async () => {
    const under: Record<string, number> = {};
    for (const mode of ['mix', 'duck']) {
      const out = join(dir, `${mode}.mkv`);
      const r = await runTtsCli(['Hello world.', '-m', model, '--voices', voices, '--video', clip, '--video-audio', mode, '-o', out], env);
      expect(r.code, r.stderr).toBe(0);
      const p = probe(out);
      expect(p.streams.map((s) => s.codec_name)).toEqual(['h264', 'flac', 'subrip']);
      // The tone's RMS is 0.088; 1.5 s after the speech (ducking releases in 400 ms) it is back in full.
      expect(Math.abs(rms(out, 3, 5.5) - 0.088)).toBeLessThan(0.01);
      under[mode] = tone(out, 0.3, 0.9);
    }
    // Under the speech the tone (amplitude 0.125) stays in the mix and is pushed down ≥ 6 dB when ducked.
    expect(Math.abs(under['mix']! - 0.125)).toBeLessThan(0.02);
    expect(under['duck']!).toBeLessThan(under['mix']! / 2);
  });

  it('a still image plus speech makes a video as long as the speech; --burn-subtitles draws them in', async () => {
    const soft = join(dir, 'still.mp4');
    const burnt = join(dir, 'still-burnt.mp4');
    const a = await runTtsCli([TEXT, '-m', model, '--voices', voices, '--video', cover, '-o', soft, '--json'], env);
    expect(a.code, a.stderr).toBe(0);
    const b = await runTtsCli([TEXT, '-m', model, '--voices', voices, '--video', cover, '-o', burnt, '--burn-subtitles'], env);
    expect(b.code, b.stderr).toBe(0);
    const speechSec = a.json().find((j) => j['type'] === 'tts')!['durationSec'] as number;
    const ps = probe(soft);
    const pb = probe(burnt);
    expect(ps.streams.map((s) => s.codec_type)).toEqual(['video', 'audio', 'subtitle']);
    expect(pb.streams.map((s) => s.codec_type)).toEqual(['video', 'audio']);
    for (const p of [ps, pb]) {
      expect(p.streams[0]!.width).toBe(160); // 161×121 made even
      expect(Math.abs(dur(p, 'video') - speechSec)).toBeLessThanOrEqual(0.05);
      expect(Math.abs(dur(p, 'audio') - speechSec)).toBeLessThanOrEqual(0.05);
    }
    // At 1 s a cue is showing: the burnt frame differs from the plain one where the text is drawn.
    const frame = (f: string): Uint8Array => new Uint8Array(spawnSync('ffmpeg', ['-v', 'error', '-ss', '1', '-i', f, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], { maxBuffer: 1 << 24 }).stdout);
    const x = frame(soft);
    const y = frame(burnt);
    expect(x.length).toBe(160 * 120);
    let changed = 0;
    for (let i = 0; i < x.length; i++) if (Math.abs(x[i]! - y[i]!) > 40) changed++;
    expect(changed).toBeGreaterThan(200);
  });

  it('ffmpeg runs under a video job slot: with the only one held elsewhere, --no-wait exits 75 and writes nothing', async () => {
    const runtimeDir = join(dir, 'rt-video');
    const config = resolveConfig({ env: {}, cores: 2, flags: { profile: 'small' } }).config;
    expect(config.maxConcurrentVideo).toBe(1);
    const lease = await acquireSlots({ pools: ['video'], config, wait: false, runtimeDir });
    try {
      const out = join(dir, 'busy.mp4');
      const r = await runTtsCli(['Hi.', '-m', model, '--voices', voices, '--video', clip, '-o', out, '--profile', 'small', '--no-wait'], { ...env, STEMKIT_RUNTIME_DIR: runtimeDir });
      expect(r.code).toBe(75);
      expect(r.stderr).toMatch(/busy: 1\/1 video jobs running/);
      expect(existsSync(out)).toBe(false);
    } finally {
      await lease.release();
    }
  });

  it('usage errors: a non-video output (64), a missing clip (66); nothing is written', async () => {
    const wav = join(dir, 'x.wav');
    const r1 = await runTtsCli(['Hi.', '-m', model, '--voices', voices, '--video', clip, '-o', wav], env);
    expect(r1.code).toBe(64);
    expect(r1.stderr).toMatch(/--video needs a video output/);
    const r2 = await runTtsCli(['Hi.', '-m', model, '--voices', voices, '--video', join(dir, 'nope.mp4'), '-o', join(dir, 'y.mp4')], env);
    expect(r2.code).toBe(66);
    expect(existsSync(wav) || existsSync(join(dir, 'y.mp4'))).toBe(false);
  });
});
