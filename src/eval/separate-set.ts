/**
 * Separates every mixture of a reference set with one model load, into `<outDir>/<track>/<stem>.wav`
 * (the estimates layout eval reads). Used by `eval --model` and `bench --quality`.
 */
import { join } from 'node:path';
import { StemkitError, type ExitCodeValue } from '../errors.js';
import type { ResolvedConfig } from '../config/schema.js';
import type { Observer } from '../progress.js';
import { loadSeparator, type SeparatorSpec } from '../separate/separate.js';
import { formatTimingLine } from '../separate/batch.js';
import { findReferenceTracks } from './layout.js';
import { assertNoOutputConflicts, findOutputConflicts } from '../util/output-safety.js';

/** @returns the model id (the name eval reports the estimates under) and the stems it wrote. */
export async function separateReferenceSet(
  referenceDir: string,
  outDir: string,
  spec: SeparatorSpec,
  opts: { config: ResolvedConfig } & Observer,
): Promise<{ modelId: string; stems: string[] }> {
  const observer: Observer = {};
  if (opts.signal) observer.signal = opts.signal;
  if (opts.onLog) observer.onLog = opts.onLog;
  if (opts.onProgress) observer.onProgress = opts.onProgress;
  const tracks = findReferenceTracks(referenceDir);
  const separator = await loadSeparator(spec, { config: opts.config, ...observer });
  try {
    // `--keep` may name the reference folder itself: no estimate may replace a mixture or a reference stem.
    const inputs = tracks.flatMap((t) => [...(t.mixture ? [t.mixture] : []), ...Object.values(t.stems)]);
    const writes = tracks.flatMap((t) => (t.mixture ? separator.stems.map((stem) => ({ output: join(outDir, t.name, `${stem}.wav`), owner: t.mixture! })) : []));
    assertNoOutputConflicts(findOutputConflicts(inputs, writes), 'keep the estimates in a folder outside the reference set');
    for (const t of tracks) {
      if (!t.mixture) continue;
      const r = await separator.separateFile(t.mixture, {
        outDir: join(outDir, t.name),
        filename: '{stem}.{ext}',
        format: 'wav',
        // Scores must see the model's raw output: rescaling would change a stem's level, and 32-bit float keeps it exact.
        bits: 32,
        clip: 'none',
        force: true,
        ...observer,
      });
      if (r.status === 'failed') {
        const e = r.error ?? { code: 'E_INTERNAL', exitCode: 70, message: 'separation failed' };
        throw new StemkitError(e.code, e.exitCode as ExitCodeValue, `separating ${t.name} failed: ${e.message}`, e.hint ? { hint: e.hint } : {});
      }
      opts.onLog?.({ level: 'info', message: formatTimingLine(r), file: t.mixture });
    }
    return { modelId: separator.modelId, stems: [...separator.stems] };
  } finally {
    await separator.dispose();
  }
}
