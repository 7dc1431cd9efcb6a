/**
 * Honest results from dishonest audio: NaN/Inf in an input (native WAV and through ffmpeg) or in a model's
 * output is refused with 65 naming the first bad sample's time, and no stem is written; a truncated or damaged
 * compressed input is a warning and a JSON `integrity` record (65 with --strict), while complete files of every
 * codec stay quiet (the tolerance covers encoder padding).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNonFinite, truncationTolerance } from '../../src/audio/guard.js';
import { mdxModel, mdxSidecar } from '../helpers/separate-models.js';
import { sines, tempDir, writeWav } from '../helpers/separate-fixtures.js';
import { HAS_FFMPEG } from '../helpers/audio-fixtures.js';
import { runCli } from '../helpers/cli-run.js';

const tmp = tempDir('stemkit-integrity-');
const env = { HOME: tmp.dir, NO_COLOR: '1', STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'), STEMKIT_CACHE_DIR: join(tmp.dir, 'cache') };
const A = (name: string): string => join(tmp.dir, name);
const ident = A('ident.onnx');
const SIDE = { compensate: 1.0, mdx_dim_f_set: 1024, mdx_dim_t_set: 5, mdx_n_fft_scale_set: 2048, primary_stem: 'Vocals' };
const sep = (args: string[], model = ident) => runCli(['separate', '--model', model, '--json', ...args], { env, cwd: tmp.dir });
const fileRecord = (r: Awaited<ReturnType<typeof sep>>) => r.json().find((x) => x['type'] === 'file')!;
const outFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.wav')) : []);

/** A float WAV (32 or 64 bit, interleaved) written byte by byte, so NaN and Inf payloads stay as they are. */
function floatWav(path: string, channels: Float64Array[], rate: number, bits: 32 | 64): void {
  const n = channels[0]!.length;
  const C = channels.length;
  const bps = bits / 8;
  const data = Buffer.alloc(n * C * bps);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) {
      const off = (i * C + c) * bps;
      if (bits === 32) data.writeFloatLE(channels[c]![i]!, off);
      else data.writeDoubleLE(channels[c]![i]!, off);
    }
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(3, 20);
  h.writeUInt16LE(C, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * C * bps, 28);
  h.writeUInt16LE(C * bps, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([h, data]));
}

function tone(n: number, rate: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / rate);
  return x;
}

beforeAll(async () => {
  mdxModel(ident, 1024, 32, 1);
  mdxSidecar(ident, SIDE);
  await writeWav(A('ok.wav'), sines(88200, 44100, 2, [440, 1200]), 16);
});
afterAll(() => tmp.cleanup());

describe('findNonFinite', () => {
  it('finds the earliest bad frame over all channels, and nothing in finite audio', () => {
    const a = new Float32Array([0, 1, 2, NaN, 4]);
    const b = new Float32Array([0, Infinity, 2, 3, 4]);
    expect(findNonFinite([a, b])).toEqual({ channel: 1, index: 1, value: Infinity });
    expect(findNonFinite([a])).toMatchObject({ channel: 0, index: 3 });
    expect(findNonFinite([new Float32Array([-3.4e38, 3.4e38, 0, -0])])).toBeUndefined();
  });
});

describe('non-finite input → 65 naming the first bad sample, nothing written', () => {
  const cases = [
    { name: 'nan32', bits: 32 as const, rate: 44100, ch: 1, at: 22050, value: NaN, text: 'NaN) at 0.500 s (frame 22050, channel 2)' },
    { name: 'inf64', bits: 64 as const, rate: 48000, ch: 0, at: 96000, value: Infinity, text: '+Inf) at 2.000 s (frame 96000, channel 1)' },
    { name: 'neginf-first', bits: 32 as const, rate: 22050, ch: 0, at: 0, value: -Infinity, text: '-Inf) at 0.000 s (frame 0, channel 1)' },
    // Far beyond the first read block (65536 frames): the time is counted across blocks.
    { name: 'nan-late', bits: 32 as const, rate: 44100, ch: 1, at: 200_000, value: NaN, text: 'NaN) at 4.535 s (frame 200000, channel 2)' },
  ];
  for (const c of cases) {
    it(`${c.name}.wav`, async () => {
      const chans = [tone(c.rate * 5, c.rate), tone(c.rate * 5, c.rate)];
      chans[c.ch]![c.at] = c.value;
      floatWav(A(`${c.name}.wav`), chans, c.rate, c.bits);
      const r = await sep([A(`${c.name}.wav`), '-o', A(`out-${c.name}`)]);
      expect(r.code).toBe(65);
      const rec = fileRecord(r);
      expect(rec['status']).toBe('failed');
      expect((rec['error'] as { code: string; message: string }).code).toBe('E_NONFINITE');
      expect((rec['error'] as { message: string }).message).toContain(`${A(`${c.name}.wav`)}: non-finite sample (${c.text}`);
      expect(outFiles(A(`out-${c.name}`))).toEqual([]);
    });
  }

  it.skipIf(!HAS_FFMPEG)('through ffmpeg too (a float .w64 holding a NaN)', async () => {
    const chans = [tone(44100, 44100), tone(44100, 44100)];
    chans[0]![11025] = NaN;
    floatWav(A('src-nan.wav'), chans, 44100, 32);
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', A('src-nan.wav'), '-c:a', 'pcm_f32le', A('nan.w64')]);
    const r = await sep([A('nan.w64'), '-o', A('out-w64')]);
    expect(r.code).toBe(65);
    expect((fileRecord(r)['error'] as { message: string }).message).toContain('non-finite sample (NaN) at 0.250 s (frame 11025, channel 1)');
  });
});

describe('non-finite model output → 65 (E_MODEL_NONFINITE), never a silent stem written as success', () => {
  for (const [name, gain] of [['nan', NaN], ['inf', Infinity]] as const) {
    it(`a model multiplying by ${gain}`, async () => {
      const model = A(`${name}-model.onnx`);
      mdxModel(model, 1024, 32, gain);
      mdxSidecar(model, SIDE);
      const r = await sep([A('ok.wav'), '-o', A(`out-m${name}`)], model);
      expect(r.code).toBe(65);
      const err = fileRecord(r)['error'] as { code: string; message: string };
      expect(err.code).toBe('E_MODEL_NONFINITE');
      expect(err.message).toMatch(new RegExp(`model ${name}-model produced a broken (vocals|instrumental) stem for .*ok\\.wav: non-finite sample \\((NaN|[+-]Inf)\\) at 0\\.000 s`));
      expect(outFiles(A(`out-m${name}`))).toEqual([]);
    });
  }
});

describe.skipIf(!HAS_FFMPEG)('truncated and damaged compressed inputs', () => {
  const encode = (src: string, out: string, extra: string[] = []): void => {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', src, ...extra, out]);
  };
  beforeAll(() => {
    encode(A('ok.wav'), A('full.flac'));
    encode(A('ok.wav'), A('full.mp3'));
    encode(A('ok.wav'), A('full.mp4'), ['-c:a', 'aac', '-movflags', '+faststart']);
    encode(A('ok.wav'), A('full.opus'));
    encode(A('ok.wav'), A('full.m4a'));
    encode(A('ok.wav'), A('full.ogg'));
    for (const ext of ['flac', 'mp3', 'mp4']) {
      const b = readFileSync(A(`full.${ext}`));
      writeFileSync(A(`cut.${ext}`), b.subarray(0, Math.floor(b.length * 0.3)));
    }
  });

  it('complete files of every codec: no warning, no integrity record (the tolerance covers padding)', async () => {
    for (const ext of ['flac', 'mp3', 'mp4', 'opus', 'm4a', 'ogg']) {
      const r = await sep([A(`full.${ext}`), '-o', A('out-full'), '--force']);
      expect(r.code, ext).toBe(0);
      expect(fileRecord(r)['integrity'], ext).toBeUndefined();
      expect(r.stderr, ext).not.toMatch(/truncated|decoder reported/);
    }
  });

  for (const ext of ['flac', 'mp3', 'mp4']) {
    it(`cut.${ext} (30 % of the file): separated with a warning and an integrity record; --strict → 65, nothing written`, async () => {
      const r = await sep([A(`cut.${ext}`), '-o', A(`out-cut-${ext}`)]);
      expect(r.code).toBe(0);
      const rec = fileRecord(r);
      const integ = rec['integrity'] as { declaredSec: number; decodedSec: number; truncated: boolean };
      expect(integ.truncated).toBe(true);
      // 2 s declared (the MP3's Xing header says 2.04), well under 1.2 s decoded.
      expect(integ.declaredSec).toBeGreaterThanOrEqual(2);
      expect(integ.declaredSec).toBeLessThan(2.1);
      expect(integ.decodedSec).toBeLessThan(1.2);
      expect(r.stderr).toMatch(/truncated: the container declares 2\.\d\d s but only \d\.\d\d s decode \(\d+ %\); separated what decodes/);
      const strict = await sep([A(`cut.${ext}`), '-o', A(`out-strict-${ext}`), '--strict']);
      expect(strict.code).toBe(65);
      expect((fileRecord(strict)['error'] as { code: string }).code).toMatch(/E_TRUNCATED|E_DECODE_ERRORS/);
      expect(outFiles(A(`out-strict-${ext}`))).toEqual([]);
    });
  }

  it('bit flips inside a FLAC: the decoder’s errors become a warning (65 with --strict)', async () => {
    const b = Buffer.from(readFileSync(A('full.flac')));
    for (let i = Math.floor(b.length * 0.4); i < Math.floor(b.length * 0.4) + 64; i++) b[i] = b[i]! ^ 0x5a;
    writeFileSync(A('flipped.flac'), b);
    const r = await sep([A('flipped.flac'), '-o', A('out-flip')]);
    expect(r.code).toBe(0);
    expect((fileRecord(r)['integrity'] as { decoderErrors: number }).decoderErrors).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/the decoder reported \d+ errors? \(damaged data/);
    const strict = await sep([A('flipped.flac'), '-o', A('out-flip2'), '--strict']);
    expect(strict.code).toBe(65);
    expect(outFiles(A('out-flip2'))).toEqual([]);
  });

  it('the tolerance is 0.1 s plus 0.5 % of the declared length', () => {
    expect(truncationTolerance(44100 * 180, 44100)).toBe(Math.round(4410 + 0.005 * 44100 * 180));
    expect(statSync(A('cut.mp3')).size).toBeGreaterThan(0);
  });
});
