/**
 * `stemkit models list|pull|verify|rm|path|import`: the model cache from the command line.
 * The library modules are imported lazily so `stemkit --help` stays light.
 */
import { Command, Option } from 'commander';
import { join } from 'node:path';
import { DataError, StemkitError, UsageError } from '../../errors.js';
import type { ProgressCallback, ProgressEvent } from '../../progress.js';
import type { CliContext } from '../context.js';
import { runAction } from '../context.js';
import { formatTable } from '../render/table.js';
import { formatBytes } from '../../util/format.js';

const TASKS = ['separate', 'tts'] as const;
const PRECISION_CHOICES = ['auto', 'fp32', 'fp16', 'int8'];

function duration(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const s = Math.round(sec);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Adds "12.3 MB of 325 MB, 4.1 MB/s, ETA 1m20s" to download progress events, for the renderers that show messages.
 * The rate is an exponential moving average over the events of each file.
 */
export function withDownloadRates(onProgress: ProgressCallback, now: () => number = () => performance.now()): ProgressCallback {
  const state = new Map<string, { t: number; done: number; rate: number | undefined }>();
  return (e: ProgressEvent) => {
    if (e.stage !== 'download' || e.unit !== 'bytes' || e.status === 'start') {
      if (e.stage === 'download' && e.status === 'start') state.set(e.file ?? '', { t: now(), done: e.done, rate: undefined });
      onProgress(e);
      return;
    }
    const key = e.file ?? '';
    const s = state.get(key);
    const t = now();
    if (s && t > s.t) {
      const inst = ((e.done - s.done) * 1000) / (t - s.t);
      s.rate = s.rate === undefined ? inst : 0.7 * s.rate + 0.3 * inst;
      s.t = t;
      s.done = e.done;
    }
    const rate = s?.rate;
    const parts = [e.total > 0 ? `${formatBytes(e.done)} of ${formatBytes(e.total)}` : formatBytes(e.done)];
    if (rate !== undefined && rate > 0) {
      parts.push(`${formatBytes(rate)}/s`);
      if (e.total > 0 && e.status !== 'done') parts.push(`ETA ${duration((e.total - e.done) / rate)}`);
    }
    if (e.status === 'done') state.delete(key);
    onProgress({ ...e, message: parts.join(', ') });
  };
}

function observer(ctx: CliContext): { onProgress: ProgressCallback; onLog: CliContext['onLog']; signal: AbortSignal } {
  return { onProgress: withDownloadRates((e) => ctx.onProgress(e)), onLog: (e) => ctx.onLog(e), signal: ctx.signal };
}

interface ListFlags {
  task?: (typeof TASKS)[number];
  installed?: boolean;
}

async function listAction(ctx: CliContext, flags: ListFlags): Promise<number> {
  const { listModels, modelFiles } = await import('../../models/registry.js');
  const { installedPrecisions, modelDir, allModelFiles } = await import('../../models/cache.js');
  const rows: string[][] = [];
  for (const e of listModels(flags.task ? { task: flags.task } : undefined)) {
    const installed = await installedPrecisions(e, ctx.config);
    if (flags.installed && installed.length === 0) continue;
    const files = modelFiles(e);
    const known = files.every((f) => f.size !== undefined);
    const size = files.reduce((a, f) => a + (f.size ?? 0), 0);
    // Unpinned sizes: the approximate download at the precision `auto` picks on a CPU (HTDemucs: fp16 weights).
    const approxFiles = modelFiles(e, e.autoPrecision ?? 'fp32');
    const approx = approxFiles.every((f) => f.size !== undefined || f.approxSize !== undefined) ? approxFiles.reduce((a, f) => a + (f.size ?? f.approxSize ?? 0), 0) : undefined;
    const downloadable = e.embedded === true || files.every((f) => f.url !== undefined);
    ctx.emitJson({
      type: 'model',
      id: e.id,
      task: e.task,
      adapter: e.adapter,
      title: e.title,
      installed,
      embedded: e.embedded === true,
      downloadable,
      sizeBytes: known ? size : null,
      approxSizeBytes: known ? size : (approx ?? null),
      license: e.license,
      sampleRate: e.sampleRate,
      stems: e.stems ?? null,
      voices: e.voices ?? null,
      precisions: ['fp32', ...Object.keys(e.variants ?? {})],
      aliases: e.aliases ?? [],
      source: e.source,
      files: allModelFiles(e),
      dir: modelDir(e, ctx.config),
      importHint: e.importHint ?? null,
    });
    const state = e.embedded ? ctx.style.ok('embedded') : installed.length > 0 ? ctx.style.ok(installed.join(',')) : downloadable ? ctx.style.dim('-') : ctx.style.warn('import');
    const speakers = typeof e.params?.['speakers'] === 'number' ? e.params['speakers'] : undefined;
    const what = e.stems ? e.stems.join(',') : e.voices ? `${e.voices.length} voices` : speakers !== undefined ? (speakers === 1 ? '1 voice' : `${speakers} speakers`) : '';
    rows.push([e.id, e.task, state, known ? formatBytes(size) : e.embedded ? '' : approx !== undefined ? `~${formatBytes(approx)}` : '?', e.license.split(/[ ;(]/)[0]!, what]);
  }
  ctx.print(
    formatTable(
      [{ header: 'model' }, { header: 'task' }, { header: 'installed' }, { header: 'size', align: 'right' }, { header: 'license' }, { header: 'stems / voices' }],
      rows,
    ),
  );
  ctx.print(ctx.style.dim(`cache: ${ctx.config.cacheDir}`));
  if (rows.some((r) => r[2]!.includes('import'))) {
    ctx.print(ctx.style.dim('"import": no download host; export the model and run `stemkit models import <id> <file>` (`stemkit models pull <id>` says how)'));
  }
  return 0;
}

interface PullFlags {
  force?: boolean;
  precision?: string;
  stems?: string;
}

async function pullAction(ctx: CliContext, ids: string[], flags: PullFlags, cmd: Command): Promise<number> {
  const { ensureModel } = await import('../../models/ensure.js');
  const { getModel } = await import('../../models/registry.js');
  const { rolesForStems } = await import('../../models/registry.js');
  const stems = flags.stems?.split(',').map((x) => x.trim()).filter((x) => x !== '');
  // Every id (and --stems) valid before the first download starts.
  const roles = new Map(ids.map((id) => [id, stems ? rolesForStems(getModel(id), stems) : undefined]));
  let firstFailure: StemkitError | undefined;
  for (const id of ids) {
    try {
      const only = roles.get(id);
      const m = await ensureModel(id, {
        ...(only ? { roles: only } : {}),
        config: ctx.config,
        ...(ctx.typed(cmd, '--precision') && flags.precision !== undefined ? { precision: flags.precision } : {}),
        force: flags.force === true,
        ...observer(ctx),
      });
      ctx.emitJson({ type: 'pull', id: m.entry.id, status: 'ok', precision: m.precision, dir: m.dir, paths: m.paths });
      ctx.print(`${ctx.style.ok('ok')}   ${m.entry.id} (${m.precision}) ${ctx.style.dim(m.dir)}`);
    } catch (e) {
      if (ids.length === 1 || !(e instanceof StemkitError) || e.exitCode === 130) throw e;
      firstFailure ??= e;
      ctx.emitJson({ type: 'pull', id, status: 'failed', code: e.code, message: e.message, hint: e.hint ?? null });
      ctx.print(`${ctx.style.fail('FAIL')} ${id}: ${e.message}${e.hint ? `\n     ${ctx.style.dim(`hint: ${e.hint}`)}` : ''}`);
    }
  }
  return firstFailure?.exitCode ?? 0;
}

async function verifyAction(ctx: CliContext, id: string | undefined): Promise<number> {
  const { getModel, listModels } = await import('../../models/registry.js');
  const { verifyModel, listCache, isInstalled } = await import('../../models/cache.js');
  let entries;
  if (id) {
    entries = [getModel(id)];
  } else {
    const cached = new Set((await listCache(ctx.config)).models.filter((m) => m.known).map((m) => m.id));
    entries = [];
    for (const e of listModels()) {
      // An embedded file that is absent is a packaging problem `stemkit doctor` reports; verify checks what is there.
      if (cached.has(e.id) || (e.embedded && (await isInstalled(e, ctx.config)))) entries.push(e);
    }
  }
  if (entries.length === 0) {
    ctx.print(`no models in ${ctx.config.cacheDir}`);
    ctx.emitJson({ type: 'verify', ok: true, models: [] });
    return 0;
  }
  const failed: string[] = [];
  for (const e of entries) {
    const v = await verifyModel(e, ctx.config, ctx.signal);
    ctx.emitJson({ type: 'verify', id: v.id, ok: v.ok, dir: v.dir, files: v.files });
    const present = v.files.filter((f) => f.status !== 'missing');
    if (v.ok) {
      const how = present.map((f) => (f.checksum === 'registry' ? 'pinned sha256' : f.checksum === 'server' ? 'sha256 declared by the server' : f.checksum === 'recorded' ? 'recorded sha256' : 'present')).filter((x, i, a) => a.indexOf(x) === i);
      ctx.print(`${ctx.style.ok('ok')}   ${v.id} (${present.length} file${present.length === 1 ? '' : 's'}, ${how.join(' + ')})`);
      continue;
    }
    failed.push(v.id);
    ctx.print(`${ctx.style.fail('FAIL')} ${v.id}`);
    for (const f of v.files) {
      if (f.status === 'ok') continue;
      const detail =
        f.status === 'missing'
          ? 'missing'
          : f.status === 'size-mismatch'
            ? `size ${f.actualSize} B, expected ${f.expectedSize} B`
            : f.status === 'checksum-mismatch'
              ? `sha256 ${f.actualSha256}, expected ${f.expectedSha256} (${f.checksum === 'registry' ? 'registry' : f.checksum === 'server' ? 'declared by the server at download' : 'recorded on first download'})`
              : 'no checksum recorded (placed by hand?)';
      ctx.print(`     ${f.name}: ${detail}`);
    }
  }
  if (failed.length > 0) {
    throw new DataError(`${failed.length} model${failed.length === 1 ? '' : 's'} failed verification: ${failed.join(', ')}`, {
      code: 'E_VERIFY',
      hint: `re-download with \`stemkit models pull --force ${failed.join(' ')}\`, or re-import the files`,
    });
  }
  return 0;
}

async function rmAction(ctx: CliContext, ids: string[]): Promise<number> {
  const { getModel } = await import('../../models/registry.js');
  const { removeModel, modelDir } = await import('../../models/cache.js');
  const entries = ids.map((id) => getModel(id));
  for (const e of entries) {
    if (e.embedded) throw new UsageError(`${e.id} is embedded in stemkit and cannot be removed`);
  }
  for (const e of entries) {
    const freed = await removeModel(e, ctx.config);
    ctx.emitJson({ type: 'rm', id: e.id, dir: modelDir(e, ctx.config), freedBytes: freed });
    ctx.print(freed > 0 ? `removed ${e.id} (${formatBytes(freed)})` : `${e.id} was not in the cache`);
  }
  return 0;
}

async function pathAction(ctx: CliContext, id: string, flags: { precision?: string }): Promise<number> {
  const { resolveModelRef, modelFiles } = await import('../../models/registry.js');
  const { modelDir, isInstalled } = await import('../../models/cache.js');
  const { resolvePrecision } = await import('../../models/ensure.js');
  const ref = resolveModelRef(id);
  const { precision } = resolvePrecision(ref.entry, { requested: flags.precision, suffix: ref.precision, config: ctx.config });
  const dir = modelDir(ref.entry, ctx.config);
  const paths: Record<string, string> = {};
  for (const f of modelFiles(ref.entry, precision)) paths[f.role] = join(dir, f.name);
  const installed = await isInstalled(ref.entry, ctx.config, precision);
  ctx.emitJson({ type: 'path', id: ref.entry.id, precision, dir, paths, installed });
  ctx.print(dir);
  return 0;
}

async function importAction(ctx: CliContext, id: string, sources: string[], flags: { precision?: string }): Promise<number> {
  const { importModel } = await import('../../models/ensure.js');
  const r = await importModel(id, sources, {
    config: ctx.config,
    ...(flags.precision !== undefined ? { precision: flags.precision } : {}),
    ...observer(ctx),
  });
  ctx.emitJson({ type: 'import', id: r.id, dir: r.dir, files: r.files, installed: r.installed, missing: r.missing });
  for (const f of r.files) {
    ctx.print(`${ctx.style.ok('ok')}   ${r.id}/${f.name} (${formatBytes(f.size)}, ${f.checksum === 'registry' ? 'sha256 matches the registry' : 'sha256 recorded'})`);
  }
  if (r.missing.length > 0) {
    ctx.onLog({ level: 'warn', message: `${r.id} is still missing ${r.missing.join(', ')}; import those too`, file: r.id });
  } else {
    ctx.print(`${r.id} is installed in ${r.dir}`);
  }
  return 0;
}

/** The `models` command group. */
export function modelsCommand(): Command {
  const models = new Command('models').description('List, download, import and verify models (cache: STEMKIT_CACHE_DIR, else $XDG_CACHE_HOME/stemkit, else ~/.cache/stemkit)');

  models
    .command('list')
    .description('every known model: installed precisions, size, license, stems or voices')
    .addOption(new Option('--task <task>', 'only separation or TTS models').choices([...TASKS]))
    .option('--installed', 'only installed models')
    .action(runAction(async (ctx, flags: ListFlags) => listAction(ctx, flags)));

  models
    .command('pull')
    .description('download models into the cache (resumes interrupted downloads, verifies checksums)')
    .argument('<id...>', 'model ids or aliases (see `stemkit models list`); `kokoro-int8` selects a precision')
    .option('--force', 'download again even when installed')
    .addOption(new Option('--precision <p>', 'fp32 | fp16 | int8 | auto (default auto: HTDemucs fp16 weights everywhere, other models fp16 on CUDA where a variant exists, else fp32)').choices(PRECISION_CHOICES))
    .option('--stems <list>', 'for a bag of per-stem models (htdemucs_ft): only the specialists of these stems, e.g. vocals')
    .option('--mirror <url>', 'base URL replacing the original host of every file (also STEMKIT_MODEL_MIRROR)')
    .option('--offline', 'never touch the network: succeed only for models already installed (also STEMKIT_OFFLINE=1)')
    .action(runAction(async (ctx, ids: string[], flags: PullFlags, cmd: Command) => pullAction(ctx, ids, flags, cmd)));

  models
    .command('verify')
    .description('re-hash cached model files against the registry (or the checksum recorded on first download)')
    .argument('[id]', 'one model (default: every cached model)')
    .action(runAction(async (ctx, id: string | undefined) => verifyAction(ctx, id)));

  models
    .command('rm')
    .description('delete models from the cache (partial downloads included)')
    .argument('<id...>', 'model ids')
    .action(runAction(async (ctx, ids: string[]) => rmAction(ctx, ids)));

  models
    .command('path')
    .description("print the folder holding a model's files (where `import` puts them)")
    .argument('<id>', 'model id')
    .addOption(new Option('--precision <p>', 'which precision the JSON paths refer to').choices(PRECISION_CHOICES))
    .action(runAction(async (ctx, id: string, flags: { precision?: string }) => pathAction(ctx, id, flags)));

  models
    .command('import')
    .description('install model files fetched elsewhere (the offline path); verified like a download')
    .argument('<id>', 'model id')
    .argument('<path...>', 'the file(s), or a folder holding them under their registry names')
    .addOption(new Option('--precision <p>', 'which precision a single unnamed file is (default fp32)').choices(PRECISION_CHOICES))
    .action(runAction(async (ctx, id: string, sources: string[], flags: { precision?: string }) => importAction(ctx, id, sources, flags)));

  return models;
}
