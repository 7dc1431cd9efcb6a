/**
 * Renderers turn library progress/log events into output on stderr. Chosen by selectRenderer().
 */
import type { Writable } from 'node:stream';
import type { LogEvent, ProgressEvent } from '../../progress.js';
import type { RendererKind } from './select.js';
import type { Style } from './style.js';

export interface Renderer {
  onProgress(event: ProgressEvent): void;
  onLog(event: LogEvent): void;
  /** Writes a line without corrupting live bars (bars are cleared and redrawn around it). */
  writeLine(stream: Writable, text: string): void;
  /** Stops live output (bars); idempotent. */
  stop(): void;
}

export interface RendererOptions {
  stderr: Writable;
  style: Style;
  verbose: boolean;
  /** Whether stdout is the terminal too: then result lines go through the bars like stderr's. */
  stdoutIsTTY?: boolean;
  /** Paths below it are shown relative to it (default process.cwd()). */
  cwd?: string;
  /** Milliseconds clock; injectable for tests of the throttling. */
  now?: () => number;
  /** Minimum milliseconds between two plain 'progress' lines of the same file and stage. */
  plainIntervalMs?: number;
  /** Minimum milliseconds between two JSON 'progress' events of the same file and stage. */
  jsonIntervalMs?: number;
}

function key(e: { stage: string; file?: string | undefined }): string {
  return `${e.stage}\u0000${e.file ?? ''}`;
}

function logLine(style: Style, e: LogEvent): string {
  const where = e.file ? `${e.file}: ` : '';
  if (e.level === 'warn') return style.warn(`warning: ${where}${e.message}`);
  if (e.level === 'debug') return style.dim(`debug: ${where}${e.message}`);
  return `${where}${e.message}`;
}

function shouldLog(e: LogEvent, verbose: boolean, quiet: boolean): boolean {
  if (e.level === 'debug') return verbose;
  if (e.level === 'info') return !quiet;
  return true;
}

/** Nothing but warnings (and debug lines with --verbose). */
export function createSilentRenderer(opts: RendererOptions): Renderer {
  return {
    onProgress() {},
    onLog(e) {
      if (shouldLog(e, opts.verbose, true)) opts.stderr.write(`${logLine(opts.style, e)}\n`);
    },
    writeLine(stream, text) {
      stream.write(`${text}\n`);
    },
    stop() {},
  };
}

/** JSON lines on stderr: `{"type":"progress",...}` and `{"type":"log",...}`; progress throttled per file and stage. */
export function createJsonRenderer(opts: RendererOptions): Renderer {
  const now = opts.now ?? (() => performance.now());
  const interval = opts.jsonIntervalMs ?? 250;
  const last = new Map<string, number>();
  return {
    onProgress(e) {
      const k = key(e);
      if (e.status === 'progress' && !(e.total > 0 && e.done >= e.total)) {
        const t = now();
        const prev = last.get(k);
        if (prev !== undefined && t - prev < interval) return;
        last.set(k, t);
      }
      opts.stderr.write(`${JSON.stringify({ type: 'progress', ...e })}\n`);
    },
    onLog(e) {
      if (e.level === 'debug' && !opts.verbose) return;
      opts.stderr.write(`${JSON.stringify({ type: 'log', ...e })}\n`);
    },
    writeLine(stream, text) {
      stream.write(`${text}\n`);
    },
    stop() {},
  };
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

function amount(e: ProgressEvent): string {
  if (e.total > 0) {
    const pct = Math.min(100, Math.floor((e.done / e.total) * 100));
    // Samples mean nothing to a listener; seconds of audio do (as demucs shows them).
    if (e.unit === 'samples' && e.sampleRate) return `${pct}% (${(e.done / e.sampleRate).toFixed(1)}/${(e.total / e.sampleRate).toFixed(1)} s)`;
    return `${pct}% (${e.done}/${e.total}${e.unit ? ` ${e.unit}` : ''})`;
  }
  return `${e.done}${e.unit ? ` ${e.unit}` : ''}`;
}

/** Plain lines for logs and pipes: one per stage start and done, progress at most every `plainIntervalMs`. */
export function createPlainRenderer(opts: RendererOptions): Renderer {
  const now = opts.now ?? (() => performance.now());
  const interval = opts.plainIntervalMs ?? 5000;
  const started = new Map<string, number>();
  const lastLine = new Map<string, number>();
  const write = (s: string): void => {
    opts.stderr.write(`${s}\n`);
  };
  return {
    onProgress(e) {
      const k = key(e);
      const label = e.file ? `${e.stage} ${e.file}` : e.stage;
      const msg = e.message ? ` - ${e.message}` : '';
      const t = now();
      if (e.status === 'start') {
        started.set(k, t);
        lastLine.set(k, t);
        write(`${label} ...${msg}`);
      } else if (e.status === 'done') {
        const t0 = started.get(k);
        started.delete(k);
        lastLine.delete(k);
        write(`${label} done${t0 === undefined ? '' : ` in ${formatSeconds(t - t0)}`}${msg}`);
      } else {
        const prev = lastLine.get(k);
        if (prev !== undefined && t - prev < interval) return;
        lastLine.set(k, t);
        write(`${label} ${amount(e)}${msg}`);
      }
    },
    onLog(e) {
      if (shouldLog(e, opts.verbose, false)) write(logLine(opts.style, e));
    },
    writeLine(stream, text) {
      stream.write(`${text}\n`);
    },
    stop() {},
  };
}

/** Builds the renderer for `kind`; the bar renderer (cli-progress) is only loaded when used. */
export async function createRenderer(kind: RendererKind, opts: RendererOptions): Promise<Renderer> {
  switch (kind) {
    case 'silent':
      return createSilentRenderer(opts);
    case 'json':
      return createJsonRenderer(opts);
    case 'plain':
      return createPlainRenderer(opts);
    case 'bars': {
      const { createBarRenderer } = await import('./bars.js');
      return createBarRenderer(opts);
    }
  }
}
