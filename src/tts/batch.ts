/**
 * TTS jobs as every front end runs them: one job (text → an audio file and its timing outputs) and a batch
 * (one model load, bounded concurrency, each job under the machine's job slots, a failed job a failed
 * result). `stemkit tts` (one text or `--jsonl`), `stemkit serve`'s executors and, through them, the queue
 * worker call these functions; they only render what comes back. The same shape as separation's
 * `separateBatch`.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { AudioFormat } from '../audio/open.js';
import type { AudioSink } from '../audio/raw-audio.js';
import type { ResolvedConfig } from '../config/schema.js';
import { DataError, InputError } from '../errors.js';
import { acquireSlots } from '../jobs/semaphore.js';
import { batchWorkers, runBounded, summarizeBatch, type BatchSummary } from '../jobs/batch.js';
import type { Observer } from '../progress.js';
import { assertNoOutputConflicts, findOutputConflicts } from '../util/output-safety.js';
import { failedJob, observerOf, synthesizeToSink, type ParsedJobLine, type SinkJobOptions, type TtsBatchJob, type TtsJobResult } from './job.js';
import { wantsTimestamps, writeTimingOutputs, type TimingOutputs, type TimingWritten } from './outputs.js';
import type { LoadVoiceModelOptions, SynthesizeOptions, TtsModel, VoiceModelSpec } from './synthesize.js';

/** The voice settings of a job (synthesis options without the observer). */
export type TtsVoiceSettings = Omit<SynthesizeOptions, 'onProgress' | 'onLog' | 'signal'>;

/** One TTS job: what to say, where to write it, how. */
export interface TtsJobSpec {
  text: string;
  /** The audio file; its extension gives the format unless `format` is set. */
  output: string;
  voice?: TtsVoiceSettings;
  /** Timestamps JSON / subtitles files written once the audio is complete. */
  timing?: TimingOutputs;
  /** Collect timestamps into the result even when no timing file is asked for. */
  timestamps?: boolean;
  /** Resample to this rate (default: the model's). */
  outputRate?: number;
  format?: AudioFormat;
  /** WAV sample format. */
  bits?: 16 | 24 | 32;
}

export interface RunTtsJobOptions extends Observer {
  config: Pick<ResolvedConfig, 'ffmpegPath'>;
  /** Model load seconds to report in the result (0 for a warm model or a later job of a batch). */
  loadSeconds?: number;
  /** Write into this sink (opened at the output rate) instead of opening `output`: a pipe, e.g. stdout. */
  sink?: AudioSink;
  /** Each sentence's timestamps once its audio is in the sink (streaming). */
  onSentence?: SinkJobOptions['onSentence'];
}

export interface TtsJobOutcome {
  result: TtsJobResult;
  /** The timing files written. */
  written: TimingWritten;
}

/** Opens a mono audio file sink for TTS (temp file + rename; stale temps of an earlier crash swept first). */
export async function openTtsSink(
  output: string,
  o: { sampleRate: number; format?: AudioFormat; bits?: 16 | 24 | 32; ffmpegPath?: string | undefined; signal?: AbortSignal | undefined },
): Promise<AudioSink> {
  const [{ createAudioSink }, { sweepStaleTemps }] = await Promise.all([import('../audio/open.js'), import('../util/atomic.js')]);
  await sweepStaleTemps([resolve(output)]);
  return createAudioSink(output, {
    sampleRate: o.sampleRate,
    channels: 1,
    ...(o.format !== undefined ? { format: o.format } : {}),
    ...(o.bits !== undefined ? { bits: o.bits } : {}),
    ...(o.ffmpegPath ? { ffmpegPath: o.ffmpegPath } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

/**
 * Runs one job on a loaded model: opens the output (unless a sink is given), synthesises into it, then
 * writes the timing files. Nothing half-written keeps a final name.
 * @throws the synthesis or output errors (StemkitError with a code and exit code).
 */
export async function runTtsJob(model: TtsModel, job: TtsJobSpec, opts: RunTtsJobOptions): Promise<TtsJobOutcome> {
  const timing = job.timing ?? {};
  const sink =
    opts.sink ??
    (await openTtsSink(job.output, {
      sampleRate: job.outputRate ?? model.sampleRate,
      ...(job.format !== undefined ? { format: job.format } : {}),
      ...(job.bits !== undefined ? { bits: job.bits } : {}),
      ffmpegPath: opts.config.ffmpegPath,
      signal: opts.signal,
    }));
  const result = await synthesizeToSink(model, job.text, sink, {
    ...job.voice,
    ...observerOf(opts),
    loadSeconds: opts.loadSeconds ?? 0,
    timestamps: job.timestamps === true || wantsTimestamps(timing),
    ...(job.outputRate !== undefined ? { outputRate: job.outputRate } : {}),
    ...(opts.onSentence ? { onSentence: opts.onSentence } : {}),
  });
  const written = result.timestamps ? await writeTimingOutputs(result.timestamps, job.text, timing) : {};
  return { result, written };
}

/** The settings of a batch line over the batch's defaults (a line's own values win). */
export function lineVoice(defaults: TtsVoiceSettings, job: TtsBatchJob): TtsVoiceSettings {
  const v: TtsVoiceSettings = { ...defaults };
  for (const k of ['voice', 'speed', 'speaker', 'lengthScale', 'noiseScale', 'noiseW', 'sentenceSilence', 'lang'] as const) {
    if (job[k] !== undefined) (v as Record<string, unknown>)[k] = job[k];
  }
  return v;
}

/**
 * Before the model loads: no line of a batch may write over an input of the batch (its source, a text
 * file, `inputs`) or over another line's output.
 * @throws UsageError (64, E_OUTPUT_IS_INPUT / E_OUTPUT_COLLISION) naming both paths.
 */
export function checkBatchOutputs(lines: readonly ParsedJobLine[], source: string, inputs: readonly string[] = [], baseDir = process.cwd()): void {
  const jobs = lines.flatMap((l) => (l.ok ? [l.job] : []));
  const at = (p: string): string => resolve(baseDir, p);
  assertNoOutputConflicts(
    findOutputConflicts(
      [source, ...inputs, ...jobs.flatMap((j) => (j.file !== undefined ? [at(j.file)] : []))],
      jobs.flatMap((j) => [j.output, j.timestamps, j.subtitles].filter((p): p is string => p !== undefined).map((p) => ({ output: at(p), owner: `${source}:${j.line}` }))),
    ),
    'give every line its own output file, and none that is an input of the batch',
  );
}

/** A model to load for the batch (loaded once, released at the end). */
export interface TtsModelToLoad {
  spec: VoiceModelSpec;
  load?: Omit<LoadVoiceModelOptions, 'config' | keyof Observer>;
}

export interface TtsBatchOptions extends Observer {
  config: ResolvedConfig;
  /** A loaded model (the caller releases it), or one to load. */
  model: TtsModel | TtsModelToLoad;
  /** The batch's lines (parseJobLines); a line that did not parse becomes a failed result. */
  lines: readonly ParsedJobLine[];
  /** Where the lines come from, for messages (e.g. the JSONL path). */
  source: string;
  /** Settings for every line; a line's own values win. */
  defaults?: TtsVoiceSettings;
  outputRate?: number;
  bits?: 16 | 24 | 32;
  /** Relative `file`, `output`, `timestamps` and `subtitles` paths are resolved against it (default: the working directory). */
  baseDir?: string;
  /** Wait for free job slots (default) or fail a line at once with BusyError (75). */
  wait?: boolean;
  timeoutSec?: number;
  /** What `stemkit status` shows for a line's slots (` (line N)` is added). Default `tts batch <source>`. */
  command?: string;
  /** Each line's outcome as it ends (lines run concurrently: not in line order). */
  onResult?(item: TtsBatchItem): void;
}

export interface TtsBatchItem {
  line: number;
  /** The line's `output` as written in the batch. */
  output: string;
  result: TtsJobResult;
  written: TimingWritten;
  /** True for a line that did not parse (it never ran). */
  invalid: boolean;
  /** What failed a line (its `details.option` names the option involved). */
  error?: unknown;
}

export interface TtsBatchResult {
  /** In line order. */
  items: TtsBatchItem[];
  summary: BatchSummary;
  loadSeconds: number;
  /** 0 when every line succeeded, else 1. */
  exitCode: number;
}

function isLoaded(m: TtsModel | TtsModelToLoad): m is TtsModel {
  return typeof (m as TtsModel).synthesize === 'function';
}

async function lineText(job: TtsBatchJob, source: string, baseDir: string): Promise<string> {
  let text = job.text;
  if (text === undefined) {
    const path = resolve(baseDir, job.file!);
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      throw new InputError(`text file not found or unreadable: ${path}`, { code: 'E_INPUT_NOT_FOUND', cause, hint: `Check the "file" of line ${job.line} in ${source}.` });
    }
  }
  if (text.trim() === '') throw new DataError(`${source}:${job.line}: the text is empty`, { code: 'E_EMPTY_TEXT' });
  return text;
}

/**
 * Runs a batch of TTS jobs on one model: at most as many lines at once as the heavy and tts pools allow,
 * each line under its own heavy + tts slots; a line that fails (bad line, unreadable text file, synthesis
 * or output error) is a failed result and the others go on.
 * @throws UsageError (64) when lines would overwrite an input or each other (before anything loads);
 *   InterruptedError (130) when the signal aborts; BusyError (75) with `wait: false` and no free slot;
 *   the model's load errors.
 */
export async function synthesizeBatch(opts: TtsBatchOptions): Promise<TtsBatchResult> {
  const t0 = performance.now();
  const baseDir = opts.baseDir ?? process.cwd();
  checkBatchOutputs(opts.lines, opts.source, [], baseDir);
  const observer = observerOf(opts);
  let model: TtsModel;
  if (isLoaded(opts.model)) model = opts.model;
  else {
    const { loadVoiceModel } = await import('./synthesize.js');
    model = await loadVoiceModel(opts.model.spec, { ...opts.model.load, config: opts.config, ...observer });
  }
  const defaults = opts.defaults ?? {};
  const command = opts.command ?? `tts batch ${opts.source}`;
  let items: TtsBatchItem[];
  try {
    const workers = batchWorkers(opts.config, opts.lines.length, ['heavy', 'tts']);
    items = await runBounded(
      opts.lines,
      workers,
      async (entry, index): Promise<TtsBatchItem> => {
        if (!entry.ok) {
          const item: TtsBatchItem = { line: entry.line, output: entry.output, result: failedJob(entry.output, model, entry.error), written: {}, invalid: true, error: entry.error };
          opts.onResult?.(item);
          return item;
        }
        const job = entry.job;
        try {
          const text = await lineText(job, opts.source, baseDir);
          const at = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(baseDir, p));
          const timing: TimingOutputs = {
            ...(job.timestamps !== undefined ? { timestamps: at(job.timestamps)! } : {}),
            ...(job.subtitles !== undefined ? { subtitles: at(job.subtitles)! } : {}),
            ...(job.maxCueChars !== undefined ? { maxCueChars: job.maxCueChars } : {}),
          };
          const lease = await acquireSlots({
            pools: ['heavy', 'tts'],
            config: opts.config,
            wait: opts.wait ?? true,
            ...(opts.timeoutSec !== undefined ? { timeoutSec: opts.timeoutSec } : {}),
            command: `${command} (line ${job.line})`,
            ...observer,
          });
          let outcome: TtsJobOutcome;
          try {
            outcome = await runTtsJob(
              model,
              {
                text,
                output: at(job.output)!,
                voice: lineVoice(defaults, job),
                timing,
                ...(opts.outputRate !== undefined ? { outputRate: opts.outputRate } : {}),
                ...(opts.bits !== undefined ? { bits: opts.bits } : {}),
              },
              {
                config: opts.config,
                ...observer,
                ...(opts.onProgress ? { onProgress: (e) => opts.onProgress!({ ...e, file: job.output }) } : {}),
                loadSeconds: index === 0 ? model.loadSeconds : 0,
              },
            );
          } finally {
            await lease.release();
          }
          const item: TtsBatchItem = { line: job.line, output: job.output, ...outcome, invalid: false };
          opts.onResult?.(item);
          return item;
        } catch (e) {
          if (opts.signal?.aborted) throw e;
          const item: TtsBatchItem = { line: job.line, output: job.output, result: failedJob(job.output, model, e), written: {}, invalid: false, error: e };
          opts.onResult?.(item);
          return item;
        }
      },
      opts.signal,
    );
  } finally {
    if (!isLoaded(opts.model)) await model.dispose();
  }
  const results = items.map((i) => i.result);
  const summary = summarizeBatch(results, (performance.now() - t0) / 1000);
  return { items, summary, loadSeconds: model.loadSeconds, exitCode: summary.failed > 0 ? 1 : 0 };
}
