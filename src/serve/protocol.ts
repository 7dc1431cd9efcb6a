/**
 * Messages between the server (parent) and its executor processes (src/serve/executor.ts), over the
 * child_process IPC channel. Plain JSON: everything crossing the channel is structured-cloneable data.
 */
import type { ResolvedConfig } from '../config/schema.js';
import type { LogEvent, ProgressEvent } from '../progress.js';
import type { FileResult, SeparateFileOptions, SeparatorSpec } from '../separate/separate.js';
import type { TtsJobResult } from '../tts/job.js';
import type { SynthesizeOptions } from '../tts/synthesize.js';
import type { AudioFormat } from '../audio/open.js';

/** A job error as the API shows it: stable code, one-line message, a hint, and the CLI's exit code. */
export interface JobError {
  code: string;
  message: string;
  hint?: string | undefined;
  exitCode: number;
}

/** Synthesis options without the observer (functions do not cross the channel). */
export type TtsVoiceOptions = Omit<SynthesizeOptions, 'onProgress' | 'onLog' | 'signal'>;

export interface SeparateTask {
  type: 'separate';
  id: string;
  /** The warm-model key: equal keys reuse one loaded Separator. */
  key: string;
  spec: SeparatorSpec;
  input: string;
  file: SeparateFileOptions;
}

export interface TtsTask {
  type: 'tts';
  id: string;
  key: string;
  model: string;
  load: { voices?: string; precision?: string };
  text: string;
  voice: TtsVoiceOptions;
  output: string;
  format: AudioFormat;
  bits?: 16 | 24 | 32;
}

export type ToExecutor =
  | { type: 'init'; config: ResolvedConfig; probe: boolean }
  | SeparateTask
  | TtsTask
  | { type: 'cancel'; id: string }
  | { type: 'evict'; key: string };

export type TaskResult = { kind: 'separate'; result: FileResult } | { kind: 'tts'; result: TtsJobResult };

export type FromExecutor =
  | { type: 'ready'; providers: ProviderStatus[] }
  | { type: 'progress'; id: string; event: ProgressEvent }
  | { type: 'log'; id: string; event: LogEvent }
  | { type: 'done'; id: string; ok: true; value: TaskResult; loaded: string[]; bytes: Record<string, number> }
  | { type: 'done'; id: string; ok: false; error: JobError; loaded: string[]; bytes: Record<string, number> }
  | { type: 'evicted'; key: string; loaded: string[] };

/** Whether an execution provider really created a session and ran a one-node model in an executor. */
export interface ProviderStatus {
  provider: 'cpu' | 'cuda';
  ok: boolean;
  detail: string;
}
