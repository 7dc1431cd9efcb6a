/**
 * The model registry: every model stemkit knows, as data (models/registry.json), plus lookups.
 * Adding a model is a data change: a new entry in the JSON file, no new branches here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InternalError, UnavailableError, UsageError } from '../errors.js';
import { formatBytes } from '../util/format.js';

/** One file of a model. `url` is absent when no public host can be pinned (import only). */
export interface ModelFile {
  /** File name inside the model's cache folder. */
  name: string;
  /** What the adapter uses it for: 'model' | 'voices' | 'config' | 'stage1' | 'stage2' | 'sub0'.. */
  role: string;
  url?: string;
  /** Bytes; when known a download or import of another size is rejected. */
  size?: number;
  /** Lower-case hex; when absent the first download's checksum is recorded (trust on first use). */
  sha256?: string;
  /** Roughly how many bytes, for display before a download when the exact size is not pinned (never checked). */
  approxSize?: number;
}

export type ModelTask = 'separate' | 'tts';
export type ModelAdapter = 'classic' | 'htdemucs' | 'mdxnet' | 'gtcrn' | 'dtln' | 'kokoro' | 'piper';
export type Precision = 'fp32' | 'fp16' | 'int8';
export const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'int8'];

export interface ModelEntry {
  id: string;
  task: ModelTask;
  adapter: ModelAdapter;
  title: string;
  stems?: string[];
  voices?: string[];
  sampleRate: number;
  /** The fp32 files. */
  files: ModelFile[];
  /**
   * Precision variants. A variant's files replace the base files with the same role; base files of
   * other roles (e.g. Kokoro's voices) are shared by every precision.
   */
  variants?: Partial<Record<'fp16' | 'int8', { files: ModelFile[] }>>;
  license: string;
  /** Where the model comes from (project or release page). */
  source: string;
  /** Adapter parameters (MDX-Net: nFft, dimF, dimT, hop, compensate, primaryStem, …; see models/registry.json). */
  params?: Record<string, unknown>;
  aliases?: string[];
  /** Shipped inside the package (models/<file>): never downloaded, never cached. */
  embedded?: boolean;
  /** How to obtain the files when there is no URL (shown in errors and `models list`). */
  importHint?: string;
  /**
   * The precision `auto` picks on every device. Set where a variant only stores its weights smaller and computes in
   * fp32 (HTDemucs "fp16weights"): the same results within 6e-5 for half the download, so there is nothing to trade.
   * Without it, `auto` means fp16 on CUDA (where fp16 compute is fast) and fp32 elsewhere.
   */
  autoPrecision?: Precision;
  /** Separation modes (stem counts) this model can serve. */
  modes?: Array<2 | 4 | 6>;
  /** Published per-stem SDR in dB, where known. */
  sdr?: Record<string, number>;
}

export interface InstalledModel {
  entry: ModelEntry;
  /** The folder holding the files (the package's models/ folder for embedded models). */
  dir: string;
  /** role → absolute path. */
  paths: Record<string, string>;
  precision: Precision;
}

/** A model id (or alias) plus the precision implied by a `-fp16`/`-int8`/`-fp32` suffix, if any. */
export interface ModelRef {
  entry: ModelEntry;
  precision: Precision | undefined;
}

/** The package's models/ folder: `../../models` from both src/models/*.ts and dist/models/*.js. */
export function packageModelsDir(): string {
  return fileURLToPath(new URL('../../models', import.meta.url));
}

let cache: { entries: ModelEntry[]; byKey: Map<string, ModelEntry> } | undefined;

const TASKS = new Set(['separate', 'tts']);
const ADAPTERS = new Set(['classic', 'htdemucs', 'mdxnet', 'gtcrn', 'dtln', 'kokoro', 'piper']);

/** Structural check of the registry data: a broken registry is a packaging bug, so it fails loudly once. */
function validate(raw: unknown, file: string): ModelEntry[] {
  const bad = (why: string): never => {
    throw new InternalError(`model registry ${file} is invalid: ${why}`, { hint: 'reinstall stemkit; the package is damaged' });
  };
  const models = (raw as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) bad('no "models" array');
  const out: ModelEntry[] = [];
  for (const m of models as Array<Record<string, unknown>>) {
    const id = typeof m.id === 'string' ? m.id : bad('an entry has no id');
    if (!TASKS.has(m.task as string)) bad(`${id}: task must be separate or tts`);
    if (!ADAPTERS.has(m.adapter as string)) bad(`${id}: unknown adapter ${String(m.adapter)}`);
    if (typeof m.sampleRate !== 'number') bad(`${id}: sampleRate missing`);
    const files = [...((m.files as ModelFile[] | undefined) ?? [])];
    for (const v of Object.values((m.variants as Record<string, { files: ModelFile[] }> | undefined) ?? {})) files.push(...v.files);
    if (files.length === 0) bad(`${id}: no files`);
    for (const f of files) {
      if (typeof f.name !== 'string' || f.name.includes('/') || f.name.includes('\\') || f.name.startsWith('.')) bad(`${id}: bad file name ${String(f.name)}`);
      if (typeof f.role !== 'string') bad(`${id}: file ${f.name} has no role`);
      if (f.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(f.sha256)) bad(`${id}: bad sha256 for ${f.name}`);
    }
    const auto = m.autoPrecision as string | undefined;
    if (auto !== undefined && auto !== 'fp32' && !(m.variants as Record<string, unknown> | undefined)?.[auto]) bad(`${id}: autoPrecision ${auto} has no variant`);
    out.push(m as unknown as ModelEntry);
  }
  return out;
}

function load(): { entries: ModelEntry[]; byKey: Map<string, ModelEntry> } {
  if (cache) return cache;
  const file = fileURLToPath(new URL('../../models/registry.json', import.meta.url));
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InternalError(`cannot read the model registry ${file}: ${(e as Error).message}`, {
      cause: e,
      hint: 'reinstall stemkit; the package is damaged',
    });
  }
  const entries = validate(raw, file);
  const byKey = new Map<string, ModelEntry>();
  for (const e of entries) {
    for (const key of [e.id, ...(e.aliases ?? [])]) {
      const k = key.toLowerCase();
      if (byKey.has(k)) throw new InternalError(`model registry: duplicate id or alias "${key}"`);
      byKey.set(k, e);
    }
  }
  cache = { entries, byKey };
  return cache;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest known ids/aliases to `input` (case-insensitive), best first. */
export function suggestModelIds(input: string, max = 3): string[] {
  const q = input.toLowerCase();
  const { entries } = load();
  const scored: Array<{ name: string; d: number }> = [];
  for (const e of entries) {
    let best = Infinity;
    for (const k of [e.id, ...(e.aliases ?? [])]) {
      const kk = k.toLowerCase();
      const d = kk.includes(q) || q.includes(kk) ? Math.min(1, distance(q, kk)) : distance(q, kk);
      best = Math.min(best, d);
    }
    if (best <= Math.max(2, Math.floor(q.length / 3))) scored.push({ name: e.id, d: best });
  }
  scored.sort((a, b) => a.d - b.d || a.name.localeCompare(b.name));
  return scored.slice(0, max).map((s) => s.name);
}

function orList(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

function unknownModel(idOrAlias: string): UsageError {
  const ids = load().entries.map((e) => e.id);
  const near = suggestModelIds(idOrAlias);
  return new UsageError(`unknown model "${idOrAlias}"${near.length ? `; did you mean ${orList(near.map((n) => `"${n}"`))}?` : ''}`, {
    code: 'E_UNKNOWN_MODEL',
    hint: `valid models: ${ids.join(', ')} (see \`stemkit models list\`)`,
    details: { model: idOrAlias, valid: ids, suggestions: near },
  });
}

/**
 * Resolves an id or alias (case-insensitive). A `-fp16`, `-int8` or `-fp32` suffix on any id or alias
 * selects that precision, e.g. `kokoro-int8`.
 * @throws UsageError (64) naming the valid ids and the closest matches.
 */
export function resolveModelRef(idOrAlias: string): ModelRef {
  const { byKey } = load();
  const k = idOrAlias.trim().toLowerCase();
  const direct = byKey.get(k);
  if (direct) return { entry: direct, precision: undefined };
  const m = /^(.*)[-_.](fp32|fp16|int8)$/.exec(k);
  if (m) {
    const entry = byKey.get(m[1]!);
    const precision = m[2] as Precision;
    if (entry) {
      if (precision !== 'fp32' && !entry.variants?.[precision]) {
        throw new UsageError(`model "${entry.id}" has no ${precision} variant`, {
          code: 'E_UNKNOWN_MODEL',
          hint: `available precisions for ${entry.id}: ${availablePrecisions(entry).join(', ')}`,
        });
      }
      return { entry, precision };
    }
  }
  throw unknownModel(idOrAlias);
}

/**
 * The registry entry for an id or alias (case-insensitive; a precision suffix such as `kokoro-int8` resolves to `kokoro`).
 * @throws UsageError (64) naming the valid ids and "did you mean".
 */
export function getModel(idOrAlias: string): ModelEntry {
  return resolveModelRef(idOrAlias).entry;
}

/** Every model in registry order, optionally only one task's. */
export function listModels(filter?: { task?: ModelTask }): ModelEntry[] {
  const { entries } = load();
  return filter?.task ? entries.filter((e) => e.task === filter.task) : [...entries];
}

/** The precisions an entry offers (fp32 always). */
export function availablePrecisions(entry: ModelEntry): Precision[] {
  return PRECISIONS.filter((p) => p === 'fp32' || entry.variants?.[p] !== undefined);
}

/**
 * The files that make up `entry` at `precision`: the variant's files replace the base files of the same role.
 * @throws UsageError when the entry has no such variant.
 */
export function modelFiles(entry: ModelEntry, precision: Precision = 'fp32'): ModelFile[] {
  if (precision === 'fp32') return entry.files;
  const variant = entry.variants?.[precision];
  if (!variant) {
    throw new UsageError(`model "${entry.id}" has no ${precision} variant`, {
      hint: `available precisions for ${entry.id}: ${availablePrecisions(entry).join(', ')}`,
    });
  }
  const roles = new Set(variant.files.map((f) => f.role));
  return [...entry.files.filter((f) => !roles.has(f.role)), ...variant.files];
}

/**
 * The default separation model for a stem count. Prefers HTDemucs (htdemucs_6s for 6) when installed,
 * else the embedded classic model for 2 and 4.
 * @param installed tells whether a model id is installed; when omitted nothing is assumed installed.
 * @throws UnavailableError (69) for 6 stems when `installed` says htdemucs_6s is missing, naming how to get it.
 */
export function defaultModelForMode(mode: 2 | 4 | 6, installed?: (id: string) => boolean): string {
  if (mode === 6) {
    if (installed && !installed('htdemucs_6s')) {
      const entry = getModel('htdemucs_6s');
      throw new UnavailableError('6-stem separation needs the htdemucs_6s model, which is not installed', {
        code: 'E_MODEL_MISSING',
        hint: `download it once with ${pullHint(entry)}, or choose the model htdemucs_6s explicitly (downloaded on first use)`,
        details: { model: 'htdemucs_6s' },
      });
    }
    return 'htdemucs_6s';
  }
  if (installed?.('htdemucs')) return 'htdemucs';
  return 'classic';
}

/** "`stemkit models pull <id>` (~N MB)": the command that installs `entry` and its download size at the precision `auto` picks on a CPU. */
export function pullHint(entry: ModelEntry): string {
  const files = modelFiles(entry, entry.autoPrecision ?? 'fp32');
  const approx = files.reduce((a, f) => a + (f.size ?? f.approxSize ?? 0), 0);
  return `\`stemkit models pull ${entry.id}\`${approx > 0 ? ` (~${formatBytes(approx)})` : ''}`;
}

/**
 * For a bag of models with per-stem weights (htdemucs_ft: one-hot), the file roles of the sub-models that weigh on
 * any of `stems`; undefined for a model that is not a bag (all its files are always needed).
 * @throws UsageError (64) naming the model's stems when one of `stems` is not among them.
 */
export function rolesForStems(entry: ModelEntry, stems: readonly string[]): string[] | undefined {
  const weights = entry.params?.['bagWeights'];
  const sources = (entry.params?.['sources'] as string[] | undefined) ?? entry.stems;
  if (!Array.isArray(weights) || !sources) return undefined;
  const unknown = stems.filter((s) => !sources.includes(s));
  if (unknown.length > 0) throw new UsageError(`model ${entry.id} has no stem ${unknown.map((s) => `"${s}"`).join(', ')}`, { hint: `its stems: ${sources.join(', ')}` });
  const idx = stems.map((s) => sources.indexOf(s));
  return entry.files.filter((_, i) => idx.some((k) => ((weights as number[][])[i]?.[k] ?? 1) !== 0)).map((f) => f.role);
}

/** Clears the parsed registry (tests only). */
export function resetRegistryCacheForTests(): void {
  cache = undefined;
}
