/**
 * `stemkit separate <inputs...>`: split audio (or the audio of videos) into stems.
 * Thin adapter: parses and validates the flags up front (UsageError 64 naming the allowed values), expands
 * the inputs, and hands everything to separateBatch (src/separate/batch.ts), which is imported lazily
 * so that `stemkit --help` does not load the engine.
 */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { InputError, StemkitError, UsageError } from '../../errors.js';
import { printable, withFlags } from '../messages.js';
import { addJobOptions, jobOptionsFrom } from '../job-options.js';
import { runAction, type CliContext } from '../context.js';
import { wrapSegments } from '../render/table.js';
import { addQueueOptions, submitSeparate } from './queue.js';
import type { FileResult, SeparateFileOptions, SeparatorSpec } from '../../separate/separate.js';

interface SeparateFlags {
  out?: string;
  filename?: string;
  model?: string;
  modelPath?: string;
  mode?: string;
  stems?: string;
  twoStems?: string;
  otherMethod?: string;
  shifts?: string;
  seed?: string;
  overlap?: string;
  batchSize?: string;
  format?: string;
  bits?: string;
  bitrate?: string;
  clip?: string;
  sampleRate?: string;
  channels?: string;
  denoise?: boolean;
  mdxNFft?: string;
  mdxDimF?: string;
  mdxDimT?: string;
  mdxCompensate?: string;
  mdxPrimary?: string;
  remux?: string;
  force?: boolean;
  strict?: boolean;
  recursive?: boolean;
  precision?: string;
  wait?: boolean;
  waitTimeout?: string;
  queue?: string | boolean;
}

const FORMATS = ['wav', 'flac', 'mp3', 'opus', 'ogg', 'm4a'] as const;

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got "${value}")`, { hint: `e.g. ${flag} ${allowed[0]}` });
  }
  return value as T;
}

function num(flag: string, value: string | undefined, lo: number, hi: number, int: boolean): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v))) {
    throw new UsageError(`${flag} must be ${int ? 'an integer' : 'a number'} from ${lo} to ${hi} (got "${value}")`, { hint: `e.g. ${flag} ${int ? Math.max(lo, 1) : lo}` });
  }
  return v;
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  return items.length > 0 ? items : undefined;
}

/** Builds the engine's spec and file options from the flags. @throws UsageError (64) on any invalid value. */
export function parseSeparateFlags(flags: SeparateFlags): { spec: SeparatorSpec; file: SeparateFileOptions } {
  const spec: SeparatorSpec = {};
  const model = flags.model ?? flags.modelPath;
  if (flags.model !== undefined) spec.model = flags.model;
  if (flags.modelPath !== undefined) {
    if (flags.model !== undefined) spec.modelPath = flags.modelPath;
    else spec.model = model!;
  }
  const mode = num('--mode', flags.mode, 2, 6, true);
  if (mode !== undefined) {
    if (![2, 4, 6].includes(mode)) throw new UsageError(`--mode must be 2, 4 or 6 (got "${flags.mode}")`, { hint: '2 = vocals + no_vocals, 4 = drums/bass/other/vocals, 6 = + guitar/piano' });
    spec.mode = mode as 2 | 4 | 6;
  }
  const stems = list(flags.stems);
  if (stems) spec.stems = stems;
  if (flags.twoStems !== undefined) spec.twoStems = flags.twoStems;
  const other = oneOf('--other-method', flags.otherMethod, ['add', 'minus'] as const);
  if (other) {
    if (flags.twoStems === undefined && mode !== 2) throw new UsageError('--other-method needs --two-stems <stem> (or --mode 2)', { hint: 'e.g. --two-stems vocals --other-method minus' });
    spec.otherMethod = other;
  }
  const shifts = num('--shifts', flags.shifts, 0, 20, true);
  if (shifts !== undefined) spec.shifts = shifts;
  const seed = num('--seed', flags.seed, 0, 2 ** 32 - 1, true);
  if (seed !== undefined) spec.seed = seed;
  const overlap = num('--overlap', flags.overlap, 0, 0.9, false);
  if (overlap !== undefined) spec.overlap = overlap;
  const batch = num('--batch-size', flags.batchSize, 1, 64, true);
  if (batch !== undefined) spec.batchSize = batch;
  if (flags.denoise) spec.denoise = true;
  const channels = oneOf('--channels', flags.channels, ['per-channel', 'downmix'] as const);
  if (channels) spec.channelMode = channels;
  if (flags.precision !== undefined) spec.precision = flags.precision;
  const mdx: NonNullable<SeparatorSpec['mdx']> = {};
  const nFft = num('--mdx-n-fft', flags.mdxNFft, 64, 32768, true);
  if (nFft !== undefined) mdx.nFft = nFft;
  const dimF = num('--mdx-dim-f', flags.mdxDimF, 4, 16385, true);
  if (dimF !== undefined) mdx.dimF = dimF;
  const dimT = num('--mdx-dim-t', flags.mdxDimT, 2, 4096, true);
  if (dimT !== undefined) mdx.dimT = dimT;
  const comp = num('--mdx-compensate', flags.mdxCompensate, 0.5, 2, false);
  if (comp !== undefined) mdx.compensate = comp;
  if (flags.mdxPrimary !== undefined) mdx.primaryStem = flags.mdxPrimary;
  if (Object.keys(mdx).length > 0) spec.mdx = mdx;

  if (flags.out !== undefined && flags.out.trim() === '') throw new UsageError('-o/--out is an empty path ("")', { hint: 'give a folder, e.g. -o separated (or -o . for the current folder)' });
  const file: SeparateFileOptions = { outDir: flags.out ?? 'separated' };
  if (flags.filename !== undefined) file.filename = flags.filename;
  const format = oneOf('--format', flags.format, FORMATS);
  if (format) file.format = format;
  const bits = oneOf('--bits', flags.bits, ['16', '24', '32'] as const);
  if (bits) file.bits = Number(bits) as 16 | 24 | 32;
  if (flags.bitrate !== undefined) {
    if (!/^\d+(\.\d+)?[kKmM]?$/.test(flags.bitrate)) throw new UsageError(`--bitrate must look like 192k or 320k (got "${flags.bitrate}")`, { hint: 'e.g. --bitrate 256k' });
    file.bitrate = flags.bitrate;
  }
  const clip = oneOf('--clip', flags.clip, ['rescale', 'clamp', 'none'] as const);
  if (clip) file.clip = clip;
  const rate = oneOf('--sample-rate', flags.sampleRate, ['same', 'model'] as const);
  if (rate) file.sampleRate = rate;
  const remux = list(flags.remux);
  if (remux) file.remux = remux;
  if (flags.force) file.force = true;
  if (flags.strict) file.strict = true;
  return { spec, file };
}

function describeResult(ctx: CliContext, r: FileResult, fmt: (r: FileResult) => string): string[] {
  const { style } = ctx;
  const input = printable(r.input);
  if (r.status === 'skipped') {
    return [`${style.dim('-')} ${input}: skipped, ${r.skipReason === 'unverified' ? 'outputs of unknown origin exist' : 'done by this model with these options'} (--force to redo)`];
  }
  if (r.status === 'failed') {
    const message = r.error?.message ?? 'failed';
    // Audio-layer messages usually start with the path already; do not print it twice.
    const lines = [`${style.fail('✗')} ${printable(message.startsWith(r.input) ? message : `${r.input}: ${message}`)}`];
    if (r.error?.hint) lines.push(style.dim(`  hint: ${printable(r.error.hint)}`));
    return lines;
  }
  const lines = [`${style.ok(r.integrity ? '!' : '✓')} ${input}${r.integrity?.truncated ? style.warn(' (truncated input: partial stems)') : ''}`];
  for (const [stem, path] of Object.entries(r.outputs)) lines.push(`  ${stem}: ${printable(path)}`);
  // On a terminal narrower than the timing line, it breaks between its fields rather than mid-word.
  const out = ctx.stdout as { isTTY?: boolean; columns?: number };
  for (const l of wrapSegments(`  ${fmt(r)}`, ' | ', out.isTTY ? out.columns : undefined, '  ')) lines.push(style.dim(l));
  return lines;
}

/** The library names options; on the command line the fix is a flag. */
function withFlagHints(e: unknown): unknown {
  if (e instanceof StemkitError && (e.code === 'E_OUTPUT_COLLISION' || e.code === 'E_OUTPUT_IS_INPUT')) {
    const t = e.details?.['suggestedTemplate'];
    const hint = typeof t === 'string' ? `add --filename "${t}"` : e.code === 'E_OUTPUT_IS_INPUT' ? 'choose another output folder (-o) or --filename' : 'rename one of the inputs, or use --filename with {dir} or {trackext}';
    return new UsageError(e.message, { code: e.code, hint, ...(e.details ? { details: e.details } : {}), cause: e.cause });
  }
  return e;
}

/** The `separate` command. */
export function separateCommand(): Command {
  const cmd = new Command('separate')
    .description('Separate audio (or the audio of video files) into stems: vocals, drums, bass, … or speech and noise')
    .argument('<inputs...>', 'audio/video files, folders (add --recursive to descend) or glob patterns ("music/**/*.flac")')
    .option('-o, --out <dir>', 'output folder (default: ./separated)')
    .option('--filename <template>', 'output names inside --out, with {track} {trackext} {dir} {stem} {ext} {model} (default: "{track}/{stem}.{ext}")')
    .option('--model <id|path>', 'model id (see `stemkit models list`) or a path to an .onnx file (default: classic, or the --mode default)')
    .option('--model-path <file>', 'use this local file (or folder, for multi-file models) for the chosen --model: no download')
    .option('--mode <n>', 'stem count shorthand: 2 (vocals + no_vocals), 4 (drums, bass, other, vocals) or 6 (+ guitar, piano)')
    .option('--stems <list>', 'write only these stems, e.g. vocals,drums (htdemucs_ft then runs only the needed sub-models)')
    .option('--two-stems <stem>', 'write <stem> and its complement (demucs --two-stems)')
    .option('--other-method <method>', 'the complement: add (sum of the other stems → no_<stem>, default) or minus (mix − stem → minus_<stem>)')
    .option('--shifts <n>', 'HTDemucs shift trick: average n randomly shifted passes (default 0: deterministic; 0..20)')
    .option('--seed <n>', 'seed of the --shifts offsets (default 0)')
    .option('--overlap <x>', 'overlap between model chunks, 0..0.9 (default 0.25)')
    .option('--batch-size <n>', 'chunks per model call, 1..64 (default 1; more uses more memory, can be faster on a GPU)')
    .option('--format <fmt>', `output format: ${FORMATS.join(', ')} (default wav)`)
    .option('--bits <n>', 'sample size for wav (16, 24, 32 float) and flac (16, 24); default 16')
    .option('--bitrate <rate>', 'bitrate of lossy formats, e.g. 320k')
    .option('--clip <mode>', 'clipping: rescale (per stem, like demucs; default), clamp (±0.99) or none')
    .option('--sample-rate <which>', 'same (stems at the input rate, default) or model (at the model rate)')
    .option('--channels <how>', 'mono speech models on stereo input: per-channel (default) or downmix')
    .option('--denoise', 'MDX-Net: average the model on the mix and its negation (2× slower)')
    .option('--mdx-n-fft <n>', 'MDX-Net: FFT size, for models the parameter table does not know')
    .option('--mdx-dim-f <n>', 'MDX-Net: frequency bins the model sees')
    .option('--mdx-dim-t <n>', 'MDX-Net: frames per chunk (not the exponent; usually 256)')
    .option('--mdx-compensate <x>', 'MDX-Net: gain applied to the primary stem')
    .option('--mdx-primary <stem>', 'MDX-Net: name of the stem the model outputs (vocals, instrumental, …)')
    .option('--remux <stems>', 'video inputs: also write the video with these stems as its soundtrack (video copied), e.g. no_vocals')
    .option('--force', 'redo files whose outputs already exist (default: skip those this model and these options wrote)')
    .option('--strict', 'fail a file whose input is truncated or damaged (default: warn and separate what decodes)')
    .option('-r, --recursive', 'descend into subfolders of folder inputs')
    .addOption(new Option('--precision <p>', 'model precision: auto, fp32, fp16, int8 (where a variant exists)'))
    .addOption(new Option('--offline', 'never download; fail (exit 69) when the model is not installed'));
  addJobOptions(cmd);
  addQueueOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  stemkit separate song.mp3                                  # embedded classic model, 4 stems
  stemkit separate --mode 2 album/ -r --format flac          # vocals + no_vocals for a whole folder
  stemkit separate --model htdemucs_ft --stems vocals song.wav
  stemkit separate --model gtcrn interview.mp4 --remux speech
  stemkit separate --model UVR-MDX-NET-Inst_HQ_3 "live/*.wav" --json

Exit codes: 0 all files ok or skipped; 1 files failed with different errors; otherwise the code shared by
every failed file (e.g. 66 input not found, 65 bad audio, 73 cannot write); 64 bad options; 69 model or
device unavailable; 75 busy (--no-wait); 130 interrupted.`,
  );
  cmd.action(
    runAction(async (ctx: CliContext, inputs: string[], flags: SeparateFlags, command: Command) => {
      const { spec, file } = parseSeparateFlags(flags);
      if (flags.queue !== undefined) return submitSeparate(ctx, inputs, flags, ctx.typed(command, '--wait') && flags.wait === true, spec, file);
      const jobs = jobOptionsFrom(flags);
      const [{ expandInputs }, { plannedOutputs, FILE_WARNING_OPTIONS }, { separateBatch, formatTimingLine }] = await Promise.all([
        import('../../separate/inputs.js'),
        import('../../separate/separate.js'),
        import('../../separate/batch.js'),
      ]);
      if (file.filename !== undefined) plannedOutputs('x.wav', ['x'], 'm', { filename: file.filename }); // validates the template up front
      const expanded = await expandInputs(inputs, { recursive: flags.recursive === true });
      for (const note of expanded.notes) ctx.onLog({ level: 'warn', message: note });
      for (const m of expanded.missing) if (expanded.files.length > 0 || /[*?[\]{}]/.test(m)) ctx.onLog({ level: 'warn', message: `no audio or video files match "${m}"` });
      const literalMissing = expanded.missing.filter((m) => !/[*?[\]{}]/.test(m));
      if (expanded.files.length === 0 && expanded.rejected.length === 0) {
        if (literalMissing.length > 0 || expanded.notes.length === 0) {
          throw new InputError(inputs.length === 1 ? `input not found: ${inputs[0]}` : `none of the ${inputs.length} inputs exist or contain audio files`, {
            hint: 'check the paths; folders need --recursive to include subfolders',
          });
        }
        // Only empty folders (or patterns matching nothing): a warning above, nothing to do, not a failure.
        ctx.print('0 files: nothing to separate');
        ctx.emitJson({ type: 'summary', files: 0, ok: 0, skipped: 0, failed: 0, exitCode: 0 });
        return 0;
      }
      // Missing literal paths still count as failed files, so the summary and exit code show them.
      const all = [...expanded.files, ...literalMissing.map((m) => resolve(m))];
      const batch = await separateBatch({
        config: ctx.config,
        inputs: all,
        spec,
        file,
        wait: jobs.wait,
        ...(jobs.timeoutSec !== undefined ? { timeoutSec: jobs.timeoutSec } : {}),
        roots: expanded.roots,
        rejected: expanded.rejected,
        onProgress: ctx.onProgress,
        onLog: ctx.onLog,
        signal: ctx.signal,
        onLoaded: (s) => ctx.onLog({ level: 'info', message: `model ${s.modelId} (${s.stems.join(', ')}) on ${s.provider === 'cpu' ? `cpu ×${s.threads}` : s.provider}, loaded in ${s.loadSeconds.toFixed(2)}s` }),
        onFile: (r) => {
          for (const line of describeResult(ctx, r, formatTimingLine)) ctx.print(line);
          ctx.emitJson({ type: 'file', ...r, warnings: r.warnings.map((w) => withFlags(w, { option: FILE_WARNING_OPTIONS })) });
        },
      }).catch((e: unknown) => {
        throw withFlagHints(e);
      });
      const s = batch.summary;
      const rtf = s.rtf === null ? '' : ` · ${s.audioSec.toFixed(1)}s of audio in ${s.computeSec.toFixed(1)}s (RTF ${s.rtf.toFixed(2)})`;
      ctx.print(`${s.files} ${s.files === 1 ? 'file' : 'files'}: ${s.ok} ok, ${s.skipped} skipped, ${s.failed} failed${rtf}`);
      ctx.emitJson({ type: 'summary', model: batch.modelId, stems: batch.stems, ...s, exitCode: batch.exitCode });
      return batch.exitCode;
    }),
  );
  return cmd;
}
