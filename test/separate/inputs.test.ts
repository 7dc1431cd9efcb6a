/**
 * Input expansion: files, folders (recursive or not), globs, missing inputs, de-duplication.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandInputs } from '../../src/separate/inputs.js';
import { tempDir } from '../helpers/separate-fixtures.js';

const tmp = tempDir('stemkit-sep-inputs-');
const rel = (ps: string[]): string[] => ps.map((p) => relative(tmp.dir, p));

beforeAll(() => {
  mkdirSync(join(tmp.dir, 'album/disc2'), { recursive: true });
  for (const f of ['album/01.flac', 'album/02.mp3', 'album/notes.txt', 'album/.hidden.wav', 'album/disc2/03.wav', 'album/disc2/clip.MP4', 'x.wav']) {
    writeFileSync(join(tmp.dir, f), '');
  }
});
afterAll(() => tmp.cleanup());

describe('expandInputs', () => {
  it('lists a folder’s media files (sorted, no hidden or non-media files); --recursive descends', async () => {
    expect(rel((await expandInputs(['album'], { cwd: tmp.dir })).files)).toEqual(['album/01.flac', 'album/02.mp3']);
    expect(rel((await expandInputs(['album'], { cwd: tmp.dir, recursive: true })).files)).toEqual(['album/01.flac', 'album/02.mp3', 'album/disc2/03.wav', 'album/disc2/clip.MP4']);
  });

  it('expands globs (braces, **), keeps literal files in argument order, de-duplicates and reports what matched nothing', async () => {
    const r = await expandInputs(['x.wav', 'album/**/*.{wav,flac}', 'album/01.flac', 'nope.wav', 'none/*.mp3'], { cwd: tmp.dir });
    expect(rel(r.files)).toEqual(['x.wav', 'album/01.flac', 'album/disc2/03.wav']);
    expect(r.missing).toEqual(['nope.wav', 'none/*.mp3']);
  });

  it('takes a literal file whatever its extension (the decoder decides)', async () => {
    expect(rel((await expandInputs(['album/notes.txt'], { cwd: tmp.dir })).files)).toEqual(['album/notes.txt']);
  });
});
