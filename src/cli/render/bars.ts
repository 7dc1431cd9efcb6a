/**
 * cli-progress bars on stderr for interactive terminals: one bar for the file being processed (its current
 * stage, in seconds of audio where the stage counts samples, with ETA) and, for batches, one bar for the
 * batch. Loaded lazily by createRenderer().
 *
 * Everything printed while bars are on screen goes through the bar library (`MultiBar.log`), which clears
 * the bars, writes the line and redraws them: a direct write would be overwritten by the next redraw. Bars
 * are cleared when the run ends, so only the result lines stay in the scrollback.
 */
import cliProgress from 'cli-progress';
import { clearScreenDown } from 'node:readline';
import type { Writable } from 'node:stream';
import type { ProgressEvent } from '../../progress.js';
import type { Renderer, RendererOptions } from './renderer.js';

/** What one bar line shows; `formatBarLine` turns it into text of a given width. */
export interface BarLine {
  stage: string;
  /** The file (or model, for downloads); shortened from the left to fit. */
  name: string;
  value: number;
  total: number;
  unit?: string | undefined;
  /** With unit 'samples': the rate, so the amount is shown in seconds of audio. */
  sampleRate?: number | undefined;
  /** Seconds left, when known. */
  etaSec?: number | undefined;
  message?: string | undefined;
}

function clock(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function amount(l: BarLine): string {
  if (l.unit === 'samples' && l.sampleRate !== undefined && l.sampleRate > 0) {
    return `${(l.value / l.sampleRate).toFixed(1)}/${(l.total / l.sampleRate).toFixed(1)} s`;
  }
  if (l.unit === 'bytes') return `${(l.value / 1e6).toFixed(1)}/${(l.total / 1e6).toFixed(1)} MB`;
  return `${l.value}/${l.total}${l.unit ? ` ${l.unit}` : ''}`;
}

/**
 * One bar line, never longer than `columns − 1` characters (a line filling the last column would make
 * some terminals wrap, and the redraw would then climb one line too few). The bar shrinks first, then
 * the name (keeping its end, the informative part), then the optional parts go.
 */
export function formatBarLine(l: BarLine, columns: number): string {
  const width = Math.max(1, columns - 1);
  const known = l.total > 0;
  const ratio = known ? Math.min(1, Math.max(0, l.value / l.total)) : 0;
  const pct = `${String(Math.floor(ratio * 100)).padStart(3)}%`;
  // An unknown ETA keeps its place, so the bar does not change width when the first estimate arrives.
  const eta = ratio >= 1 ? '' : l.etaSec !== undefined && Number.isFinite(l.etaSec) ? ` ETA ${clock(l.etaSec)}` : ' ETA -:--';
  const tail = l.message ? ` ${l.message}` : known ? ` ${pct} ${amount(l)}${eta}` : '';
  const stage = l.stage.padEnd(9);
  const fit = (s: string): string => (s.length <= width ? s : s.slice(0, width));
  const barFor = (n: number): string => {
    const full = Math.round(ratio * n);
    return `${'█'.repeat(full)}${'░'.repeat(n - full)}`;
  };
  // `${stage} ${name} ${bar}${tail}`: the bar takes what is left, 10 to 30 cells. When that is too little
  // the path becomes its file name, then the bar goes, then the name loses its start.
  const shorten = (n: string, room: number): string => (n.length <= room ? n : room > 3 ? `…${n.slice(-(room - 1))}` : '');
  const fixed = stage.length + 1 + tail.length;
  const room = (n: string): number => width - fixed - (n ? n.length + 1 : 0);
  let name = l.name;
  if (room(name) < 10) name = name.slice(name.lastIndexOf('/') + 1);
  if (room(name) < 10) {
    const short = shorten(name, width - fixed - 1);
    return fit(`${stage}${short ? ` ${short}` : ''}${tail}`);
  }
  return fit(`${stage} ${name ? `${name} ` : ''}${barFor(Math.min(30, room(name)))}${tail}`);
}

function displayName(file: string | undefined, cwd: string): string {
  if (!file) return '';
  return file.startsWith(`${cwd}/`) ? file.slice(cwd.length + 1) : file;
}

interface Payload {
  stage: string;
  name: string;
  unit?: string | undefined;
  sampleRate?: number | undefined;
  message?: string | undefined;
}

export function createBarRenderer(opts: RendererOptions): Renderer {
  const stream = opts.stderr as NodeJS.WriteStream;
  const cwd = opts.cwd ?? process.cwd();
  const multibar = new cliProgress.MultiBar({
    stream,
    format: (_options: unknown, params: { value: number; total: number; eta: number | string }, payload: Payload) =>
      formatBarLine(
        {
          stage: payload.stage,
          name: payload.name,
          value: params.value,
          total: params.total,
          unit: payload.unit,
          sampleRate: payload.sampleRate,
          // cli-progress reports 'NULL'/'INF' (strings) until it has a rate.
          etaSec: typeof params.eta === 'number' && params.value > 0 ? params.eta : undefined,
          message: payload.message,
        },
        stream.columns || 80,
      ),
    hideCursor: true,
    // Terminal line wrapping stays on: log lines longer than the terminal wrap instead of being cut.
    // Bar lines are formatted to fit, so they never wrap.
    linewrap: true,
    clearOnComplete: true,
    stopOnComplete: false,
    etaBuffer: 20,
    fps: 10,
    // cli-progress would stop the bars on SIGINT itself; the CLI's handler decides what happens.
    gracefulExit: false,
  });
  let fileBar: cliProgress.SingleBar | undefined;
  let fileStage = '';
  let batchBar: cliProgress.SingleBar | undefined;
  let stopped = false;
  let pendingLogs = 0;
  // cli-progress clears only the first bar row before writing buffered lines; a line that wraps would leave
  // the rest of the old bars beside it. Clear everything below the cursor instead.
  multibar.on('redraw-pre', () => {
    if (pendingLogs === 0) return;
    pendingLogs = 0;
    clearScreenDown(stream);
  });
  const active = (): boolean => fileBar !== undefined || batchBar !== undefined;
  const log = (target: Writable, text: string): void => {
    if (stopped || !active()) {
      target.write(`${text}\n`);
      return;
    }
    pendingLogs += 1;
    multibar.log(`${text}\n`);
    // Flush now rather than at the next tick, so lines appear in order with anything written after stop().
    multibar.update();
  };

  const payload = (e: ProgressEvent): Payload => ({
    stage: e.stage,
    name: displayName(e.file, cwd),
    unit: e.unit,
    sampleRate: e.sampleRate,
    message: e.message,
  });

  const onProgress = (e: ProgressEvent): void => {
    if (stopped) return;
    // Totals of 0 mean "unknown": an empty bar rather than a division by zero.
    const total = e.total > 0 ? e.total : 0;
    const value = e.total > 0 ? Math.min(e.done, e.total) : 0;
    if (e.stage === 'batch') {
      // A batch of one is the file's own bar.
      if (e.total <= 1) return;
      if (!batchBar) batchBar = multibar.create(total, value, payload(e));
      else batchBar.update(value, payload(e));
      return;
    }
    // 'file' only brackets the stages; the result lines say how each file ended.
    if (e.stage === 'file') return;
    if (!fileBar) {
      fileBar = multibar.create(total, value, payload(e));
      fileStage = e.stage;
    } else if (e.status === 'start' || fileStage !== e.stage) {
      // A new stage restarts the ETA estimate, which would otherwise mix two rates.
      fileStage = e.stage;
      fileBar.start(total, value, payload(e));
    } else {
      fileBar.setTotal(total);
      fileBar.update(value, payload(e));
    }
  };

  return {
    onProgress,
    onLog(e) {
      if (e.level === 'debug' && !opts.verbose) return;
      const where = e.file ? `${e.file}: ` : '';
      const text = e.level === 'warn' ? opts.style.warn(`warning: ${where}${e.message}`) : e.level === 'debug' ? opts.style.dim(`debug: ${where}${e.message}`) : `${where}${e.message}`;
      log(opts.stderr, text);
    },
    writeLine(target: Writable, text: string) {
      // stdout on the same terminal: through the bar library like everything else. stdout redirected: as is.
      if (target === opts.stderr || opts.stdoutIsTTY === true) log(target, text);
      else target.write(`${text}\n`);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (!active()) return;
      multibar.update();
      multibar.stop();
    },
  };
}
