/**
 * Which model and options produced each output: a small manifest (`.stemkit-outputs.json`) in every folder
 * stemkit writes stems to, keyed by file name. A run skips an input only when all its outputs exist AND the
 * manifest says this very recipe (model + every option that changes the audio) wrote them AND the files are
 * still the ones it wrote (size and modification time). Outputs of another model or other options are redone
 * (with a warning naming what they came from); outputs nobody recorded (written by an older stemkit, another
 * tool, or edited since) are left alone with a warning, so nothing of unknown origin is silently claimed or
 * overwritten.
 *
 * Why a manifest and not the model in the default path (demucs's `separated/<model>/<track>/`): the layout
 * users, scripts and `eval` rely on stays the same, and a change of options under one model (`--shifts`,
 * `--two-stems`, `--clip`, the format) is caught too, which a per-model folder would not see.
 * Two processes writing the same folder at once may lose one entry (last rename wins); the effect is a warning
 * and a skip on the next run, never a wrong claim.
 */
import { lstat, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { atomicWriteFile } from '../util/atomic.js';

export const MANIFEST_NAME = '.stemkit-outputs.json';
/** A manifest bigger than this is not ours (or not worth parsing): treated as absent. */
const MAX_MANIFEST_BYTES = 4 << 20;

/** What produced an output: the model and every option that changes the audio written. */
export type Recipe = Record<string, unknown> & { model: string };

interface Entry {
  /** Canonical JSON of the recipe. */
  recipe: string;
  model: string;
  input: string;
  size: number;
  mtimeMs: number;
  written: string;
}

interface Manifest {
  version: 1;
  files: Record<string, Entry>;
}

/** Canonical JSON: keys sorted, undefined dropped, so equal recipes give equal strings. */
export function recipeKey(recipe: Recipe): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, norm((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(norm(recipe));
}

async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_NAME);
  try {
    // lstat first: a FIFO or device under this name would block a read forever.
    const st = await lstat(path);
    if (!st.isFile() || st.size > MAX_MANIFEST_BYTES) return { version: 1, files: {} };
    const data = JSON.parse(await readFile(path, 'utf8')) as Partial<Manifest>;
    if (data.version === 1 && data.files && typeof data.files === 'object') return { version: 1, files: data.files };
  } catch {
    // missing or damaged: nothing recorded
  }
  return { version: 1, files: {} };
}

/** The state of an input's outputs with respect to `recipe`. */
export type OutputsState =
  | { state: 'missing' }
  | { state: 'done' }
  /** All exist, at least one written by a different recipe (model named): redo. */
  | { state: 'other'; models: string[] }
  /** All exist, at least one with no matching record: leave alone, say so. */
  | { state: 'unknown'; files: string[] };

/** Decides whether `outputs` are this recipe's finished work. */
export async function outputsState(outputs: readonly string[], recipe: Recipe): Promise<OutputsState> {
  const key = recipeKey(recipe);
  const manifests = new Map<string, Manifest>();
  const others = new Set<string>();
  const unknown: string[] = [];
  for (const out of outputs) {
    const st = await stat(out).catch(() => undefined);
    if (!st) return { state: 'missing' };
    const dir = dirname(out);
    let m = manifests.get(dir);
    if (!m) {
      m = await readManifest(dir);
      manifests.set(dir, m);
    }
    const e = m.files[basename(out)];
    const same = e !== undefined && e.size === st.size && Math.abs(e.mtimeMs - st.mtimeMs) < 1;
    if (!same) unknown.push(out);
    else if (e.recipe !== key) others.add(e.model);
  }
  if (unknown.length > 0) return { state: 'unknown', files: unknown };
  if (others.size > 0) return { state: 'other', models: [...others] };
  return { state: 'done' };
}

/** Records that `recipe` wrote `outputs` for `input` (one atomic manifest update per folder). */
export async function recordOutputs(outputs: readonly string[], input: string, recipe: Recipe): Promise<void> {
  const key = recipeKey(recipe);
  const byDir = new Map<string, string[]>();
  for (const out of outputs) byDir.set(dirname(out), [...(byDir.get(dirname(out)) ?? []), out]);
  for (const [dir, files] of byDir) {
    const m = await readManifest(dir);
    for (const out of files) {
      const st = await stat(out).catch(() => undefined);
      if (!st) continue;
      m.files[basename(out)] = { recipe: key, model: recipe.model, input, size: st.size, mtimeMs: st.mtimeMs, written: new Date().toISOString() };
    }
    await atomicWriteFile(join(dir, MANIFEST_NAME), `${JSON.stringify(m, null, 1)}\n`);
  }
}
