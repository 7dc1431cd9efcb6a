/**
 * `stemkit eval --model`: separates every track's mixture with one model load, into
 * `<estimates>/<track>/<stem>.wav`, so the dataset → table path is one command.
 */
import { join } from 'node:path';
import { StemkitError, UsageError, type ExitCodeValue } from '../../errors.js';
import { findReferenceTracks } from '../../eval/layout.js';
import { loadSeparator, formatTimingLine, type SeparatorSpec } from '../../separate/separate.js';
import type { CliContext } from '../context.js';
import type { EvalFlags } from './eval.js';

function numberFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max} (got "${value}")`);
  return n;
}

/** Separates every mixture; returns the system name (the model id) for the report. */
export async function separateForEval(ctx: CliContext, referenceDir: string, estimatesDir: string, flags: EvalFlags): Promise<string> {
  const tracks = findReferenceTracks(referenceDir).filter((t) => t.mixture);
  const spec: SeparatorSpec = { model: flags.model! };
  if (flags.modelPath) spec.modelPath = flags.modelPath;
  if (flags.stems) spec.stems = flags.stems.split(',').map((s) => s.trim()).filter(Boolean);
  const shifts = numberFlag('shifts', flags.shifts, 0, 20);
  if (shifts !== undefined) spec.shifts = shifts;
  const overlap = numberFlag('overlap', flags.overlap, 0, 0.9);
  if (overlap !== undefined) spec.overlap = overlap;
  const separator = await loadSeparator(spec, { config: ctx.config, signal: ctx.signal, onProgress: (e) => ctx.onProgress(e), onLog: (e) => ctx.onLog(e) });
  try {
    for (const t of tracks) {
      const r = await separator.separateFile(t.mixture!, {
        outDir: join(estimatesDir, t.name),
        filename: '{stem}.{ext}',
        format: 'wav',
        // Scores must see the model's raw output: rescaling would change every stem's level.
        clip: 'none',
        bits: 32,
        force: true,
        signal: ctx.signal,
        onProgress: (e) => ctx.onProgress({ ...e, file: t.name }),
        onLog: (e) => ctx.onLog(e),
      });
      if (r.status === 'failed') {
        const e = r.error ?? { code: 'E_INTERNAL', exitCode: 70, message: 'unknown error' };
        throw new StemkitError(e.code, e.exitCode as ExitCodeValue, `separating ${t.name} failed: ${e.message}`, e.hint ? { hint: e.hint } : {});
      }
      ctx.onLog({ level: 'info', message: `${t.name}: ${formatTimingLine(r)}` });
    }
    return separator.modelId;
  } finally {
    await separator.dispose();
  }
}
