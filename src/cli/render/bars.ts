/**
 * cli-progress bars on stderr for interactive terminals: one bar per file (its current stage, with ETA)
 * and one batch bar. Loaded lazily by createRenderer().
 */
import cliProgress from 'cli-progress';
import type { Writable } from 'node:stream';
import type { ProgressEvent } from '../../progress.js';
import type { Renderer, RendererOptions } from './renderer.js';

interface BarState {
  bar: cliProgress.SingleBar;
  stage: string;
}

function name(file: string | undefined): string {
  if (!file) return '';
  // Long paths would wrap and break the redraw; the tail is the informative part.
  return file.length > 40 ? `...${file.slice(-37)}` : file;
}

export function createBarRenderer(opts: RendererOptions): Renderer {
  const multibar = new cliProgress.MultiBar(
    {
      stream: opts.stderr as NodeJS.WritableStream,
      format: '{stage} {name} |{bar}| {percentage}% | ETA {eta_formatted} | {value}/{total} {unit}{message}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      etaBuffer: 20,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, BarState>();
  let stopped = false;
  let pendingLogs = false;
  const log = (text: string): void => {
    pendingLogs = true;
    multibar.log(text);
  };

  const payload = (e: ProgressEvent): Record<string, string> => ({
    stage: e.stage.padEnd(10),
    name: name(e.file),
    unit: e.unit ?? '',
    // e.g. 'waiting for a free slot (3/3 heavy jobs running)'
    message: e.message ? ` ${e.message}` : '',
  });

  const onProgress = (e: ProgressEvent): void => {
    if (stopped) return;
    const k = e.stage === 'batch' ? '\u0000batch' : e.file ?? `\u0000${e.stage}`;
    // Totals of 0 mean "unknown": show an empty bar rather than a division by zero.
    const total = e.total > 0 ? e.total : 1;
    const value = e.total > 0 ? Math.min(e.done, e.total) : 0;
    let state = bars.get(k);
    if (e.stage === 'file' && e.status === 'done' && state) {
      multibar.remove(state.bar);
      bars.delete(k);
      log(`${opts.style.ok('done')} ${e.file ?? ''}${e.message ? ` - ${e.message}` : ''}\n`);
      return;
    }
    if (e.stage === 'file' && !state && e.status !== 'start') return;
    if (!state) {
      state = { bar: multibar.create(total, value, payload(e)), stage: e.stage };
      bars.set(k, state);
      return;
    }
    if (state.stage !== e.stage || e.status === 'start') {
      state.stage = e.stage;
      // A new stage restarts the ETA estimate, which would otherwise mix two rates.
      state.bar.start(total, value, payload(e));
      return;
    }
    state.bar.setTotal(total);
    state.bar.update(value, payload(e));
  };

  return {
    onProgress,
    onLog(e) {
      if (e.level === 'debug' && !opts.verbose) return;
      const where = e.file ? `${e.file}: ` : '';
      const text = e.level === 'warn' ? opts.style.warn(`warning: ${where}${e.message}`) : e.level === 'debug' ? opts.style.dim(`debug: ${where}${e.message}`) : `${where}${e.message}`;
      if (stopped) opts.stderr.write(`${text}\n`);
      else log(`${text}\n`);
    },
    writeLine(stream: Writable, text: string) {
      if (stopped || stream === opts.stderr) {
        if (stopped) stream.write(`${text}\n`);
        else log(`${text}\n`);
        return;
      }
      stream.write(`${text}\n`);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      // log() only buffers until the next redraw, and stop() does not flush: redraw once first.
      if (bars.size > 0 || pendingLogs) multibar.update();
      multibar.stop();
    },
  };
}
