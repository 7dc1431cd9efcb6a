/**
 * Progress is a typed event stream. The library emits events through a callback and never prints;
 * the CLI decides how to render them (bars on a TTY, plain lines otherwise, JSON lines with --json).
 */

export type ProgressStage =
  | 'load'
  | 'download'
  | 'decode'
  | 'separate'
  | 'infer'
  | 'phonemize'
  | 'synthesize'
  | 'encode'
  | 'write'
  | 'wait'
  | 'file'
  | 'batch'
  | 'bench'
  | 'eval';

export interface ProgressEvent {
  stage: ProgressStage;
  status: 'start' | 'progress' | 'done';
  /** The input (or model id, for downloads) the event belongs to. */
  file?: string;
  /** Units done so far; never decreases within one stage of one file. */
  done: number;
  /** Total units; constant within one stage of one file (0 when unknown). */
  total: number;
  /** What the units are, e.g. 'bytes', 'samples', 'chunks', 'sentences', 'files'. */
  unit?: string;
  /** With unit 'samples': their rate, so a renderer can show seconds of audio. */
  sampleRate?: number;
  /** Optional human text, e.g. 'waiting for a free slot (3/3 heavy jobs running)'. */
  message?: string;
}

/** A non-fatal message from the library (the CLI shows it as a yellow line, or a JSON event). */
export interface LogEvent {
  level: 'debug' | 'info' | 'warn';
  message: string;
  file?: string;
  /** The library option the message names (e.g. `remux`), so a front end can show it as its own flag or field. */
  option?: string;
}

export type ProgressCallback = (event: ProgressEvent) => void;
export type LogCallback = (event: LogEvent) => void;

/** The observer every long-running library function accepts. All members optional. */
export interface Observer {
  onProgress?: ProgressCallback;
  onLog?: LogCallback;
  signal?: AbortSignal;
}
