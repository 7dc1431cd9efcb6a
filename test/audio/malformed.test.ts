import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudioSource, readAll } from '../../src/audio/open.js';
import { openWavSource, parseWavHeader } from '../../src/audio/wav.js';
import { StemkitError } from '../../src/errors.js';
import { malformedCorpus } from '../helpers/audio-corpus.js';
import { buildWav, makeTempDir, patternBytes } from '../helpers/audio-fixtures.js';

const tmp = makeTempDir('stemkit-corpus-');
afterAll(() => tmp.cleanup());

// ffmpegPath points nowhere so that compressed-WAV cases cannot fall back to ffmpeg: the native error is checked.
const noFfmpeg = { ffmpegPath: join(tmp.dir, 'no-such-ffmpeg') };

async function openError(path: string, opts = noFfmpeg): Promise<StemkitError> {
  try {
    const src = await openAudioSource(path, opts);
    await readAll(src);
  } catch (e) {
    if (e instanceof StemkitError) return e;
    throw e;
  }
  throw new Error(`${path} opened without an error`);
}

describe('malformed WAV corpus', () => {
  const corpus = malformedCorpus();
  beforeAll(() => {
    for (const c of corpus) writeFileSync(join(tmp.dir, c.name), c.bytes);
  });

  it.each(corpus.map((c) => [c.name, c] as const))('%s → clear one-line error', async (name, c) => {
    const e = await openError(join(tmp.dir, name));
    expect(e.exitCode).toBe(c.exitCode);
    if (c.code !== undefined) expect(e.code).toBe(c.code);
    expect(e.message).toMatch(c.message);
    expect(e.message).toContain(name);
    expect(e.message).not.toContain('\n');
    expect(e.hint).toBeTruthy();
  });

  it('a compressed WAV without ffmpeg names the codec and suggests installing ffmpeg', async () => {
    const e = await openError(join(tmp.dir, 'ima-adpcm.wav'));
    expect(e.hint).toMatch(/install ffmpeg/);
  });

  it('a directory is InputError 66', async () => {
    const d = join(tmp.dir, 'folder.wav');
    mkdirSync(d);
    const e = await openError(d);
    expect(e.exitCode).toBe(66);
    expect(e.message).toMatch(/is a directory/);
  });

  it('a missing file is InputError 66', async () => {
    const e = await openError(join(tmp.dir, 'missing.wav'));
    expect(e.exitCode).toBe(66);
    expect(e.code).toBe('E_INPUT_NOT_FOUND');
    expect(e.message).toMatch(/missing\.wav: file not found/);
  });

  it('a FIFO named .wav is refused at once (opening it would block forever)', async () => {
    const p = join(tmp.dir, 'pipe.wav');
    execFileSync('mkfifo', [p]);
    const e = await openError(p);
    expect(e.exitCode).toBe(66);
    expect(e.message).toMatch(/pipe\.wav: is a named pipe \(FIFO\), not an audio file/);
  });

  // root reads files whatever their mode, so the permission case only means something for other users.
  it.skipIf(process.getuid?.() === 0)('an unreadable file (chmod 000) is InputError 66', async () => {
    const p = join(tmp.dir, 'locked.wav');
    writeFileSync(p, buildWav({ formatTag: 1, channels: 1, sampleRate: 8000, bits: 16 }, patternBytes(1, 100)));
    chmodSync(p, 0o000);
    const e = await openError(p);
    expect(e.exitCode).toBe(66);
    expect(e.message).toMatch(/permission denied/);
  });
});

describe('WAV parser never crashes or hangs on damaged headers', () => {
  const valid = buildWav({ formatTag: 0xfffe, subFormat: 1, channels: 2, sampleRate: 48000, bits: 24, extraChunks: [{ id: 'LIST', body: new Uint8Array(10) }] }, patternBytes(3, 600));

  async function tryRead(bytes: Uint8Array, name: string): Promise<'ok' | number> {
    const p = join(tmp.dir, name);
    writeFileSync(p, bytes);
    try {
      const src = await openWavSource(p);
      let frames = 0;
      for (let b = await src.read(7); b !== null; b = await src.read(7)) frames += b.channels[0]!.length;
      await src.close();
      expect(frames).toBe(src.info.frames);
      return 'ok';
    } catch (e) {
      if (!(e instanceof StemkitError)) throw e;
      expect(e.message).not.toContain('\n');
      return e.exitCode;
    }
  }

  it('every truncation of a valid file is either readable or DataError 65', async () => {
    const outcomes = new Set<string>();
    const cuts = [...Array.from({ length: 121 }, (_, i) => i), 300, 500, valid.length - 1, valid.length];
    for (const cut of cuts) {
      const r = await tryRead(valid.subarray(0, cut), 'cut.wav');
      // Only the complete file reads: any cut makes the data chunk longer than the file, which is an error by design.
      expect(r).toBe(cut === valid.length ? 'ok' : 65);
      outcomes.add(String(r));
    }
    expect(outcomes).toEqual(new Set(['ok', '65']));
  });

  it('300 random single-byte corruptions of the header are either readable or DataError 65', async () => {
    const rnd = patternBytes(77, 900);
    const outcomes = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(valid);
      const pos = rnd.readUInt16LE(i * 3) % 110; // the header is the first 102 bytes (RIFF + LIST + fmt + data header)
      b[pos] = rnd[i * 3 + 2]!;
      const r = await tryRead(b, 'flip.wav');
      expect(['ok', 65]).toContain(r);
      outcomes.add(String(r));
    }
    // Both kinds occur (flips inside the LIST body are harmless), so the loop really exercised the parser.
    expect(outcomes).toEqual(new Set(['ok', '65']));
  });

  it('parseWavHeader reads only the header (works on a handle to a 12-byte file without touching data)', async () => {
    const p = join(tmp.dir, 'tiny.wav');
    writeFileSync(p, valid.subarray(0, 12));
    const fh = await open(p, 'r');
    await expect(parseWavHeader(fh, 12, p)).rejects.toThrow(/no fmt chunk/);
    await fh.close();
  });
});
