/**
 * What travels through Redis: job payloads (plain data, never secrets: no Redis URL, no credentials, no
 * program paths; each worker uses its own config for those), the result a worker stores, and the one-line
 * form of an error that keeps its stable code and exit code readable in `failedReason`.
 */
import type { SeparateFileOptions, SeparatorSpec } from '../separate/separate.js';
import type { SynthesizeOptions } from '../tts/synthesize.js';
import { isStemkitError } from '../errors.js';

/** A separation of one input: a path on shared storage (as the submitter sees it) or an http(s) URL. */
export interface SeparateJobData {
  v: 1;
  kind: 'separate';
  input: string;
  spec: SeparatorSpec;
  file: SeparateFileOptions;
  /** Time limit of the run, counted from when it gets its job slots (the submitter's `queue.jobTimeoutSec`). */
  timeoutSec?: number;
  /** Who submitted it, for `stemkit queue list`. */
  from: { host: string; user: string };
}

/** Synthesis options a TTS job may carry (the same as the CLI's). */
export type TtsJobOptions = Pick<SynthesizeOptions, 'voice' | 'speed' | 'speaker' | 'lengthScale' | 'noiseScale' | 'noiseW' | 'sentenceSilence' | 'lang'>;

/** One text to one audio file. */
export interface TtsJobData {
  v: 1;
  kind: 'tts';
  text: string;
  output: string;
  model: string;
  voices?: string;
  precision?: string;
  bits?: 16 | 24 | 32;
  options: TtsJobOptions;
  timeoutSec?: number;
  from: { host: string; user: string };
}

export type StemkitJobData = SeparateJobData | TtsJobData;

/** What a finished job returns (stored by BullMQ as the job's return value). */
export interface JobOutcome {
  kind: 'separate' | 'tts';
  status: 'ok' | 'skipped';
  /** stem (or 'audio') → output path, in the job's terms (before the worker's path mapping). */
  outputs: Record<string, string>;
  /** Seconds per phase (separate: load/decode/infer/write/total; tts: load/phonemize/infer/write/total). */
  times: Record<string, number>;
  /** Seconds of audio in (separate) or out (tts). */
  durationSec: number;
  provider: string;
  threads: number;
  /** The worker that ran it. */
  worker: { host: string; pid: number; id: string };
  /** Epoch ms when the job slots were taken and given back (its turn on the machine). */
  slots: { acquiredAt: number; releasedAt: number; waitedSec: number };
  warnings: string[];
}

/** Progress a worker stores in the job (BullMQ `progress`), for `--wait` and `stemkit queue list`. */
export interface JobProgressRecord {
  stage: string;
  status: 'start' | 'progress' | 'done';
  done: number;
  total: number;
  unit?: string;
  message?: string;
}

/** Exit codes of input errors: the job fails at once, never retried (another worker would fail the same way). */
export const PERMANENT_EXIT_CODES: ReadonlySet<number> = new Set([64, 65, 66]);

export interface JobError {
  code: string;
  exitCode: number;
  message: string;
}

/** `[E_BAD_INPUT 65] song.wav: not a WAV file` — the failedReason a worker stores. */
export function encodeJobError(e: unknown): string {
  const err = describeError(e);
  return `[${err.code} ${err.exitCode}] ${err.message}`;
}

/** The code, exit code and message of any thrown value (unknown errors are E_INTERNAL, 70). */
export function describeError(e: unknown): JobError {
  if (isStemkitError(e)) return { code: e.code, exitCode: e.exitCode, message: e.message };
  return { code: 'E_INTERNAL', exitCode: 70, message: e instanceof Error ? e.message : String(e) };
}

/**
 * Reads an encoded failedReason back. BullMQ's own reasons (e.g. "job stalled more than allowable limit")
 * have no code: they are E_QUEUE, exit 75 (temporary: resubmit or `stemkit queue retry`).
 */
export function decodeJobError(reason: string | undefined): JobError | undefined {
  if (reason === undefined || reason === '') return undefined;
  const m = /^\[([A-Z0-9_]+) (\d+)\] ([\s\S]*)$/.exec(reason);
  if (m) return { code: m[1]!, exitCode: Number(m[2]), message: m[3]! };
  return { code: 'E_QUEUE', exitCode: 75, message: reason };
}

/** Redis keys stemkit keeps beside BullMQ's (same `bull:<queue>:` namespace). */
export const queueKeys = (queueName: string) => ({
  /** `<prefix><worker id>`: a worker's heartbeat record (JSON, expires when the worker stops beating). */
  workerPrefix: `bull:${queueName}:stemkit:worker:`,
  /** A set of job ids `stemkit queue cancel` asked the running workers to stop. */
  cancel: `bull:${queueName}:stemkit:cancel`,
});

/** What a worker's heartbeat says about it (`stemkit queue status`). */
export interface WorkerRecord {
  id: string;
  host: string;
  pid: number;
  profile: string;
  device: string;
  cpuThreads: number;
  limits: { heavy: number; tts: number; video: number };
  concurrency: number;
  runtimeDir: string;
  startedAt: string;
  /** Jobs running now. */
  active: Array<{ id: string; kind: string; since: string }>;
  /** Jobs finished since start. */
  done: number;
  failed: number;
  closing: boolean;
}
