/**
 * `stemkit separate` in-process: batch behaviour (skip/force, a failing file among good ones, exit codes),
 * option validation, output names that cannot escape, --json records, clip policy, sample rates, and
 * video inputs with --remux. The model is a tiny MDX-Net-contract identity graph (fast); the speech model
 * test uses the real GTCRN from $STEMKIT_SHARED_DIR.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outputPath, sanitizeComponent, validateFilenameTemplate } from '../../src/separate/paths.js';
import { mdxModel, mdxSidecar } from '../helpers/separate-models.js';
import { SHARED_DIR, maxAbsDiff, readAudio, rms, sines, tempDir, whiteNoise, writeWav, outputFiles } from '../helpers/separate-fixtures.js';
import { HAS_FFMPEG, ffmpegSync, ffprobeJson } from '../helpers/audio-fixtures.js';
import { runCli } from '../helpers/cli-run.js';

const tmp = tempDir('stemkit-sep-cli-');
process.env['STEMKIT_RUNTIME_DIR'] = join(tmp.dir, 'run');
const env = { HOME: tmp.dir, NO_COLOR: '1', STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run') };
const model = join(tmp.dir, 'ident.onnx');
const gain3 = join(tmp.dir, 'gain3.onnx');
const SIDE = { compensate: 1.0, mdx_dim_f_set: 1024, mdx_dim_t_set: 5, mdx_n_fft_scale_set: 2048, primary_stem: 'Vocals' };

const files = outputFiles;

/** Inputs and -o resolve against the process's cwd (the CLI context has no other), so tests pass absolute paths. */
const A = (name: string): string => join(tmp.dir, name);
const run = (args: string[]) => runCli(['separate', '--model', model, '--bits', '32', '--clip', 'none', ...args], { env, cwd: tmp.dir });

beforeAll(async () => {
  mdxModel(model, 1024, 32, 1);
  mdxSidecar(model, SIDE);
  mdxModel(gain3, 1024, 32, 3);
  mdxSidecar(gain3, SIDE);
  await writeWav(join(tmp.dir, 'a.wav'), sines(44100, 44100, 2, [440, 1000]));
  await writeWav(join(tmp.dir, 'b.wav'), sines(30000, 44100, 1, [300]));
  writeFileSync(join(tmp.dir, 'broken.wav'), 'RIFF this is not a wav file at all');
});
afterAll(() => tmp.cleanup());

describe('output names', () => {
  it('are sanitised and cannot leave the output folder', () => {
    expect(sanitizeComponent('../../etc/passwd')).toBe('_.._etc_passwd');
    expect(sanitizeComponent('..')).toBe('_');
    expect(sanitizeComponent('a:b*c?"d<e>f|g')).toBe('a_b_c__d_e_f_g');
    const root = join(tmp.dir, 'o');
    const p = outputPath(root, '{track}/{stem}.{ext}', { track: '../../x', stem: '../y', ext: 'wav', model: 'm' });
    expect(relative(root, p).startsWith('..')).toBe(false);
    expect(() => validateFilenameTemplate('../{stem}.{ext}')).toThrow(/must not contain/);
    expect(() => validateFilenameTemplate('/abs/{stem}.{ext}')).toThrow(/relative/);
    expect(() => validateFilenameTemplate('{track}.{ext}')).toThrow(/\{stem\}/);
    expect(() => validateFilenameTemplate('{track}/{voice}.{ext}')).toThrow(/unknown field/);
  });

  it('a traversal template is refused with exit 64 before any work', async () => {
    const r = await run([A('a.wav'), '-o', A('out-trav'), '--filename', '../../{stem}.{ext}']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('must not contain ".."');
    expect(files(join(tmp.dir, 'out-trav'))).toEqual([]);
  });
});

describe('option validation (exit 64 with the allowed range)', () => {
  const cases: Array<{ args: string[]; msg: RegExp }> = [
    { args: ['--overlap', '1.5'], msg: /--overlap must be a number from 0 to 0\.9/ },
    { args: ['--mode', '3'], msg: /--mode must be 2, 4 or 6/ },
    { args: ['--clip', 'soft'], msg: /--clip must be one of rescale, clamp, none/ },
    { args: ['--shifts', '-1'], msg: /--shifts must be an integer from 0 to 20/ },
    { args: ['--format', 'aiff'], msg: /--format must be one of wav, flac/ },
    { args: ['--two-stems', 'drums'], msg: /the model has no stem "drums"/ },
    { args: ['--stems', 'piano'], msg: /unknown stem "piano"/ },
    { args: ['--remux', 'drums'], msg: /--remux: drums is not a stem of this run/ },
    { args: ['--other-method', 'minus'], msg: /--other-method needs --two-stems/ },
  ];
  for (const c of cases) {
    it(c.args.join(' '), async () => {
      const r = await run([A('a.wav'), '-o', A('out-bad'), ...c.args]);
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(c.msg);
    });
  }
});

describe('batch', () => {
  it('separates good files, reports a missing one (66), and prints the timing line and summary', async () => {
    const r = await run([A('a.wav'), A('b.wav'), A('missing.wav'), '-o', A('out1')]);
    expect(r.code).toBe(66);
    expect(files(join(tmp.dir, 'out1'))).toEqual(['a/instrumental.wav', 'a/vocals.wav', 'b/instrumental.wav', 'b/vocals.wav']);
    expect(r.stdout).toMatch(/load \d+\.\d+s \| decode \d+\.\d+s \| infer \d+\.\d+s \| write \d+\.\d+s \| total \d+\.\d+s \| RTF \d+\.\d+ \| cpu ×\d+/);
    expect(r.stdout).toContain('3 files: 2 ok, 0 skipped, 1 failed');
    expect(r.stdout).toMatch(/✗ .*missing\.wav: /);
    // Mono input to a stereo model: both output channels carry the mono signal, stems sum to it.
    const v = await readAudio(join(tmp.dir, 'out1/b/vocals.wav'));
    const i = await readAudio(join(tmp.dir, 'out1/b/instrumental.wav'));
    const b = await readAudio(join(tmp.dir, 'b.wav'));
    expect(v.channels).toHaveLength(2);
    expect(maxAbsDiff(v.channels[1]!.map((x, k) => x + i.channels[1]![k]!), b.channels[0]!)).toBeLessThan(1e-6);
  }, 60_000);

  it('skips existing outputs unless --force; a broken file fails (65) without stopping the others', async () => {
    const first = await run([A('a.wav'), '-o', A('out2')]);
    expect(first.code).toBe(0);
    const stamp = statSync(join(tmp.dir, 'out2/a/vocals.wav')).mtimeMs;
    const again = await run([A('a.wav'), A('broken.wav'), A('b.wav'), '-o', A('out2'), '--json']);
    expect(again.code).toBe(65);
    const recs = again.json();
    const byInput = Object.fromEntries(recs.filter((x) => x['type'] === 'file').map((x) => [String(x['input']).split('/').pop(), x]));
    expect(byInput['a.wav']!['status']).toBe('skipped');
    expect(byInput['broken.wav']!['status']).toBe('failed');
    expect((byInput['broken.wav']!['error'] as { exitCode: number }).exitCode).toBe(65);
    expect(byInput['b.wav']!['status']).toBe('ok');
    expect(byInput['b.wav']!['times']).toMatchObject({ load: expect.any(Number), decode: expect.any(Number), infer: expect.any(Number), write: expect.any(Number), total: expect.any(Number) });
    expect(recs.at(-1)).toMatchObject({ type: 'summary', files: 3, ok: 1, skipped: 1, failed: 1, exitCode: 65, stems: ['vocals', 'instrumental'] });
    expect(statSync(join(tmp.dir, 'out2/a/vocals.wav')).mtimeMs).toBe(stamp);
    // No temp files are left next to the outputs, and the broken input produced nothing.
    expect(files(join(tmp.dir, 'out2'))).toEqual(['a/instrumental.wav', 'a/vocals.wav', 'b/instrumental.wav', 'b/vocals.wav']);
    const forced = await run([A('a.wav'), '-o', A('out2'), '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('1 file: 1 ok, 0 skipped, 0 failed');
  }, 60_000);

  it('expands folders and globs; --filename with {model} and --stems', async () => {
    const r = await runCli(['separate', '--model', model, tmp.dir, '-o', A('out3'), '--filename', '{model}/{track}-{stem}.{ext}', '--stems', 'vocals'], { env, cwd: tmp.dir });
    // broken.wav is among the folder's files: exit 65, the other two are written.
    expect(r.code).toBe(65);
    expect(files(join(tmp.dir, 'out3'))).toEqual(['ident/a-vocals.wav', 'ident/b-vocals.wav']);
    const g = await runCli(['separate', '--model', model, A('[ab].wav'), '-o', A('out4')], { env, cwd: tmp.dir });
    expect(g.code).toBe(0);
    expect(files(join(tmp.dir, 'out4'))).toHaveLength(4);
  }, 60_000);
});

describe('output collisions', () => {
  it('two inputs with the same name in different folders: refused (64) before either runs, with a --filename that works', async () => {
    mkdirSync(A('other'), { recursive: true });
    await writeWav(A('other/a.wav'), sines(20000, 44100, 2, [700]));
    const r = await run([A('a.wav'), A('other/a.wav'), '-o', A('out-col')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/stemkit: .*\/a\.wav and .*other\/a\.wav would both write .*out-col\/a\/(vocals|instrumental)\.wav \(and 1 more conflict\)/);
    expect(files(A('out-col'))).toEqual([]);
    // Files named one by one share their common folder as root: {dir} is '' for a.wav and 'other' for other/a.wav.
    expect(r.stderr).toContain('hint: add --filename "{dir}/{track}/{stem}.{ext}"');
    const again = await run([A('a.wav'), A('other/a.wav'), '-o', A('out-col'), '--filename', '{dir}/{track}/{stem}.{ext}']);
    expect(again.code).toBe(0);
    expect(files(A('out-col'))).toEqual(['a/instrumental.wav', 'a/vocals.wav', 'other/a/instrumental.wav', 'other/a/vocals.wav']);
  }, 60_000);
});

describe('levels and rates', () => {
  it('--clip rescale divides a loud stem by 1.01·peak and warns; clamp limits to ±0.99', async () => {
    // Peak 0.5 × gain 3 = 1.5 in the primary stem.
    await writeWav(A('loud.wav'), sines(44100, 44100, 2, [440], 0.5));
    const r = await runCli(['separate', '--model', gain3, A('loud.wav'), '-o', A('out5'), '--bits', '32'], { env, cwd: tmp.dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/vocals: peak \d+\.\d+ was rescaled by -\d+\.\d dB/);
    const v = await readAudio(join(tmp.dir, 'out5/loud/vocals.wav'));
    let peak = 0;
    for (const ch of v.channels) for (const x of ch) peak = Math.max(peak, Math.abs(x));
    // peak/(1.01·peak) = 1/1.01.
    expect(peak).toBeCloseTo(1 / 1.01, 4);
    const c = await runCli(['separate', '--model', gain3, A('loud.wav'), '-o', A('out6'), '--bits', '32', '--clip', 'clamp'], { env, cwd: tmp.dir });
    expect(c.code).toBe(0);
    const vc = await readAudio(join(tmp.dir, 'out6/loud/vocals.wav'));
    expect(Math.max(...vc.channels[0]!.map(Math.abs))).toBeCloseTo(0.99, 6);
  }, 60_000);

  it('resamples to the model rate and back (same length), or keeps the model rate with --sample-rate model', async () => {
    await writeWav(join(tmp.dir, 'c48.wav'), sines(48000, 48000, 2, [500, 2000]));
    const r = await run([A('c48.wav'), '-o', A('out7')]);
    expect(r.code).toBe(0);
    const v = await readAudio(join(tmp.dir, 'out7/c48/vocals.wav'));
    expect(v.sampleRate).toBe(48000);
    expect(v.channels[0]!.length).toBe(48000);
    const m = await run([A('c48.wav'), '-o', A('out8'), '--sample-rate', 'model']);
    expect(m.code).toBe(0);
    const vm = await readAudio(join(tmp.dir, 'out8/c48/vocals.wav'));
    expect(vm.sampleRate).toBe(44100);
    expect(vm.channels[0]!.length).toBe(44100);
  }, 60_000);
});

describe.skipIf(!HAS_FFMPEG)('video input', () => {
  it('separates the audio of a video and --remux writes the video with the chosen stem (video stream copied)', async () => {
    const video = join(tmp.dir, 'clip.mp4');
    ffmpegSync(['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10:duration=2', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2:sample_rate=44100', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', video]);
    const r = await run([A('clip.mp4'), '-o', A('out9'), '--remux', 'instrumental']);
    expect(r.code).toBe(0);
    expect(files(join(tmp.dir, 'out9'))).toEqual(['clip/instrumental.mp4', 'clip/instrumental.wav', 'clip/vocals.wav']);
    const probe = ffprobeJson(join(tmp.dir, 'out9/clip/instrumental.mp4'));
    const src = ffprobeJson(video);
    const vOut = probe.streams.find((s) => s['codec_type'] === 'video')!;
    const vIn = src.streams.find((s) => s['codec_type'] === 'video')!;
    expect(vOut['codec_name']).toBe(vIn['codec_name']);
    expect(vOut['nb_frames']).toBe(vIn['nb_frames']);
    expect(probe.streams.some((s) => s['codec_type'] === 'audio')).toBe(true);
  }, 60_000);
});

describe.skipIf(!SHARED_DIR)('speech model from the command line (real GTCRN)', () => {
  it('--model gtcrn --model-path …/gtcrn_simple.onnx noisy.wav writes speech.wav and noise.wav; stereo runs per channel', async () => {
    const n = 2 * 16000;
    const left = sines(n, 16000, 1, [200, 320, 410], 0.3).channels[0]!;
    const right = whiteNoise(n, 0.05, 3);
    await writeWav(join(tmp.dir, 'noisy.wav'), { channels: [left, right], sampleRate: 16000 });
    const r = await runCli(['separate', '--model', 'gtcrn', '--model-path', join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx'), A('noisy.wav'), '-o', A('out10'), '--bits', '32', '--clip', 'none'], { env, cwd: tmp.dir });
    expect(r.code).toBe(0);
    expect(files(join(tmp.dir, 'out10'))).toEqual(['noisy/noise.wav', 'noisy/speech.wav']);
    const s = await readAudio(join(tmp.dir, 'out10/noisy/speech.wav'));
    const z = await readAudio(join(tmp.dir, 'out10/noisy/noise.wav'));
    expect(s.channels).toHaveLength(2);
    // Per channel: each channel's speech + noise is that channel of the input.
    expect(maxAbsDiff(s.channels[1]!.map((x, i) => x + z.channels[1]![i]!), right)).toBeLessThan(1e-6);
    // Pure white noise is mostly removed from the "speech" of the right channel.
    expect(rms(s.channels[1]!)).toBeLessThan(0.5 * rms(right));
    const d = await runCli(['separate', '--model', 'gtcrn', '--model-path', join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx'), A('noisy.wav'), '-o', A('out11'), '--channels', 'downmix'], { env, cwd: tmp.dir });
    expect(d.code).toBe(0);
    expect((await readAudio(join(tmp.dir, 'out11/noisy/speech.wav'))).channels).toHaveLength(1);
  }, 60_000);
});
