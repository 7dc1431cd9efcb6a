/**
 * `stemkit eval --model`: builds the separation spec from the flags and separates the reference set.
 */
import { UsageError } from '../../errors.js';
import { separateReferenceSet } from '../../eval/separate-set.js';
import type { SeparatorSpec } from '../../separate/separate.js';
import type { CliContext } from '../context.js';
import type { EvalFlags } from './eval.js';

function numberFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max} (got "${value}")`);
  return n;
}

/** Separates every mixture; returns the model id (the system name in the report) and the stems written. */
export async function separateForEval(ctx: CliContext, referenceDir: string, estimatesDir: string, flags: EvalFlags): Promise<{ modelId: string; stems: string[] }> {
  const spec: SeparatorSpec = { model: flags.model! };
  if (flags.modelPath) spec.modelPath = flags.modelPath;
  if (flags.stems) spec.stems = flags.stems.split(',').map((s) => s.trim()).filter(Boolean);
  const shifts = numberFlag('shifts', flags.shifts, 0, 20);
  if (shifts !== undefined) spec.shifts = shifts;
  const overlap = numberFlag('overlap', flags.overlap, 0, 0.9);
  if (overlap !== undefined) spec.overlap = overlap;
  return separateReferenceSet(referenceDir, estimatesDir, spec, {
    config: ctx.config,
    signal: ctx.signal,
    onProgress: (e) => ctx.onProgress(e),
    onLog: (e) => ctx.onLog(e),
  });
}
