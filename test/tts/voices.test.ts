import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { VOICE_TABLE_BYTES, blendVoices, npzVoiceStore, openVoiceStore, parseNpyVoice, parseVoiceSpec, selectStyle, styleRowIndex } from '../../src/tts/voices.js';
import { npy, npz, rawVoice, voiceTable } from '../helpers/tts-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'stemkit-voices-'));

describe('Kokoro voices', () => {
  for (const level of [0, 6] as const) {
    it(`reads an .npz with ${level === 0 ? 'stored' : 'deflated'} members`, async () => {
      const bytes = npz({ af_heart: voiceTable(0), bf_emma: voiceTable(1000) }, level);
      // The fixture really uses the intended zip method: 0 = stored, 8 = deflate (local header offset 8).
      expect(new DataView(bytes.buffer).getUint16(8, true)).toBe(level === 0 ? 0 : 8);
      expect(Object.keys(unzipSync(bytes))).toEqual(['af_heart.npy', 'bf_emma.npy']);
      const path = join(dir, `voices-${level}.bin`);
      writeFileSync(path, bytes);
      const store = await openVoiceStore(path);
      expect(store.names).toEqual(['af_heart', 'bf_emma']);
      const t = await store.load('bf_emma');
      expect(t.length).toBe(510 * 256);
      // value[row][col] = base + row + col/512, exact in float32.
      expect(t[0]).toBe(1000);
      expect(t[3 * 256 + 5]).toBe(1000 + 3 + 5 / 512);
      expect(t[509 * 256 + 255]).toBe(1000 + 509 + 255 / 512);
    });
  }

  it('accepts (510, 256) arrays and float64 data', async () => {
    const f32 = npy(voiceTable(0), [510, 256]);
    expect(parseNpyVoice(f32, 'x')[300]).toBe(1 + 44 / 512);
    const f64 = npy(voiceTable(0), [510, 1, 256], '<f8');
    expect(f64.length - f32.length).toBe(510 * 256 * 4);
    expect(parseNpyVoice(f64, 'x')[300]).toBe(1 + 44 / 512);
  });

  it('reads a folder of raw .bin voices and a single raw file', async () => {
    const folder = join(dir, 'folder');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'af_sky.bin'), rawVoice(voiceTable(7)));
    writeFileSync(join(folder, 'am_adam.npy'), npy(voiceTable(9), [510, 1, 256]));
    writeFileSync(join(folder, 'README.txt'), 'not a voice');
    const store = await openVoiceStore(folder);
    expect(store.names).toEqual(['af_sky', 'am_adam']);
    expect((await store.load('af_sky'))[256]).toBe(8);
    expect((await store.load('am_adam'))[0]).toBe(9);
    const single = join(dir, 'bf_lily.bin');
    writeFileSync(single, rawVoice(voiceTable(3)));
    expect(VOICE_TABLE_BYTES).toBe(522_240);
    const s = await openVoiceStore(single);
    expect(s.names).toEqual(['bf_lily']);
  });

  it('rejects voices of the wrong shape with exit 65', async () => {
    const wrongNpz = npz({ af_heart: voiceTable(0, 511) }, 6, [511, 1, 256]);
    const store = await npzVoiceStore(wrongNpz, 'wrong.npz');
    await expect(store.load('af_heart')).rejects.toMatchObject({ exitCode: 65, code: 'E_VOICES_SHAPE', message: expect.stringContaining('shape (511, 1, 256)') });
    const short = join(dir, 'short.bin');
    writeFileSync(short, new Uint8Array(1000));
    await expect(openVoiceStore(short)).rejects.toMatchObject({ exitCode: 65, message: expect.stringContaining('1,000 bytes') });
    const transposed = npz({ af_heart: voiceTable(0, 256, 510) }, 0, [256, 510]);
    await expect((await npzVoiceStore(transposed, 't.npz')).load('af_heart')).rejects.toMatchObject({ exitCode: 65 });
    const notZip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]);
    await expect(npzVoiceStore(notZip, 'bad.npz')).rejects.toMatchObject({ exitCode: 65 });
    await expect(openVoiceStore(join(dir, 'missing.bin'))).rejects.toMatchObject({ exitCode: 66 });
  });

  it('unknown voice → exit 64 listing the valid voices', async () => {
    const store = await npzVoiceStore(npz({ af_heart: voiceTable(0), bf_emma: voiceTable(1) }, 6), 'v.npz');
    await expect(blendVoices(store, parseVoiceSpec('af_hart'))).rejects.toMatchObject({
      exitCode: 64,
      code: 'E_UNKNOWN_VOICE',
      hint: 'valid voices in v.npz: af_heart, bf_emma',
    });
  });

  it('blends tables with normalised weights, then the row is selected', async () => {
    const store = await npzVoiceStore(npz({ a: voiceTable(0), b: voiceTable(1000) }, 0), 'v.npz');
    expect(parseVoiceSpec('a:0.7,b:0.3')).toEqual([{ name: 'a', weight: 0.7 }, { name: 'b', weight: 0.3 }]);
    expect(parseVoiceSpec('a,b')).toEqual([{ name: 'a', weight: 0.5 }, { name: 'b', weight: 0.5 }]);
    expect(parseVoiceSpec('a:2, b:6')).toEqual([{ name: 'a', weight: 0.25 }, { name: 'b', weight: 0.75 }]);
    const t = await blendVoices(store, parseVoiceSpec('a:0.7,b:0.3'));
    // 0.7·(r + c/512) + 0.3·(1000 + r + c/512) = 300 + r + c/512; float32 rounding of the products < 1e-4 at this magnitude.
    expect(t[10 * 256 + 64]).toBeCloseTo(300 + 10 + 64 / 512, 4);
    for (const bad of ['', 'a:0', 'a:-1', 'a:x', ':0.5']) expect(() => parseVoiceSpec(bad)).toThrow(expect.objectContaining({ exitCode: 64 }));
  });

  it('selects row n − 1 for n phoneme tokens, clamped to [0, 509]', () => {
    expect([0, 1, 2, 100, 510, 600].map(styleRowIndex)).toEqual([0, 0, 1, 99, 509, 509]);
    const row = selectStyle(voiceTable(0), 14);
    expect(row.length).toBe(256);
    expect(row[0]).toBe(13);
    expect(row[255]).toBe(13 + 255 / 512);
  });
});
