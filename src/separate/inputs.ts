/**
 * Expands the command's inputs: files, folders (`--recursive` descends), and glob patterns.
 * Globs use tinyglobby (already in the dependency tree through vitest; Node 20 has no fs.glob), which
 * handles braces, `**` and character classes correctly where a hand-written matcher would not.
 *
 * Nothing is dropped silently: an empty argument is refused, a folder that cannot be read, a symlink that
 * leads nowhere and a folder whose subfolders were not searched are reported, and each file remembers the
 * root it was found under (the folder or the pattern's fixed part) for the `{dir}` template field.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve, sep } from 'node:path';
import { glob } from 'tinyglobby';
import { InputError, UsageError, type StemkitError } from '../errors.js';

/** Extensions a folder listing picks up: audio the audio layer reads, and video (their audio track). */
export const MEDIA_EXTENSIONS = new Set([
  '.wav', '.wave', '.flac', '.mp3', '.ogg', '.oga', '.opus', '.m4a', '.aac', '.wma', '.aif', '.aiff', '.alac', '.mka',
  '.mp4', '.m4v', '.mkv', '.mov', '.webm', '.avi', '.flv', '.wmv', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts', '.3gp', '.ogv',
]);

/** An input that cannot be used, with the error its file reports (its exit code counts like a failed file). */
export interface RejectedInput {
  input: string;
  error: StemkitError;
}

export interface ExpandedInputs {
  /** Absolute paths, deduplicated, in argument order (folders and globs sorted). */
  files: string[];
  /** Arguments that matched nothing: a missing path, or a pattern with no media files. */
  missing: string[];
  /** file → the root it was found under: the folder given, the fixed part of a pattern, or a file's own folder. */
  roots: Record<string, string>;
  /** Folders (or subfolders) that could not be read: failed inputs, the rest of the batch goes on. */
  rejected: RejectedInput[];
  /** Things worth a warning: empty folders, subfolders not searched without --recursive, skipped symlinks. */
  notes: string[];
}

const GLOB_CHARS = /[*?[\]{}]/;

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** The fixed leading folders of a glob pattern (`music/**\/*.flac` → `music`), resolved against `cwd`. */
export function globRoot(pattern: string, cwd: string): string {
  const parts = pattern.split(/[/\\]/);
  const fixed: string[] = [];
  for (const p of parts.slice(0, -1)) {
    if (GLOB_CHARS.test(p)) break;
    fixed.push(p);
  }
  const joined = fixed.join('/');
  if (pattern.startsWith('/') && joined === '') return '/';
  return resolve(cwd, joined === '' ? '.' : joined);
}

interface Walk {
  recursive: boolean;
  out: string[];
  rejected: RejectedInput[];
  notes: string[];
  /** Real paths of folders entered, so a symlinked folder cannot make the walk loop. */
  visited: Set<string>;
}

function unreadableFolder(dir: string, e: unknown): InputError {
  const code = errnoOf(e);
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? String(e));
  return new InputError(`${dir}: cannot read this folder (${why})`, { code: 'E_INPUT_UNREADABLE', hint: `make it readable (e.g. chmod u+rx "${dir}") or leave it out`, cause: e });
}

async function listFolder(dir: string, w: Walk, top: boolean): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    w.rejected.push({ input: dir, error: unreadableFolder(dir, e) });
    return;
  }
  try {
    w.visited.add(await realpath(dir));
  } catch {
    // keep going: the loop guard is best effort
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const skippedDirs: string[] = [];
  const before = w.out.length;
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      // Followed like the files they point to (as `ls`, demucs and ffmpeg would), never silently dropped.
      try {
        const st = await stat(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
        if (!isDir && !isFile && MEDIA_EXTENSIONS.has(extname(e.name).toLowerCase())) w.notes.push(`${p}: skipped, the link points to something that is not a file`);
      } catch (err) {
        const why = errnoOf(err) === 'ELOOP' ? 'a symbolic link loop' : errnoOf(err) === 'ENOENT' ? 'a broken symbolic link' : `a symbolic link that cannot be followed (${errnoOf(err) ?? String(err)})`;
        w.notes.push(`${p}: skipped, ${why}`);
        continue;
      }
      if (isDir && w.recursive) {
        const real = await realpath(p).catch(() => p);
        if (w.visited.has(real)) {
          w.notes.push(`${p}: skipped, the link leads back into a folder already searched`);
          continue;
        }
      }
    }
    if (isDir) {
      if (w.recursive) await listFolder(p, w, false);
      else skippedDirs.push(e.name);
    } else if (isFile && MEDIA_EXTENSIONS.has(extname(e.name).toLowerCase())) {
      w.out.push(p);
    } else if (!isFile && !isDir && MEDIA_EXTENSIONS.has(extname(e.name).toLowerCase()) && !e.isSymbolicLink()) {
      w.notes.push(`${p}: skipped, not a regular file (a pipe, socket or device)`);
    }
  }
  if (top && skippedDirs.length > 0) {
    w.notes.push(`${dir}: ${skippedDirs.length} subfolder${skippedDirs.length === 1 ? '' : 's'} not searched (${skippedDirs.slice(0, 3).join(', ')}${skippedDirs.length > 3 ? ', …' : ''}); add -r (--recursive) to include ${skippedDirs.length === 1 ? 'it' : 'them'}`);
  }
  if (top && w.out.length === before && skippedDirs.length === 0 && w.rejected.every((r) => r.input !== dir)) {
    w.notes.push(`${dir}: no audio or video files in this folder`);
  }
}

/** The deepest folder containing all of `dirs` (absolute), or undefined for none. */
function commonFolder(dirs: readonly string[]): string | undefined {
  if (dirs.length === 0) return undefined;
  let common = dirs[0]!.split(sep);
  for (const d of dirs.slice(1)) {
    const parts = d.split(sep);
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  return common.join(sep) || sep;
}

/**
 * Expands files, folders and glob patterns into media files. Never throws for a missing or unreadable input:
 * it is reported (missing, rejected or a note).
 * @throws UsageError (64) for an empty argument: `""` is never "this folder" (an unset shell variable, usually).
 */
export async function expandInputs(args: readonly string[], opts: { recursive?: boolean; cwd?: string } = {}): Promise<ExpandedInputs> {
  const cwd = opts.cwd ?? process.cwd();
  const seen = new Set<string>();
  const files: string[] = [];
  const missing: string[] = [];
  const roots: Record<string, string> = {};
  const w: Walk = { recursive: opts.recursive === true, out: [], rejected: [], notes: [], visited: new Set() };
  const literal: string[] = [];
  const add = (p: string, root: string): void => {
    const abs = resolve(cwd, p);
    if (!seen.has(abs)) {
      seen.add(abs);
      files.push(abs);
      roots[abs] = root;
    }
  };
  args.forEach((arg, i) => {
    if (arg.trim() === '') {
      throw new UsageError(`input ${args.length > 1 ? `#${i + 1} ` : ''}is an empty path ("")`, {
        code: 'E_EMPTY_INPUT',
        hint: 'pass a file, folder or pattern; for the current folder write "." explicitly',
      });
    }
  });
  for (const arg of args) {
    const abs = resolve(cwd, arg);
    let st: Awaited<ReturnType<typeof stat>> | undefined;
    let statError: unknown;
    try {
      st = await stat(abs);
    } catch (e) {
      statError = e;
    }
    if (st?.isDirectory()) {
      w.out = [];
      await listFolder(abs, w, true);
      for (const f of w.out) add(f, abs);
      continue;
    }
    if (st) {
      // A file, or a FIFO/device/socket: the audio layer names what it is and fails that input alone.
      add(abs, dirname(abs));
      literal.push(abs);
      continue;
    }
    const code = errnoOf(statError);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      // It exists in some form (a symlink loop, an unreadable parent): the audio layer reports it precisely.
      const exists = await lstat(abs).then(() => true, () => false);
      if (exists || code === 'ELOOP' || code === 'EACCES') {
        add(abs, dirname(abs));
        literal.push(abs);
        continue;
      }
    }
    if (GLOB_CHARS.test(arg)) {
      const root = globRoot(arg, cwd);
      const found = (await glob(arg, { cwd, absolute: true, onlyFiles: true, dot: false })).filter((p) => MEDIA_EXTENSIONS.has(extname(p).toLowerCase())).sort();
      if (found.length === 0) missing.push(arg);
      for (const f of found) add(f, isAbsolute(root) ? root : resolve(cwd, root));
      continue;
    }
    missing.push(arg);
  }
  // Files named one by one share one root, their deepest common folder: `a/disc1/x.flac a/disc2/x.flac` then
  // differ in {dir} (disc1, disc2), and a single file's {dir} is empty.
  const common = commonFolder(literal.map((f) => dirname(f)));
  for (const f of literal) if (roots[f] === dirname(f) && common !== undefined) roots[f] = common;
  return { files, missing, roots, rejected: w.rejected, notes: w.notes };
}
