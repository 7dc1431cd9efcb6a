/**
 * The body of `stemkit eval`, imported lazily so `stemkit --help` stays fast.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { pidAlive } from '../../util/atomic.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError, UsageError } from '../../errors.js';
import { BASELINES, evaluate, type Baseline, type EvalReport } from '../../eval/eval.js';
import { parseStemMap } from '../../eval/layout.js';
import type { CliContext } from '../context.js';
import { fmt, formatTable } from '../render/table.js';
import type { EvalFlags } from './eval.js';

function parseBaselines(values: readonly string[] | undefined): Baseline[] {
  const names = (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const n of names) {
    if (!BASELINES.includes(n as Baseline)) {
      throw new UsageError(`unknown baseline "${n}"`, { hint: `Use one of: ${BASELINES.join(', ')}.` });
    }
  }
  return [...new Set(names as Baseline[])];
}

/** Renders the per-track and aggregate tables. */
export function formatEvalReport(report: EvalReport, style: CliContext['style']): string {
  const out: string[] = [];
  for (const t of report.tracks) {
    out.push(style.bold(`${t.track}`) + style.dim(`  (${(t.frames / t.sampleRate).toFixed(1)} s, ${t.channels} ch, ${t.sampleRate} Hz)`));
    const rows = t.scores.map((s) => [
      s.stem,
      s.system,
      fmt(s.sdr),
      fmt(s.siSdr),
      fmt(s.sdrImprovement),
      fmt(s.siSdrImprovement),
      s.silent ? style.dim('silent reference') : '',
    ]);
    out.push(
      formatTable(
        [
          { header: 'stem' },
          { header: 'system' },
          { header: 'SDR', align: 'right' },
          { header: 'SI-SDR', align: 'right' },
          { header: 'ΔSDR', align: 'right' },
          { header: 'ΔSI-SDR', align: 'right' },
          { header: '' },
        ],
        rows,
      ),
    );
    if (t.missing.length) out.push(style.fail(`missing estimates: ${t.missing.join(', ')}`));
    for (const tr of t.trimmed) out.push(style.warn(`trimmed ${tr.frames} extra frames of ${tr.file}`));
    out.push('');
  }
  out.push(style.bold('Per stem (silent references excluded; Δ = improvement over the mixture as estimate, dB)'));
  out.push(
    formatTable(
      [
        { header: 'stem' },
        { header: 'system' },
        { header: 'n', align: 'right' },
        { header: 'SDR mean', align: 'right' },
        { header: 'SDR median', align: 'right' },
        { header: 'SI-SDR mean', align: 'right' },
        { header: 'SI-SDR median', align: 'right' },
        { header: 'ΔSDR mean', align: 'right' },
      ],
      [...report.aggregate]
        .sort((a, b) => a.stem.localeCompare(b.stem) || report.systems.indexOf(a.system) - report.systems.indexOf(b.system))
        .map((a) => [a.stem, a.system, String(a.count), fmt(a.sdrMean), fmt(a.sdrMedian), fmt(a.siSdrMean), fmt(a.siSdrMedian), fmt(a.sdrImprovementMean)]),
    ),
  );
  if (report.oracleStft) {
    out.push(style.dim(`oracle-irm: STFT n_fft ${report.oracleStft.nFft}, hop ${report.oracleStft.hop}, periodic Hann, mask ${report.oracleStft.mask}`));
  }
  return out.join('\n');
}

/** Removes the temporary estimate folders of eval runs killed before their cleanup (their pid is gone). */
async function sweepEvalWorkDirs(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const name of names) {
    const m = /^stemkit-eval-(\d+)-/.exec(name);
    if (m && !pidAlive(Number(m[1]))) await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
}

export async function runEvalCommand(ctx: CliContext, referenceDir: string, estimatesDir: string | undefined, flags: EvalFlags): Promise<number> {
  const baselines = parseBaselines(flags.baseline);
  const map = parseStemMap(flags.map ?? []);
  if (estimatesDir && flags.model) {
    throw new UsageError('give either an estimates folder or --model, not both', { hint: 'stemkit eval <refs> <estimates>  or  stemkit eval <refs> --model <id>' });
  }
  if (!estimatesDir && !flags.model && baselines.length === 0) {
    throw new UsageError('nothing to score', { hint: 'Pass an estimates folder, --model <id>, or --baseline mixture,oracle-irm.' });
  }
  let workDir: string | undefined;
  let systemName = 'estimates';
  let estimates = estimatesDir ? resolve(estimatesDir) : undefined;
  let stems = flags.stems ? flags.stems.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  try {
    if (flags.model) {
      const { separateForEval } = await import('./eval-separate.js');
      if (!flags.keep) {
        await sweepEvalWorkDirs();
        workDir = await mkdtemp(join(tmpdir(), `stemkit-eval-${process.pid}-`));
      }
      estimates = resolve(flags.keep ?? workDir!);
      const written = await separateForEval(ctx, resolve(referenceDir), estimates, flags);
      systemName = written.modelId;
      // Score what the model wrote (after any --map renaming), not every stem the dataset happens to have.
      const reverse = new Map(Object.entries(map).map(([ref, est]) => [est, ref]));
      stems ??= written.stems.map((s) => reverse.get(s) ?? s);
    }
    const report = await evaluate({
      referenceDir: resolve(referenceDir),
      estimatesDir: estimates,
      systemName,
      map,
      stems,
      baselines,
      ffmpegPath: ctx.config.ffmpegPath,
      ffprobePath: ctx.config.ffprobePath,
      signal: ctx.signal,
      onProgress: (e) => ctx.onProgress(e),
    });
    ctx.emitJson({ type: 'eval', ...report });
    ctx.print(formatEvalReport(report, ctx.style));
    if (report.missing.length > 0) {
      throw new InputError(`${report.missing.length} estimate file(s) missing: ${report.missing.map((m) => `${m.track}/${m.stem}`).join(', ')}`, {
        code: 'E_EVAL_MISSING',
        hint: 'Check the estimates folder layout (<track>/<stem>.wav) or rename stems with --map ref=est.',
      });
    }
    return 0;
  } finally {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }
}
