import { Command } from 'commander';
import { runAction, type CliContext } from '../context.js';

export interface BenchFlags {
  modes?: string;
  model?: string[];
  input?: string;
  seconds?: string;
  runs?: string;
  pull?: boolean;
  target?: string[];
  baseline?: string;
  tolerance?: string;
  out?: string;
  quality?: string;
  ttsModel?: string;
  tts?: boolean;
  targets?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function benchCommand(): Command {
  return new Command('bench')
    .description('Benchmark separation (2/4/6 stems) and TTS on this machine; pass/fail against targets for CI')
    .option('--modes <list>', 'stem modes to run (default 2,4,6)')
    .option('-m, --model <mode=id>', 'model for a mode, e.g. 4=htdemucs (repeatable; default: the registry default for the mode)', collect)
    .option('-i, --input <file>', 'benchmark this file instead of the built-in generated signal')
    .option('--seconds <n>', 'length of the generated signal in seconds (default 180)')
    .option('--runs <n>', 'warm runs after the cold run (default 3)')
    .option('--pull', 'download models that are not installed instead of skipping their mode')
    .option('--target <mode=seconds[:MBps]>', 'override a target, e.g. 2=15:2: seconds per 180 s track (repeatable; default from config bench.targets)', collect)
    .option('--targets <policy>', 'auto (default: targets count on a GPU; on a CPU only when you set them), seed (always count), off (report only)')
    .option('--baseline <report.json>', 'fail when a metric is worse than this earlier report by more than --tolerance')
    .option('--tolerance <fraction>', 'allowed regression against the baseline: 0.1 or 10% (default 10%)')
    .option('-o, --out <report.json>', 'also write the report as JSON to this file')
    .option('--quality <reference-dir>', 'add per-stem SDR of each model on a MUSDB-style reference set')
    .option('--tts-model <id|path>', 'TTS model to time (default: the first installed Kokoro/Piper voice)')
    .option('--no-tts', 'skip the TTS benchmark')
    .addHelpText(
      'after',
      `
Targets (warm median; seconds per 180 s track, scaled to the input's length): 2-stem < 15 s and > 2 MB/s,
4-stem < 30 s and > 1 MB/s, 6-stem < 45 s and > 0.8 MB/s. MB/s is input WAV data (16-bit PCM bytes) per
second. These built-in targets are GPU targets: on a CPU they are reported, and only count with
--targets seed or targets you set (--target, config bench.targets). --runs 0 times the cold run only and
checks no target. Exit status: 0 when every check that counts passes, 1 when one fails.

Examples:
  stemkit bench                                   full run with the default 3-minute signal
  stemkit bench --seconds 30 --runs 1 --modes 2,4  quick check
  stemkit bench --out bench.json && stemkit bench --baseline bench.json --tolerance 15%`,
    )
    .action(
      runAction(async (ctx: CliContext, flags: BenchFlags) => {
        const { runBenchCommand } = await import('./bench-run.js');
        return runBenchCommand(ctx, flags);
      }),
    );
}
