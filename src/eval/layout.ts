/**
 * Finding tracks and stems in a MUSDB18-HQ style folder: `<root>/[test/]<track>/{mixture,<stem>...}.<ext>`.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { InputError, UsageError } from '../errors.js';

export const AUDIO_EXTENSIONS = ['.wav', '.flac', '.mp3', '.ogg', '.opus', '.m4a', '.aiff', '.aif'];

export interface TrackFiles {
  name: string;
  dir: string;
  mixture: string | undefined;
  /** stem name → file path */
  stems: Record<string, string>;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** stem name → file, for the audio files directly inside `dir` (first extension in AUDIO_EXTENSIONS order wins). */
export function audioFilesIn(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const entries = readdirSync(dir).sort();
  for (const ext of AUDIO_EXTENSIONS) {
    for (const f of entries) {
      if (extname(f).toLowerCase() !== ext) continue;
      const stem = basename(f, extname(f));
      if (!(stem in found) && !isDir(join(dir, f))) found[stem] = join(dir, f);
    }
  }
  return found;
}

/**
 * Lists the tracks of a reference folder. Accepts the dataset root (with or without a `test/` level)
 * or a single track folder.
 */
export function findReferenceTracks(root: string): TrackFiles[] {
  if (!isDir(root)) throw new InputError(`reference folder not found: ${root}`, { hint: 'Pass a folder with one sub-folder per track, each holding mixture.* and one file per stem.' });
  const own = audioFilesIn(root);
  if (own['mixture']) return [toTrack(basename(root), root, own)];
  const base = isDir(join(root, 'test')) && !audioFilesIn(join(root, 'test'))['mixture'] ? join(root, 'test') : root;
  const tracks: TrackFiles[] = [];
  for (const name of readdirSync(base).sort()) {
    const dir = join(base, name);
    if (!isDir(dir)) continue;
    const files = audioFilesIn(dir);
    if (Object.keys(files).length === 0) continue;
    tracks.push(toTrack(name, dir, files));
  }
  if (tracks.length === 0) {
    throw new InputError(`no tracks found in ${root}`, { hint: 'Expected <root>/<track>/mixture.wav (or .flac) plus one file per stem, as in MUSDB18-HQ.' });
  }
  return tracks;
}

function toTrack(name: string, dir: string, files: Record<string, string>): TrackFiles {
  const { mixture, ...stems } = files;
  return { name, dir, mixture, stems };
}

/** Parses `--map ref=est` pairs (repeatable or comma-separated) into ref stem → estimate stem. */
export function parseStemMap(values: readonly string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const v of values.flatMap((x) => x.split(','))) {
    const m = /^\s*([^=\s]+)\s*=\s*([^=\s]+)\s*$/.exec(v);
    if (!m) throw new UsageError(`invalid map "${v}"`, { hint: 'Use map <reference-stem>=<estimate-stem>, e.g. map other=no_vocals.', details: { option: 'map' } });
    map[m[1]!] = m[2]!;
  }
  return map;
}
