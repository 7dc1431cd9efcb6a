import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioSink, RawAudio } from '../../src/audio/raw-audio.js';
import { createSession } from '../../src/runtime/onnx.js';
import { createStreamSink, parseJobLines, synthesizeToSink, toPcm16, wavHeader } from '../../src/tts/job.js';
import { createKokoroModel, type TtsModel } from '../../src/tts/synthesize.js';
import { npzVoiceStore } from '../../src/tts/voices.js';
import { buildKokoroModel, npz, voiceTable } from '../helpers/tts-fixtures.js';

function memorySink(): AudioSink & { blocks: RawAudio[]; finished: boolean; aborted: boolean } {
  const s = {
    path: 'mem.wav',
    blocks: [] as RawAudio[],
    finished: false,
    aborted: false,
    async write(b: RawAudio) {
      s.blocks.push(b);
    },
    async finish() {
      s.finished = true;
    },
    async abort() {
      s.aborted = true;
    },
  };
  return s;
}

describe('synthesizeToSink', () => {
  let model: TtsModel;
  beforeAll(async () => {
    const session = await createSession(buildKokoroModel({ ids: 'tokens', speed: 'float32' }), { device: 'cpu', threads: 1 });
    model = createKokoroModel(session, await npzVoiceStore(npz({ af_heart: voiceTable(0) }, 0), 'v.npz'), { id: 'k', loadSeconds: 0.5 });
  });
  afterAll(async () => model.dispose());

  it('writes every sentence, finishes the sink and reports duration, chars/s and RTF', async () => {
    const sink = memorySink();
    const r = await synthesizeToSink(model, 'Hello world. Hello world.', sink, { loadSeconds: 0.5 });
    expect(sink.blocks.length).toBe(2);
    expect(sink.finished).toBe(true);
    const samples = sink.blocks.reduce((a, b) => a + b.channels[0]!.length, 0);
    expect(r).toMatchObject({ status: 'ok', output: 'mem.wav', sentences: 2, characters: 25, sampleRate: 24000, durationSec: samples / 24000 });
    expect(r.times.load).toBe(0.5);
    expect(r.rtf).toBeCloseTo(r.times.total / r.durationSec, 9);
    expect(r.charsPerSec).toBeCloseTo(25 / r.times.total, 9);
  });

  it('aborts the sink on failure and on interruption (exit 130)', async () => {
    const bad = memorySink();
    await expect(synthesizeToSink(model, 'Hi.', bad, { voice: 'nobody' })).rejects.toMatchObject({ exitCode: 64 });
    expect([bad.aborted, bad.finished]).toEqual([true, false]);
    const ac = new AbortController();
    ac.abort();
    const cut = memorySink();
    await expect(synthesizeToSink(model, 'Hello world. Hello world.', cut, { signal: ac.signal })).rejects.toMatchObject({ exitCode: 130 });
    expect(cut.aborted).toBe(true);
  });
});

describe('stream sink (stdout)', () => {
  it('writes a WAV header with maximum sizes, then 16-bit PCM per block', async () => {
    const chunks: Buffer[] = [];
    const w = new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(Buffer.from(c));
        cb();
      },
    });
    const sink = createStreamSink(w, { format: 'wav', sampleRate: 24000, channels: 1 });
    await sink.write({ channels: [Float32Array.from([0.5, -1, 2])], sampleRate: 24000 });
    await sink.finish();
    const out = Buffer.concat(chunks);
    expect(out.length).toBe(44 + 6);
    expect(out.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(out.readUInt32LE(4)).toBe(0xffffffff);
    expect(out.readUInt32LE(40)).toBe(0xffffffff - 36);
    // ×32768 with clamping: 0.5 → 16384, −1 → −32768, 2 → 32767.
    expect([out.readInt16LE(44), out.readInt16LE(46), out.readInt16LE(48)]).toEqual([16384, -32768, 32767]);
    expect(Buffer.from(wavHeader(16000, 1, 10)).readUInt32LE(40)).toBe(20);
    expect(Array.from(new Int16Array(toPcm16({ channels: [Float32Array.from([0.25])], sampleRate: 1 }).buffer))).toEqual([8192]);
  });

  it('a reader that closes the pipe is exit 73, not a crash', async () => {
    const w = new Writable({
      write(_c, _e, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const sink = createStreamSink(w, { format: 'raw', sampleRate: 24000, channels: 1 });
    const block = { channels: [new Float32Array(100_000)], sampleRate: 24000 };
    let err: unknown;
    try {
      for (let i = 0; i < 5; i++) await sink.write(block);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ exitCode: 73, message: 'the program reading stdout closed the pipe' });
  });
});

describe('parseJobLines', () => {
  it('parses good lines and turns bad ones into failed entries with line numbers', () => {
    const lines = [
      '{"text": "a", "output": "a.wav", "voice": "af_heart", "speed": 1.2}',
      '',
      '{"file": "b.txt", "output": "b.mp3", "speaker": 3}',
      '{"text": "c", "file": "c.txt", "output": "c.wav"}',
      '{"text": "d", "output": "d.wav", "speed": "fast"}',
      '{"text": "e", "output": "e.wav", "colour": "red"}',
      '[1, 2]',
    ].join('\n');
    const r = parseJobLines(lines, 'jobs.jsonl');
    expect(r.filter((x) => x.ok).map((x) => (x.ok ? x.job : null))).toEqual([
      { line: 1, text: 'a', output: 'a.wav', voice: 'af_heart', speed: 1.2 },
      { line: 3, file: 'b.txt', output: 'b.mp3', speaker: 3 },
    ]);
    expect(r.filter((x) => !x.ok).map((x) => (x.ok ? '' : x.error.message))).toEqual([
      'jobs.jsonl:4: give exactly one of "text" or "file"',
      'jobs.jsonl:5: "speed" must be a number',
      'jobs.jsonl:6: unknown key(s) colour',
      'jobs.jsonl:7: expected a JSON object',
    ]);
  });
});
