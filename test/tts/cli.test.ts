import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildKokoroModel, buildPiperModel, decodeKokoro, decodePiper, npz, piperConfig, rawVoice, voiceTable } from '../helpers/tts-fixtures.js';
import { runTtsCli } from '../helpers/tts-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'stemkit-tts-cli-'));
const env = { STEMKIT_RUNTIME_DIR: join(dir, 'run'), STEMKIT_CACHE_DIR: join(dir, 'cache') };
const kokoro = join(dir, 'kokoro-v1.0.onnx');
const voices = join(dir, 'voices-v1.0.bin');
const piper = join(dir, 'en_US-test-medium.onnx');
const piperMulti = join(dir, 'en_US-multi-medium.onnx');

/** Float samples of a WAV file, read with wavefile (independent of stemkit's writer). */
function readWav(path: string): { rate: number; bits: string; samples: Float32Array } {
  const w = new wavefile.WaveFile(readFileSync(path));
  const fmt = w.fmt as { sampleRate: number; numChannels: number };
  expect(fmt.numChannels).toBe(1);
  return { rate: fmt.sampleRate, bits: w.bitDepth, samples: Float32Array.from(w.getSamples(false, Float64Array) as unknown as Float64Array) };
}

beforeAll(() => {
  writeFileSync(kokoro, buildKokoroModel({ ids: 'tokens', speed: 'float32' }));
  writeFileSync(voices, npz({ af_heart: voiceTable(0), bf_emma: voiceTable(100) }, 6));
  writeFileSync(piper, buildPiperModel({ multiSpeaker: false }));
  writeFileSync(`${piper}.json`, JSON.stringify(piperConfig({ multiSpeaker: false })));
  writeFileSync(piperMulti, buildPiperModel({ multiSpeaker: true }));
  writeFileSync(`${piperMulti}.json`, JSON.stringify(piperConfig({ multiSpeaker: true })));
});

describe('stemkit tts (Kokoro-contract model on disk)', () => {
  it('writes a WAV whose samples decode to the ids, style row and speed fed; prints timing', async () => {
    const out = join(dir, 'hello.wav');
    const r = await runTtsCli(['Hello world.', '-m', kokoro, '--voices', voices, '--voice', 'bf_emma', '--speed', '1.5', '-o', out, '--bits', '32'], env);
    expect(r.stderr).not.toMatch(/stemkit:/);
    expect(r.code).toBe(0);
    const wav = readWav(out);
    expect(wav.rate).toBe(24000);
    expect(wav.bits).toBe('32f');
    const [call] = decodeKokoro(wav.samples);
    // bf_ voices are British (espeak `en`): "həlˈəʊ wˈɜːld." — h ə l ˈ ə ʊ ␠ w ˈ ɜ ː l d .
    expect(call!.ids).toEqual([0, 50, 83, 54, 156, 83, 135, 16, 65, 156, 87, 158, 54, 46, 4, 0]);
    expect(call!.style[0]).toBe(100 + 13); // bf_emma row 13 (14 tokens → n − 1)
    expect(call!.speed).toBe(1.5);
    expect(r.stdout.toString()).toMatch(/^.*hello\.wav: 0\.\d\d s of audio, 1 sentence, 12 chars · load \d+\.\d\ds · phonemize \d+\.\d\ds · infer \d+\.\d\ds · write \d+\.\d\ds · \d+ chars\/s · RTF \d+\.\d{3} \(cpu, 1 threads\)\n$/);
  });

  it('--json: one result record with per-phase times, chars/s and RTF', async () => {
    const out = join(dir, 'json.flac');
    const r = await runTtsCli(['Hello world. Bye.', '-m', kokoro, '--voices', voices, '-o', out, '--json'], env);
    expect(r.code).toBe(0);
    const rec = r.json().find((j) => j['type'] === 'tts')!;
    expect(rec).toMatchObject({ status: 'ok', output: out, sentences: 2, characters: 17, sampleRate: 24000, provider: 'cpu', calls: 2 });
    const times = rec['times'] as Record<string, number>;
    for (const k of ['load', 'phonemize', 'infer', 'write', 'total']) expect(typeof times[k]).toBe('number');
    expect(rec['rtf']).toBeCloseTo(times['total']! / (rec['durationSec'] as number), 6);
    expect(existsSync(out)).toBe(true);
  });

  it('--list-voices lists the voices file', async () => {
    const r = await runTtsCli(['--list-voices', '-m', kokoro, '--voices', voices], env);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(`Voices of ${kokoro} (2):\naf_heart\nbf_emma\n`);
  });

  it('reads the text from a file, and a folder of raw .bin voices', async () => {
    const folder = join(dir, 'voices');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'af_sky.bin'), rawVoice(voiceTable(50)));
    writeFileSync(join(dir, 'text.txt'), 'Hello world.\n');
    const out = join(dir, 'file.wav');
    const r = await runTtsCli(['-f', join(dir, 'text.txt'), '-m', kokoro, '--voices', folder, '--voice', 'af_sky', '-o', out, '--bits', '32'], env);
    expect(r.code).toBe(0);
    expect(decodeKokoro(readWav(out).samples)[0]!.style[0]).toBe(50 + 13);
  });

  it('bad inputs get clear errors and exit codes', async () => {
    const out = join(dir, 'bad.wav');
    const cases: Array<{ args: string[]; code: number; msg: RegExp }> = [
      { args: ['-m', kokoro, '--voices', voices, '-o', out], code: 64, msg: /no text given/ },
      { args: ['   ', '-m', kokoro, '--voices', voices, '-o', out], code: 65, msg: /the text is empty/ },
      { args: ['Hi.', '-m', kokoro, '--voices', voices], code: 64, msg: /no output given/ },
      { args: ['Hi.', '-m', kokoro, '--voices', voices, '-o', out, '--stdout'], code: 64, msg: /not both/ },
      { args: ['Hi.', '-m', kokoro, '--voices', voices, '--voice', 'zz_top', '-o', out], code: 64, msg: /unknown voice "zz_top"\nhint: valid voices in .*voices-v1\.0\.bin: af_heart, bf_emma/ },
      { args: ['… —', '-m', kokoro, '--voices', voices, '-o', out], code: 65, msg: /nothing this voice can speak/ },
      { args: ['Hi.', '-m', kokoro, '-o', out], code: 64, msg: /needs voices\nhint: Pass --voices/ },
      { args: ['Hi.', '-m', kokoro, '--voices', voices, '--speed', '3', '-o', out], code: 64, msg: /between 0\.5 and 2/ },
      { args: ['Hi.', '-f', join(dir, 'nope.txt'), '-o', out], code: 64, msg: /not both/ },
      { args: ['-f', join(dir, 'nope.txt'), '-m', kokoro, '--voices', voices, '-o', out], code: 66, msg: /text file not found/ },
    ];
    for (const c of cases) {
      const r = await runTtsCli(c.args, env);
      expect({ args: c.args, code: r.code }).toEqual({ args: c.args, code: c.code });
      expect(r.stderr).toMatch(c.msg);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('a voices file of the wrong shape is exit 65', async () => {
    const wrong = join(dir, 'wrong.npz');
    writeFileSync(wrong, npz({ af_heart: new Float32Array(100 * 256) }, 0, [100, 1, 256]));
    const r = await runTtsCli(['Hi.', '-m', kokoro, '--voices', wrong, '-o', join(dir, 'w.wav')], env);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/shape \(100, 1, 256\); a Kokoro voice must be float32 \[510, 1, 256\]/);
  });
});

describe('stemkit tts (Piper-contract voice on disk)', () => {
  it('writes the voice sample rate and streams raw PCM or WAV to stdout', async () => {
    const out = join(dir, 'piper.wav');
    const f = await runTtsCli(['Bye! Bye.', '-m', piper, '-o', out, '--bits', '32'], env);
    expect(f.code).toBe(0);
    const wav = readWav(out);
    expect(wav.rate).toBe(22050);
    // Two sentences: 256 fixture zeros, then (second sentence) 0.2 s = 4410 zeros of sentence silence.
    const call = decodePiper(wav.samples, false);
    expect(call.ids.slice(0, 2)).toEqual([1, 0]);
    const raw = await runTtsCli(['Bye! Bye.', '-m', piper, '--stdout'], env);
    expect(raw.code).toBe(0);
    expect(raw.stdout.length).toBe(wav.samples.length * 2); // 16-bit mono, same samples as the file
    expect(raw.stdout.readInt16LE(256 * 2)).toBe(32767); // the peak-normalised marker at full scale
    const w = await runTtsCli(['Bye! Bye.', '-m', piper, '--stdout', '--stdout-format', 'wav'], env);
    expect(w.code).toBe(0);
    expect(w.stdout.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(w.stdout.readUInt32LE(4)).toBe(0xffffffff); // unknown length: maximum sizes
    expect(w.stdout.readUInt32LE(24)).toBe(22050);
    expect(w.stdout.readUInt16LE(34)).toBe(16);
    expect(w.stdout.length).toBe(44 + wav.samples.length * 2);
  });

  it('multi-speaker: --speaker by name reaches sid; unknown speaker lists the valid ones; --list-voices', async () => {
    const out = join(dir, 'multi.wav');
    const r = await runTtsCli(['Bye!', '-m', piperMulti, '--speaker', 'carol', '--noise-scale', '0.5', '-o', out, '--bits', '32'], env);
    expect(r.code).toBe(0);
    const call = decodePiper(readWav(out).samples, true);
    expect(call.sid).toBe(2);
    expect(call.scales[0]).toBeCloseTo(0.5, 3); // float rounding through the fixture's encoding < 2e-4
    const ignored = await runTtsCli(['Bye!', '-m', piperMulti, '--voice', 'af_heart', '-o', out], env);
    expect(ignored.code).toBe(0);
    expect(ignored.stderr).toContain('warning: --voice does not apply to Piper models; ignored');
    const bad = await runTtsCli(['Bye!', '-m', piperMulti, '--speaker', 'zed', '-o', out], env);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/unknown speaker "zed"\nhint: valid speakers: alice, bob, carol/);
    const list = await runTtsCli(['--list-voices', '-m', piperMulti, '--json'], env);
    expect(list.json()[0]).toMatchObject({ type: 'voices', kind: 'piper', sampleRate: 22050, voices: ['alice', 'bob', 'carol'] });
  });

  it('a Piper model without its .onnx.json is exit 66 naming the file', async () => {
    const lonely = join(dir, 'lonely.onnx');
    writeFileSync(lonely, buildPiperModel({ multiSpeaker: false }));
    const r = await runTtsCli(['Hi.', '-m', lonely, '-o', join(dir, 'l.wav')], env);
    expect(r.code).toBe(66);
    expect(r.stderr).toContain(`Piper voice config not found: ${lonely}.json`);
  });
});

describe('stemkit tts --jsonl', () => {
  it('runs every good line with one model load, reports the bad ones, exits 1', async () => {
    const o = (n: string): string => join(dir, `batch-${n}.wav`);
    writeFileSync(join(dir, 'b.txt'), 'Hello world.');
    const lines = [
      JSON.stringify({ text: 'Hello world.', output: o('1'), voice: 'bf_emma' }),
      JSON.stringify({ file: join(dir, 'b.txt'), output: o('2'), speed: 0.75 }),
      'not json',
      JSON.stringify({ text: 'Hi.', output: o('4'), voice: 'nobody' }),
      JSON.stringify({ text: 'Hi.' }),
      '',
      JSON.stringify({ text: 'Hello world.', output: o('6'), voice: 'af_heart:1,bf_emma:1' }),
    ];
    const jobs = join(dir, 'jobs.jsonl');
    writeFileSync(jobs, lines.join('\n'));
    const r = await runTtsCli(['--jsonl', jobs, '-m', kokoro, '--voices', voices, '--bits', '32', '--json'], env);
    expect(r.code).toBe(1);
    const recs = r.json();
    const results = recs.filter((j) => j['type'] === 'tts');
    expect(results.map((j) => [j['line'], j['status']]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
      [1, 'ok'],
      [2, 'ok'],
      [3, 'failed'],
      [4, 'failed'],
      [5, 'failed'],
      [7, 'ok'],
    ]);
    expect(results.find((j) => j['line'] === 5)!['error']).toMatchObject({ code: 'E_BAD_JOB', exitCode: 65, message: `${jobs}:5: "output" (a file path) is required` });
    expect(recs.find((j) => j['type'] === 'summary')).toMatchObject({ jobs: 6, ok: 3, failed: 3 });
    expect(r.stderr).toMatch(/jobs\.jsonl:3: not valid JSON/);
    expect(r.stderr).toMatch(/line 4 .* failed: unknown voice \\"nobody\\"/); // JSON-escaped: --json renders logs as JSON lines
    expect(decodeKokoro(readWav(o('1')).samples)[0]!.style[0]).toBe(113);
    expect(decodeKokoro(readWav(o('2')).samples)[0]!.speed).toBe(0.75);
    // Equal weights: the mean of af_heart (row 13) and bf_emma (100 + 13); float32 rounding < 1e-3.
    expect(decodeKokoro(readWav(o('6')).samples)[0]!.style[0]).toBeCloseTo(63, 3);
    expect(existsSync(o('4'))).toBe(false);
  });
});

describe.skipIf(!existsSync(join(process.cwd(), 'dist/cli/main.js')))('node bin/stemkit.js tts (built CLI)', () => {
  it('reads stdin with `-` and streams WAV to stdout', () => {
    const r = spawnSync(process.execPath, ['bin/stemkit.js', 'tts', '-', '-m', piper, '--stdout', '--stdout-format', 'wav', '--quiet'], {
      input: 'Bye! Bye.',
      env: { ...process.env, ...env, NO_COLOR: '1' },
      cwd: process.cwd(),
    });
    expect(r.status).toBe(0);
    expect(r.stdout.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(r.stdout.length).toBeGreaterThan(44 + 2 * 4410);
  });
});
