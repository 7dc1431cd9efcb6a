/**
 * Output safety: before a run writes anything, every planned output is compared with every input of the run
 * and with every other planned output. An output that resolves to an input (the same file, also through
 * symlinks, hard links or a case-insensitive file system) or two writers of one output are conflicts; the
 * callers (separate, tts, JSONL batches, eval) turn them into one UsageError (64) before the first job runs.
 *
 * Identity: an existing file is identified by device + inode (which sees through symlinks, hard links and
 * case-insensitive names); a path that does not exist yet by the real path of its nearest existing folder
 * plus the rest, case-folded when that folder's file system ignores case.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';

/** One file a run will write, and who writes it (an input file, `jobs.jsonl:3`, …) for messages. */
export interface PlannedWrite {
  output: string;
  owner: string;
}

export type OutputConflict =
  | { kind: 'input'; output: string; owner: string; input: string }
  | { kind: 'collision'; output: string; owners: [string, string]; other: string };

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    // missing, a dangling link, a loop, or unreadable: not a file this run could overwrite through the path
    return undefined;
  }
}

const caseCache = new Map<string, boolean>();

function swapCase(s: string): string {
  let out = '';
  for (const ch of s) {
    const lo = ch.toLowerCase();
    out += lo === ch ? ch.toUpperCase() : lo;
  }
  return out;
}

/**
 * True when `dir` (an existing real path) lives on a case-insensitive file system: a name in it with its case
 * swapped reaches the same inode. Decided once per folder; a folder without any cased name counts as sensitive.
 */
export function isCaseInsensitiveDir(dir: string): boolean {
  const cached = caseCache.get(dir);
  if (cached !== undefined) return cached;
  let result = false;
  const probe = (path: string): boolean | undefined => {
    const name = basename(path);
    const swapped = swapCase(name);
    if (swapped === name) return undefined;
    const a = statOrUndefined(path);
    const b = statOrUndefined(join(dirname(path), swapped));
    if (!a) return undefined;
    return b !== undefined && a.ino === b.ino && a.dev === b.dev;
  };
  let answer = dir !== dirname(dir) ? probe(dir) : undefined;
  if (answer === undefined) {
    try {
      for (const name of readdirSync(dir)) {
        answer = probe(join(dir, name));
        if (answer !== undefined) break;
      }
    } catch {
      // unreadable folder: assume case-sensitive
    }
  }
  result = answer === true;
  caseCache.set(dir, result);
  return result;
}

/**
 * A key equal for two paths exactly when they name the same file: `ino:<dev>:<ino>` for an existing file,
 * otherwise `path:<real path of the nearest existing folder>/<rest>` (the rest case-folded on case-insensitive
 * file systems).
 */
export function fileKey(path: string, caseInsensitive: (dir: string) => boolean = isCaseInsensitiveDir): string {
  const abs = resolve(path);
  const st = statOrUndefined(abs);
  if (st && !st.isDirectory()) return `ino:${st.dev}:${st.ino}`;
  const rest: string[] = [];
  let dir = abs;
  for (;;) {
    const parentSt = statOrUndefined(dir);
    if (parentSt?.isDirectory()) break;
    const up = dirname(dir);
    if (up === dir) break;
    rest.unshift(basename(dir));
    dir = up;
  }
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // keep the lexical path
  }
  const tail = rest.join(sep);
  const folded = caseInsensitive(real) ? tail.toLowerCase() : tail;
  return `path:${join(real, folded)}`;
}

/**
 * Every conflict among the planned writes: an output that is one of `inputs`, and an output planned twice.
 * Inputs that do not exist are ignored (they cannot be overwritten).
 */
export function findOutputConflicts(
  inputs: readonly string[],
  writes: readonly PlannedWrite[],
  /** How to tell a case-insensitive folder (a test seam: this kernel may offer no such file system). */
  caseInsensitive: (dir: string) => boolean = isCaseInsensitiveDir,
): OutputConflict[] {
  const inputKeys = new Map<string, string>();
  for (const input of inputs) {
    const st = statOrUndefined(input);
    if (st && !st.isDirectory()) inputKeys.set(`ino:${st.dev}:${st.ino}`, input);
  }
  const conflicts: OutputConflict[] = [];
  const seen = new Map<string, PlannedWrite>();
  for (const w of writes) {
    const key = fileKey(w.output, caseInsensitive);
    const input = inputKeys.get(key);
    if (input !== undefined) {
      conflicts.push({ kind: 'input', output: w.output, owner: w.owner, input });
      continue;
    }
    const prev = seen.get(key);
    if (prev) conflicts.push({ kind: 'collision', output: w.output, owners: [prev.owner, w.owner], other: prev.output });
    else seen.set(key, w);
  }
  return conflicts;
}

/** The one-line message for a conflict, naming both paths. */
export function describeConflict(c: OutputConflict): string {
  if (c.kind === 'input') {
    return c.output === c.input || resolve(c.output) === resolve(c.input)
      ? `the output ${c.output} (of ${c.owner}) is an input of this run; refusing to overwrite it`
      : `the output ${c.output} (of ${c.owner}) is the input ${c.input} (the same file); refusing to overwrite it`;
  }
  const same = c.other === c.output ? '' : ` (as ${c.other})`;
  if (c.owners[0] === c.owners[1]) return `${c.owners[0]} would write ${c.output} twice${same}`;
  return `${c.owners[0]} and ${c.owners[1]} would both write ${c.output}${same}`;
}

/**
 * Throws one UsageError (64) for the first conflict (counting the others), before anything is written.
 * @param hint how to fix it (the caller knows its options), e.g. a filename template that works.
 * @param details extra structured facts for `--json` (e.g. `suggestedTemplate`).
 */
export function assertNoOutputConflicts(conflicts: readonly OutputConflict[], hint: string, details: Record<string, unknown> = {}): void {
  const first = conflicts[0];
  if (!first) return;
  const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more conflict${conflicts.length > 2 ? 's' : ''})` : '';
  throw new UsageError(`${describeConflict(first)}${more}`, {
    code: first.kind === 'input' ? 'E_OUTPUT_IS_INPUT' : 'E_OUTPUT_COLLISION',
    hint,
    details: { conflicts, ...details },
  });
}
