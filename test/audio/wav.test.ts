import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAll } from '../../src/audio/open.js';
import { createWavSink, encodeInterleaved, openWavSource, parseWavHeader } from '../../src/audio/wav.js';
import { buildWav, makeTempDir, patternBytes, sine } from '../helpers/audio-fixtures.js';

const tmp = makeTempDir('stemkit-wav-');
afterAll(() => tmp.cleanup());
let n = 0;
const file = (bytes: Uint8Array): string => {
  const p = join(tmp.dir, `f${++n}.wav`);
  writeFileSync(p, bytes);
  return p;
};

/** Samples [-1, -0.5, 0, 0.5, max] encoded per format, and the float values expected back (exact). */
const cases: Array<{ name: string; tag: number; bits: number; enc: (v: number[]) => Buffer; expect: number[]; sub?: number }> = [
  { name: 'u8', tag: 1, bits: 8, enc: () => Buffer.from([0, 64, 128, 192, 255]), expect: [-1, -0.5, 0, 0.5, 127 / 128] },
  {
    name: 's16', tag: 1, bits: 16,
    enc: () => { const b = Buffer.alloc(10); [-32768, -16384, 0, 16384, 32767].forEach((v, i) => b.writeInt16LE(v, i * 2)); return b; },
    expect: [-1, -0.5, 0, 0.5, 32767 / 32768],
  },
  {
    name: 's24', tag: 1, bits: 24,
    enc: () => { const b = Buffer.alloc(15); [-8388608, -4194304, 0, 4194304, 8388607].forEach((v, i) => b.writeIntLE(v, i * 3, 3)); return b; },
    expect: [-1, -0.5, 0, 0.5, 8388607 / 8388608],
  },
  {
    name: 's32', tag: 1, bits: 32,
    enc: () => { const b = Buffer.alloc(20); [-2147483648, -1073741824, 0, 1073741824, 2147483647].forEach((v, i) => b.writeInt32LE(v, i * 4)); return b; },
    expect: [-1, -0.5, 0, 0.5, Math.fround(2147483647 / 2147483648)],
  },
  {
    name: 'f32', tag: 3, bits: 32,
    enc: () => { const b = Buffer.alloc(20); [-1, -0.5, 0, 0.5, 1.5].forEach((v, i) => b.writeFloatLE(v, i * 4)); return b; },
    expect: [-1, -0.5, 0, 0.5, 1.5],
  },
  {
    name: 'f64', tag: 3, bits: 64,
    enc: () => { const b = Buffer.alloc(40); [-1, -0.5, 0, 0.5, 0.1].forEach((v, i) => b.writeDoubleLE(v, i * 8)); return b; },
    expect: [-1, -0.5, 0, 0.5, Math.fround(0.1)],
  },
  {
    name: 'extensible s24', tag: 0xfffe, sub: 1, bits: 24,
    enc: () => { const b = Buffer.alloc(15); [-8388608, -4194304, 0, 4194304, 8388607].forEach((v, i) => b.writeIntLE(v, i * 3, 3)); return b; },
    expect: [-1, -0.5, 0, 0.5, 8388607 / 8388608],
  },
  {
    name: 'extensible f32', tag: 0xfffe, sub: 3, bits: 32,
    enc: () => { const b = Buffer.alloc(20); [-1, -0.5, 0, 0.5, 0.25].forEach((v, i) => b.writeFloatLE(v, i * 4)); return b; },
    expect: [-1, -0.5, 0, 0.5, 0.25],
  },
];

describe('WAV reader: sample formats', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s decodes to the exact expected floats', async (_name, c) => {
    const p = file(buildWav({ formatTag: c.tag, ...(c.sub ? { subFormat: c.sub } : {}), channels: 1, sampleRate: 44100, bits: c.bits }, c.enc([])));
    const src = await openWavSource(p);
    expect(src.info).toMatchObject({ sampleRate: 44100, channels: 1, frames: 5, isVideo: false });
    const audio = await readAll(src);
    expect(Array.from(audio.channels[0]!)).toEqual(c.expect);
  });

  it('reports the codec in info.format', async () => {
    const p = file(buildWav({ formatTag: 3, channels: 1, sampleRate: 8000, bits: 64 }, new Uint8Array(16)));
    const src = await openWavSource(p);
    expect(src.info.format).toBe('wav pcm_f64le');
    await src.close();
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('%i channels de-interleave in order', async (ch) => {
    // Frame i, channel c holds the 16-bit value 100·c + i.
    const frames = 37;
    const b = Buffer.alloc(frames * ch * 2);
    for (let i = 0; i < frames; i++) for (let c = 0; c < ch; c++) b.writeInt16LE(100 * c + i, (i * ch + c) * 2);
    const src = await openWavSource(file(buildWav({ formatTag: 1, channels: ch, sampleRate: 48000, bits: 16 }, b)));
    const audio = await readAll(src);
    expect(audio.channels).toHaveLength(ch);
    for (let c = 0; c < ch; c++) expect(audio.channels[c]![frames - 1]).toBe((100 * c + frames - 1) / 32768);
  });

  it.each([8000, 11025, 22050, 44100, 48000, 96000, 192000, 384000])('sample rate %i Hz is accepted', async (rate) => {
    const src = await openWavSource(file(buildWav({ formatTag: 1, channels: 1, sampleRate: rate, bits: 16 }, new Uint8Array(20))));
    expect(src.info.sampleRate).toBe(rate);
    await src.close();
  });

  it('skips unknown chunks, and accepts fmt after data when the data size is real', async () => {
    const data = patternBytes(5, 64);
    const a = await readAll(await openWavSource(file(buildWav({ formatTag: 1, channels: 2, sampleRate: 8000, bits: 16, extraChunks: [{ id: 'LIST', body: new Uint8Array(13) }, { id: 'bext', body: new Uint8Array(602) }] }, data))));
    const b = await readAll(await openWavSource(file(buildWav({ formatTag: 1, channels: 2, sampleRate: 8000, bits: 16, dataBeforeFmt: true }, data))));
    expect(a.channels[0]!.length).toBe(16);
    expect(b.channels).toEqual(a.channels);
  });

  it.each([0, 0xffffffff])('data size field %i (streaming writer) reads to end of file', async (field) => {
    const p = file(buildWav({ formatTag: 1, channels: 2, sampleRate: 8000, bits: 16, dataSizeField: field }, patternBytes(6, 402)));
    const fh = await open(p, 'r');
    const h = await parseWavHeader(fh, (await fh.stat()).size, p);
    await fh.close();
    // 402 bytes = 100 whole frames + 2 stray bytes, which are ignored.
    expect(h).toMatchObject({ frames: 100, dataBytes: 400, sizeFromFileLength: true });
  });

  it('RF64 with a ds64 data size is read', async () => {
    const data = patternBytes(7, 80);
    const p = file(buildWav({ riff: 'RF64', formatTag: 1, channels: 2, sampleRate: 8000, bits: 16, ds64DataSize: 40, dataSizeField: 0xffffffff }, data));
    const src = await openWavSource(p);
    expect(src.info.frames).toBe(10);
    expect((src as Awaited<ReturnType<typeof openWavSource>>).header.container).toBe('RF64');
    await src.close();
  });

  it('reads in blocks of any size with the same result', async () => {
    const data = patternBytes(8, 3 * 2 * 1001);
    const p = file(buildWav({ formatTag: 1, channels: 2, sampleRate: 44100, bits: 24 }, data));
    const whole = await readAll(await openWavSource(p));
    const src = await openWavSource(p);
    const parts: number[] = [];
    let off = 0;
    for (let b = await src.read(97); b !== null; b = await src.read(97)) {
      parts.push(b.channels[0]!.length);
      expect(b.channels[1]).toEqual(whole.channels[1]!.subarray(off, off + b.channels[0]!.length));
      off += b.channels[0]!.length;
    }
    await src.close();
    expect(off).toBe(1001);
    expect(parts.at(-1)).toBe(1001 % 97);
  });
});

describe('WAV writer', () => {
  it.each([16, 24] as const)('%i-bit read → write is bit-exact (every byte of the data chunk)', async (bits) => {
    const data = patternBytes(bits, 2 * (bits / 8) * 5000); // random bytes cover the extreme codes, -2^(b-1) included
    const input = file(buildWav({ formatTag: 1, channels: 2, sampleRate: 44100, bits }, data));
    const src = await openWavSource(input);
    const out = join(tmp.dir, `rt${bits}.wav`);
    const sink = await createWavSink(out, { sampleRate: 44100, channels: 2, bits });
    for (let b = await src.read(333); b !== null; b = await src.read(333)) await sink.write(b);
    await src.close();
    await sink.finish();
    const back = await openWavSource(out);
    const written = readFileSync(out).subarray(back.header.dataOffset, back.header.dataOffset + back.header.dataBytes);
    await back.close();
    expect(Buffer.compare(written, data)).toBe(0);
  });

  it('float32 write → read is exact, including values beyond ±1', async () => {
    const ch = sine(1000, 48000, 999, 2, 1.7);
    const out = join(tmp.dir, 'f32.wav');
    const sink = await createWavSink(out, { sampleRate: 48000, channels: 2, bits: 32 });
    await sink.write({ channels: ch, sampleRate: 48000 });
    await sink.finish();
    const a = await readAll(await openWavSource(out));
    expect(a.channels).toEqual(ch);
  });

  it('16-bit write clamps and rounds: +1 → 32767, -1 → -32768, NaN → 0, 0.5/32768 → 1 (round half up)', async () => {
    const out = join(tmp.dir, 'clamp.wav');
    const sink = await createWavSink(out, { sampleRate: 8000, channels: 1, bits: 16 });
    await sink.write({ channels: [Float32Array.from([1, -1, 2, -2, NaN, 0.5 / 32768, -1.5 / 32768])], sampleRate: 8000 });
    await sink.finish();
    const b = readFileSync(out);
    const off = b.length - 14;
    expect(Array.from({ length: 7 }, (_, i) => b.readInt16LE(off + i * 2))).toEqual([32767, -32768, 32767, -32768, 0, 1, -1]);
  });

  it.each([16, 24] as const)('%i-bit encoding is Math.round(x·2^(b−1)) clamped, for every float32 tie and its neighbours', (bits) => {
    const scale = 2 ** (bits - 1);
    // Ties (k + ½)/scale, one float32 step either side, random values, tiny ones that round to ±0, the clamps.
    const xs: number[] = [0, -0, 1e-45, -1e-45, 1e-30, -1e-30, 1, -1, 1.5, -1.5, 32767.5 / 32768, -32768.5 / 32768];
    const f = new Float32Array(1);
    const up = (x: number, d: number): number => {
      f[0] = x;
      const u = new Int32Array(f.buffer);
      u[0]! += x >= 0 ? d : -d;
      return f[0]!;
    };
    for (let k = -scale; k < scale; k += bits === 16 ? 1 : 257) {
      const t = Math.fround((k + 0.5) / scale);
      xs.push(t, up(t, 1), up(t, -1));
    }
    let seed = 7;
    for (let i = 0; i < 20000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      xs.push((seed / 2 ** 32) * 2.2 - 1.1);
    }
    const x = Float32Array.from(xs);
    const bytes = encodeInterleaved([x], bits, x.length);
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    let bad = 0;
    for (let i = 0; i < x.length; i++) {
      const want = Math.max(-scale, Math.min(scale - 1, Math.round(x[i]! * scale)));
      const got = bits === 16 ? b.readInt16LE(i * 2) : b.readIntLE(i * 3, 3);
      if (got !== want) bad++;
    }
    expect(x.length).toBeGreaterThan(bits === 16 ? 200000 : 100000);
    expect(bad).toBe(0);
  });

  it('writes a standard header (RIFF, JUNK reserve, fmt, data) that ffprobe-free readers parse', async () => {
    const out = join(tmp.dir, 'hdr.wav');
    const sink = await createWavSink(out, { sampleRate: 22050, channels: 1, bits: 24 });
    await sink.write({ channels: [new Float32Array(3)], sampleRate: 22050 }); // 9 data bytes: odd, so one pad byte
    await sink.finish();
    const b = readFileSync(out);
    expect(b.toString('latin1', 0, 4)).toBe('RIFF');
    expect(b.readUInt32LE(4)).toBe(b.length - 8);
    expect(b.toString('latin1', 12, 16)).toBe('JUNK');
    expect(b.toString('latin1', 48, 52)).toBe('fmt ');
    expect(b.readUInt16LE(56)).toBe(1); // PCM
    expect(b.readUInt16LE(70)).toBe(24);
    expect(b.toString('latin1', 72, 76)).toBe('data');
    expect(b.readUInt32LE(76)).toBe(9);
    expect(b.length).toBe(80 + 9 + 1);
  });

  it('switches to RF64 when the size passes the limit (limit lowered for the test)', async () => {
    const out = join(tmp.dir, 'rf64.wav');
    const sink = await createWavSink(out, { sampleRate: 8000, channels: 2, bits: 16, rf64Threshold: 1000 });
    const ch = sine(100, 8000, 4000, 2);
    await sink.write({ channels: ch, sampleRate: 8000 });
    await sink.finish();
    const b = readFileSync(out);
    expect(b.toString('latin1', 0, 4)).toBe('RF64');
    expect(b.readUInt32LE(4)).toBe(0xffffffff);
    expect(b.toString('latin1', 12, 16)).toBe('ds64');
    expect(Number(b.readBigUInt64LE(28))).toBe(16000); // data size
    expect(Number(b.readBigUInt64LE(36))).toBe(4000); // sample (frame) count
    const src = await openWavSource(out);
    expect(src.header.container).toBe('RF64');
    const a = await readAll(src);
    expect(a.channels[1]!.length).toBe(4000);
    // 16-bit quantisation: at most half a step off
    for (let i = 0; i < 4000; i += 391) expect(Math.abs(a.channels[1]![i]! - ch[1]![i]!)).toBeLessThanOrEqual(0.5 / 32768);
  });

  it('nothing has the final name until finish(); abort() leaves no file behind', async () => {
    const dir = join(tmp.dir, 'sub', 'deeper');
    const out = join(dir, 'x.wav');
    const sink = await createWavSink(out, { sampleRate: 8000, channels: 1 });
    await sink.write({ channels: [new Float32Array(100)], sampleRate: 8000 });
    expect(readdirSync(dir).some((f) => f === 'x.wav')).toBe(false);
    expect(readdirSync(dir)).toHaveLength(1); // the temp file
    await sink.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an output path that cannot be created is OutputError 73', async () => {
    const blocker = join(tmp.dir, 'a-file');
    writeFileSync(blocker, 'x');
    await expect(createWavSink(join(blocker, 'x.wav'), { sampleRate: 8000, channels: 1 })).rejects.toMatchObject({
      exitCode: 73,
      message: `${join(blocker, 'x.wav')}: cannot create output (a part of the folder path is a file)`,
    });
  });

  it('rejects blocks with the wrong channel count or rate', async () => {
    const sink = await createWavSink(join(tmp.dir, 'bad.wav'), { sampleRate: 8000, channels: 2 });
    await expect(sink.write({ channels: [new Float32Array(4)], sampleRate: 8000 })).rejects.toThrow(/expects 2 channels, got 1/);
    await expect(sink.write({ channels: [new Float32Array(4), new Float32Array(4)], sampleRate: 16000 })).rejects.toThrow(/expects 8000 Hz, got 16000 Hz/);
    await sink.abort();
  });

  it('an aborted signal stops reads and writes with InterruptedError (130)', async () => {
    const ac = new AbortController();
    const p = file(buildWav({ formatTag: 1, channels: 1, sampleRate: 8000, bits: 16 }, new Uint8Array(200)));
    const src = await openWavSource(p, { signal: ac.signal });
    expect(await src.read(10)).not.toBeNull();
    ac.abort();
    await expect(src.read(10)).rejects.toMatchObject({ exitCode: 130 });
    await src.close();
  });
});
