/**
 * The library's TTS jobs without the CLI (src/tts/batch.ts): synthesizeBatch loads the model once, runs the
 * lines under job slots, merges a line's settings over the batch defaults, turns bad lines into failed
 * results, and checks outputs before anything loads; runTtsJob writes the audio and its timing files.
 * Model: the Kokoro contract fixture (its output encodes the ids, style row and speed it was fed).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ResolvedConfig } from '../../src/config/schema.js';
import { parseJobLines } from '../../src/tts/job.js';
import { runTtsJob, synthesizeBatch, type TtsBatchItem } from '../../src/tts/batch.js';
import { loadVoiceModel } from '../../src/tts/synthesize.js';
import { buildKokoroModel, decodeKokoro, npz, voiceTable } from '../helpers/tts-fixtures.js';

let dir: string;
let config: ResolvedConfig;
let model: string;
let voices: string;

function samples(path: string): Float32Array {
  const wav = new wavefile.WaveFile(readFileSync(path));
  expect((wav.fmt as { sampleRate: number }).sampleRate).toBe(24000);
  return Float32Array.from(wav.getSamples(false, Float64Array) as unknown as Float64Array);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stemkit-tts-batch-'));
  mkdirSync(join(dir, 'out'));
  config = resolveConfig({ env: { STEMKIT_RUNTIME_DIR: join(dir, 'run') }, cores: 2, flags: { profile: 'small', device: 'cpu' }, homeDir: dir }).config;
  model = join(dir, 'kokoro-v1.0.onnx');
  voices = join(dir, 'voices-v1.0.bin');
  writeFileSync(model, buildKokoroModel({ ids: 'tokens', speed: 'float32' }));
  writeFileSync(voices, npz({ af_heart: voiceTable(0), bf_emma: voiceTable(100) }, 6));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('synthesizeBatch', () => {
  it('one load for every line; line settings over the defaults; a bad line and a failing line become failed results', async () => {
    writeFileSync(join(dir, 'hello.txt'), 'Hello world.');
    const source = join(dir, 'jobs.jsonl');
    const content = [
      JSON.stringify({ text: 'Hello world.', output: 'out/a.wav', subtitles: 'out/a.srt' }),
      JSON.stringify({ file: 'hello.txt', output: 'out/b.wav', voice: 'af_heart' }),
      '{"text": "no closing brace"',
      JSON.stringify({ text: 'Hello world.', output: 'out/d.wav', speed: 5 }),
    ].join('\n');
    const seen: TtsBatchItem[] = [];
    const r = await synthesizeBatch({
      config,
      model: { spec: model, load: { voices } },
      lines: parseJobLines(content, source),
      source,
      baseDir: dir,
      defaults: { voice: 'bf_emma', speed: 1.25 },
      bits: 32,
      onResult: (item) => seen.push(item),
    });
    expect(r.items.map((i) => [i.line, i.result.status, i.invalid])).toEqual([
      [1, 'ok', false],
      [2, 'ok', false],
      [3, 'failed', true],
      [4, 'failed', false],
    ]);
    expect(seen.map((i) => i.line).sort()).toEqual([1, 2, 3, 4]);
    expect(r.summary).toMatchObject({ files: 4, ok: 2, failed: 2, skipped: 0 });
    expect(r.exitCode).toBe(1);
    // The load is reported once, by the first line.
    expect(r.loadSeconds).toBeGreaterThan(0);
    expect(r.items[0]!.result.times.load).toBe(r.loadSeconds);
    expect(r.items[1]!.result.times.load).toBe(0);
    // Line 1: the default voice (bf_emma, style rows from 100) and speed; line 2: its own voice (af_heart, from 0).
    const [a] = decodeKokoro(samples(join(dir, 'out', 'a.wav')));
    const [b] = decodeKokoro(samples(join(dir, 'out', 'b.wav')));
    // The style row is the token count (less the two pads and one): rows of bf_emma start at 100.
    expect(a!.style[0]).toBe(100 + a!.ids.length - 3);
    expect(b!.style[0]).toBe(0 + b!.ids.length - 3);
    expect([a!.speed, b!.speed]).toEqual([1.25, 1.25]);
    expect(r.items[0]!.result.output).toBe(join(dir, 'out', 'a.wav'));
    // Line 1's subtitles are written next to its audio.
    expect(r.items[0]!.written.subtitles).toEqual({ path: join(dir, 'out', 'a.srt'), format: 'srt', cues: 1 });
    expect(readFileSync(join(dir, 'out', 'a.srt'), 'utf8')).toMatch(/^1\n00:00:00,000 --> 00:00:\d\d,\d{3}\nHello world\.\n/);
    // Line 3 never ran; line 4's error names the option, not a flag.
    expect(r.items[2]!.result.error).toMatchObject({ code: 'E_BAD_JOB', exitCode: 65 });
    expect(r.items[3]!.result.error).toMatchObject({ code: 'E_BAD_OPTION', exitCode: 64, message: 'speed must be between 0.5 and 2 for Kokoro (got 5)' });
    expect(r.items[3]!.error).toMatchObject({ details: { option: 'speed' } });
    expect(existsSync(join(dir, 'out', 'd.wav'))).toBe(false);
  });

  it('refuses lines that write over each other before anything loads', async () => {
    const source = join(dir, 'clash.jsonl');
    const lines = parseJobLines([JSON.stringify({ text: 'A.', output: 'same.wav' }), JSON.stringify({ text: 'B.', output: 'same.wav' })].join('\n'), source);
    // The model does not exist: reaching the load would fail with 66, not 64.
    await expect(synthesizeBatch({ config, model: { spec: join(dir, 'missing.onnx') }, lines, source, baseDir: dir })).rejects.toMatchObject({ exitCode: 64, code: 'E_OUTPUT_COLLISION' });
    expect(existsSync(join(dir, 'same.wav'))).toBe(false);
  });
});

describe('runTtsJob', () => {
  it('writes the audio at the asked rate and the timestamps file; a warm model reports load 0', async () => {
    const tts = await loadVoiceModel(model, { config, voices });
    try {
      const out = join(dir, 'out', 'job.wav');
      const ts = join(dir, 'out', 'job.json');
      const { result, written } = await runTtsJob(tts, { text: 'Hello world. Bye.', output: out, voice: { voice: 'af_heart' }, timing: { timestamps: ts }, outputRate: 16000, bits: 16 }, { config });
      expect(result).toMatchObject({ status: 'ok', output: out, sentences: 2, sampleRate: 16000 });
      expect(result.times.load).toBe(0);
      expect(written).toEqual({ timestamps: ts });
      const doc = JSON.parse(readFileSync(ts, 'utf8')) as { sampleRate: number; sentences: unknown[] };
      expect([doc.sampleRate, doc.sentences.length]).toEqual([16000, 2]);
      const wav = new wavefile.WaveFile(readFileSync(out));
      expect((wav.fmt as { sampleRate: number; bitsPerSample: number }).sampleRate).toBe(16000);
      expect((wav.fmt as { bitsPerSample: number }).bitsPerSample).toBe(16);
    } finally {
      await tts.dispose();
    }
  });
});
