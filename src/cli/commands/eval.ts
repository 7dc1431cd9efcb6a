import { Command, Option } from 'commander';
import { runAction } from '../context.js';
import type { CliContext } from '../context.js';

interface EvalFlags {
  model?: string;
  modelPath?: string;
  baseline?: string[];
  map?: string[];
  keep?: string;
  stems?: string;
  shifts?: string;
  overlap?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function evalCommand(): Command {
  return new Command('eval')
    .description('Score separations against reference stems (SDR, SI-SDR and their improvement over the mixture)')
    .argument('<reference-dir>', 'one sub-folder per track with mixture.* and one file per stem (MUSDB18-HQ layout)')
    .argument('[estimates-dir]', 'estimates as <track>/<stem>.* (omit with --model to separate first)')
    .option('-m, --model <id|path>', 'separate every mixture with this model first, then score')
    .option('--model-path <file>', 'local file for the --model registry entry (no download)')
    .option('-b, --baseline <name>', 'also score a baseline: mixture | oracle-irm (repeatable or comma-separated)', collect)
    .option('--map <ref=est>', 'score reference stem <ref> against estimate file <est> (repeatable)', collect)
    .option('--keep <dir>', 'with --model: keep the separated stems in this folder instead of a temporary one')
    .option('--stems <list>', 'score (and with --model, separate) only these reference stems; default with --model: the stems it writes')
    .option('--shifts <n>', 'with --model: random shifts (default 0)')
    .option('--overlap <0..0.9>', 'with --model: chunk overlap')
    .addOption(new Option('--no-progress').hideHelp())
    .addHelpText(
      'after',
      `
Examples:
  stemkit eval musdb18hq/test separated/               score existing estimates
  stemkit eval musdb18hq/test --model classic -b mixture,oracle-irm
  stemkit eval refs/ ests/ --map other=no_vocals       compare a renamed stem

SDR is the Music Demixing Challenge definition, 10·log10(Σs² / Σ(s−ŝ)²) over the whole track and
all channels; silent reference stems are shown but left out of the means and medians.`,
    )
    .action(
      runAction(async (ctx: CliContext, referenceDir: string, estimatesDir: string | undefined, flags: EvalFlags) => {
        const { runEvalCommand } = await import('./eval-run.js');
        return runEvalCommand(ctx, referenceDir, estimatesDir, flags);
      }),
    );
}

export type { EvalFlags };
