/**
 * Expands the command's inputs: files, folders (`--recursive` descends), and glob patterns.
 * Globs use tinyglobby (already in the dependency tree through vitest; Node 20 has no fs.glob), which
 * handles braces, `**` and character classes correctly where a hand-written matcher would not.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { glob } from 'tinyglobby';

/** Extensions a folder listing picks up: audio the audio layer reads, and video (their audio track). */
export const MEDIA_EXTENSIONS = new Set([
  '.wav', '.wave', '.flac', '.mp3', '.ogg', '.oga', '.opus', '.m4a', '.aac', '.wma', '.aif', '.aiff', '.alac', '.mka',
  '.mp4', '.m4v', '.mkv', '.mov', '.webm', '.avi', '.flv', '.wmv', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts', '.3gp', '.ogv',
]);

export interface ExpandedInputs {
  /** Absolute paths, deduplicated, in argument order (folders and globs sorted). */
  files: string[];
  /** Arguments that matched nothing: a missing path, or a pattern/folder with no media files. */
  missing: string[];
}

const GLOB_CHARS = /[*?[\]{}]/;

async function listFolder(dir: string, recursive: boolean): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...(await listFolder(p, true)));
    } else if (e.isFile() && MEDIA_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(p);
  }
  return out;
}

/** Expands files, folders and glob patterns into media files. Never throws for a missing input: it is reported. */
export async function expandInputs(args: readonly string[], opts: { recursive?: boolean; cwd?: string } = {}): Promise<ExpandedInputs> {
  const cwd = opts.cwd ?? process.cwd();
  const seen = new Set<string>();
  const files: string[] = [];
  const missing: string[] = [];
  const add = (p: string): void => {
    const abs = resolve(cwd, p);
    if (!seen.has(abs)) {
      seen.add(abs);
      files.push(abs);
    }
  };
  for (const arg of args) {
    const abs = resolve(cwd, arg);
    const st = await stat(abs).catch(() => undefined);
    if (st?.isFile()) {
      add(abs);
      continue;
    }
    if (st?.isDirectory()) {
      const found = await listFolder(abs, opts.recursive === true);
      if (found.length === 0) missing.push(arg);
      found.forEach(add);
      continue;
    }
    if (GLOB_CHARS.test(arg)) {
      const found = (await glob(arg, { cwd, absolute: true, onlyFiles: true, dot: false })).filter((p) => MEDIA_EXTENSIONS.has(extname(p).toLowerCase())).sort();
      if (found.length === 0) missing.push(arg);
      found.forEach(add);
      continue;
    }
    missing.push(arg);
  }
  return { files, missing };
}
