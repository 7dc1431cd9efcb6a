/**
 * Separation jobs over many files (what `stemkit separate` runs): the heavy slot, one model load, the
 * outputs of the whole batch checked before the first file, skips of finished files, per-file video slots
 * and results; a failing file does not stop the others.
 */
import type { ResolvedConfig } from '../config/schema.js';
import { StemkitError, UsageError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';
import { isVideoPath } from '../audio/open.js';
import { assertNoOutputConflicts, findOutputConflicts, type OutputConflict, type PlannedWrite } from '../util/output-safety.js';
import { acquireSlots, summarizeBatch, type BatchSummary } from '../jobs/index.js';
import { DEFAULT_FILENAME_TEMPLATE } from './paths.js';
import { loadSeparator, type FileResult, type SeparateFileOptions, type Separator, type SeparatorSpec } from './separate.js';
import { emptyTimes, modelInputs, plannedOutputs, recipes, skipDecision } from './pipeline.js';

/** Options of a batch run. */
export interface SeparateBatchOptions extends Observer {
  config: ResolvedConfig;
  /** Expanded input files. */
  inputs: readonly string[];
  spec: SeparatorSpec;
  file: SeparateFileOptions;
  /** Wait for a free heavy (and, for videos, video) slot, or fail at once with BusyError (75). */
  wait?: boolean;
  timeoutSec?: number;
  /** Called after each file (for the CLI's per-file lines and JSON records). */
  onFile?(result: FileResult, index: number): void;
  /** Called once the model is loaded. */
  onLoaded?(separator: Separator): void;
  /** input → the folder its `{dir}` template field is relative to (expandInputs' roots); default: its own folder. */
  roots?: Readonly<Record<string, string>>;
  /** Inputs already known to be unusable (a folder that cannot be read): reported as failed files, first. */
  rejected?: ReadonlyArray<{ input: string; error: StemkitError }>;
}

export interface BatchResult {
  results: FileResult[];
  summary: BatchSummary;
  modelId: string;
  stems: string[];
  /**
   * 0 when no file failed; otherwise the exit code the failed files share (e.g. 66 when every failure is a
   * missing input), or 1 when they differ.
   */
  exitCode: number;
}

/**
 * Separates many files with one model load: files whose outputs all exist are skipped unless `force`,
 * a failing file does not stop the others, and each file holds a heavy job slot (plus a video slot for video
 * inputs) while it runs. Files run one after another: the model already uses the whole thread budget.
 * @throws InterruptedError (130) on abort; errors of loading the model (usage, unavailable, bad model).
 */
export async function separateBatch(opts: SeparateBatchOptions): Promise<BatchResult> {
  const t0 = performance.now();
  const observer: Observer = {};
  if (opts.onProgress) observer.onProgress = opts.onProgress;
  if (opts.onLog) observer.onLog = opts.onLog;
  if (opts.signal) observer.signal = opts.signal;
  const slotOptions = {
    config: opts.config,
    wait: opts.wait ?? true,
    ...(opts.timeoutSec !== undefined ? { timeoutSec: opts.timeoutSec } : {}),
    ...observer,
  };
  // The heavy slot is taken before the model is loaded and held for the whole batch: a job that is
  // waiting must not already hold a loaded model in memory (20 queued jobs would do exactly what the
  // limit exists to prevent). Video slots are per file, for video inputs only.
  const heavy = opts.inputs.length > 0 ? await acquireSlots({ pools: ['heavy'], ...slotOptions, ...(opts.inputs[0] ? { file: opts.inputs[0] } : {}) }) : undefined;
  let separator: Separator;
  try {
    separator = await loadSeparator(opts.spec, { config: opts.config, ...observer });
  } catch (e) {
    await heavy?.release();
    throw e;
  }
  const badRemux = (opts.file.remux ?? []).filter((s) => !separator.stems.includes(s));
  if (badRemux.length > 0) {
    await separator.dispose();
    await heavy?.release();
    throw new UsageError(`remux: ${badRemux.join(', ')} is not a stem of this run`, { hint: `choose from: ${separator.stems.join(', ')}`, details: { option: 'remux' } });
  }
  const fileOpts = (input: string): SeparateFileOptions => {
    const root = opts.roots?.[input];
    return root === undefined ? opts.file : { ...opts.file, inputRoot: root };
  };
  // Every output of the batch, checked against every input and every other output before the first file runs:
  // nothing is written when one output would replace an input or two inputs would write the same file.
  try {
    const writes = planBatch(opts.inputs, separator, fileOpts);
    const conflicts = findOutputConflicts([...opts.inputs, ...modelInputs(opts.spec)], writes);
    if (conflicts.length > 0) {
      const suggestion = suggestTemplate(conflicts, opts, separator);
      assertNoOutputConflicts(
        conflicts,
        suggestion !== undefined
          ? `a filename template that works for this batch: "${suggestion}"`
          : conflicts[0]!.kind === 'input'
            ? 'choose an output folder outside the inputs, or a filename template that cannot name an input'
            : 'rename one of the inputs, or use a filename template with more fields ({dir}, {trackext})',
        suggestion !== undefined ? { suggestedTemplate: suggestion } : {},
      );
    }
  } catch (e) {
    await separator.dispose();
    await heavy?.release();
    throw e;
  }
  opts.onLoaded?.(separator);
  const results: FileResult[] = [];
  try {
    let index = 0;
    for (const r of opts.rejected ?? []) {
      const result: FileResult = {
        input: r.input,
        status: 'failed',
        outputs: {},
        durationSec: 0,
        times: emptyTimes(0),
        rtf: 0,
        mbps: 0,
        provider: separator.provider,
        threads: separator.threads,
        warnings: [],
        error: { code: r.error.code, message: r.error.message, exitCode: r.error.exitCode, ...(r.error.hint ? { hint: r.error.hint } : {}) },
      };
      results.push(result);
      opts.onFile?.(result, index);
      index += 1;
    }
    const recipe = recipes.get(separator);
    let done = 0;
    for (const input of opts.inputs) {
      throwIfAborted(opts.signal);
      opts.onProgress?.({ stage: 'batch', status: done === 0 ? 'start' : 'progress', done, total: opts.inputs.length, unit: 'files' });
      const fo = fileOpts(input);
      // A file that will be skipped needs no job slot.
      const skip = recipe !== undefined && (await (async () => {
        try {
          return (await skipDecision(plannedOutputs(input, separator.stems, separator.modelId, fo), recipe(fo), fo.force)).skip;
        } catch {
          return false;
        }
      })());
      const lease = skip || !isVideoPath(input) ? { release: async () => {} } : await acquireSlots({ pools: ['video'], ...slotOptions, file: input });
      let result: FileResult;
      try {
        opts.onProgress?.({ stage: 'file', status: 'start', file: input, done: 0, total: 1 });
        result = await separator.separateFile(input, { ...fo, ...observer });
        opts.onProgress?.({ stage: 'file', status: 'done', file: input, done: 1, total: 1 });
      } finally {
        await lease.release();
      }
      results.push(result);
      opts.onFile?.(result, index);
      index += 1;
      done += 1;
    }
    opts.onProgress?.({ stage: 'batch', status: 'done', done: opts.inputs.length, total: opts.inputs.length, unit: 'files' });
  } finally {
    await separator.dispose();
    await heavy?.release();
  }
  const failedCodes = new Set(results.filter((r) => r.status === 'failed').map((r) => r.error?.exitCode ?? 1));
  const exitCode = failedCodes.size === 0 ? 0 : failedCodes.size === 1 ? [...failedCodes][0]! : 1;
  return { results, summary: summarizeBatch(results, (performance.now() - t0) / 1000), modelId: separator.modelId, stems: separator.stems, exitCode };
}

/** Every output of a batch, owned by its input. @throws UsageError (64) for a template that cannot work. */
function planBatch(inputs: readonly string[], separator: Separator, fileOpts: (input: string) => SeparateFileOptions): PlannedWrite[] {
  const writes: PlannedWrite[] = [];
  for (const input of inputs) {
    for (const output of Object.values(plannedOutputs(input, separator.stems, separator.modelId, fileOpts(input)))) writes.push({ output, owner: input });
  }
  return writes;
}

/**
 * A filename template under which the batch has no conflict, derived from the one in use: the input's folder
 * ({dir}) and/or its extension ({trackext}) added to {track}; undefined when none of them works.
 */
function suggestTemplate(conflicts: readonly OutputConflict[], opts: SeparateBatchOptions, separator: Separator): string | undefined {
  const base = opts.file.filename ?? DEFAULT_FILENAME_TEMPLATE;
  const withTrack = base.includes('{track}') ? base : `{track}/${base}`;
  const candidates = [
    withTrack.replace('{track}', '{dir}/{track}'),
    withTrack.replace('{track}', '{track}.{trackext}'),
    withTrack.replace('{track}', '{dir}/{track}.{trackext}'),
    `{dir}/{track}.{trackext}/{stem}.{ext}`,
  ].filter((t, i, all) => t !== base && all.indexOf(t) === i);
  if (conflicts.every((c) => c.kind === 'input')) candidates.push('{track}.stems/{stem}.{ext}', '{dir}/{track}.stems/{stem}.{ext}');
  for (const template of candidates) {
    try {
      const writes = planBatch(opts.inputs, separator, (input) => {
        const root = opts.roots?.[input];
        return { ...opts.file, filename: template, ...(root === undefined ? {} : { inputRoot: root }) };
      });
      if (findOutputConflicts([...opts.inputs, ...modelInputs(opts.spec)], writes).length === 0) return template;
    } catch {
      // this candidate cannot work; try the next
    }
  }
  return undefined;
}

/**
 * The one-line timing summary, e.g. `load 0.41s | decode 0.30s | infer 12.8s | write 0.52s | total 14.0s | RTF 0.06 | cpu ×4`.
 */
export function formatTimingLine(r: Pick<FileResult, 'times' | 'rtf' | 'provider' | 'threads'>): string {
  const s = (v: number): string => `${v < 10 ? v.toFixed(2) : v.toFixed(1)}s`;
  const t = r.times;
  const device = r.provider === 'cpu' ? `cpu ×${r.threads}` : r.provider;
  return `load ${s(t.load)} | decode ${s(t.decode)} | infer ${s(t.infer)} | write ${s(t.write)} | total ${s(t.total)} | RTF ${r.rtf.toFixed(2)} | ${device}`;
}
