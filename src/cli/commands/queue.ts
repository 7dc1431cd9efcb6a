/**
 * `stemkit queue status|list|retry|cancel|clean`, and the `--queue` / `--wait` path of `separate` and `tts`
 * (submit jobs to Redis instead of running them; follow them with the usual progress and exit codes).
 * BullMQ and the queue library are imported lazily, so `stemkit --help` does not load them.
 */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { InputError, UsageError } from '../../errors.js';
import type { JobRecord, QueueClient } from '../../queue/client.js';
import type { StemkitJobData, TtsJobData } from '../../queue/jobs.js';
import type { SeparateFileOptions, SeparatorSpec } from '../../separate/separate.js';
import { redactUrl } from '../../util/redact.js';
import { runAction, type CliContext } from '../context.js';
import { formatTable } from '../render/table.js';

/** Adds `--queue [url]` and `--wait` (follow the submitted jobs) to `separate` and `tts`. */
export function addQueueOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--queue [url]', 'submit the work as jobs to this Redis queue (default: STEMKIT_QUEUE_URL / "queue.url") for `stemkit worker`s to run'))
    .addOption(new Option('--wait', 'with --queue: follow the jobs to the end with progress, and exit with their code'));
}

/** The queue URL: the flag's value, else the config (`queue.url`, env STEMKIT_QUEUE_URL). */
async function queueUrl(ctx: CliContext, flag: string | boolean | undefined): Promise<string> {
  const { checkQueueUrl } = await import('../../queue/connection.js');
  return checkQueueUrl(typeof flag === 'string' ? flag : ctx.config.queue.url);
}

async function open(ctx: CliContext, flag: string | boolean | undefined): Promise<{ client: QueueClient; shown: string }> {
  const url = await queueUrl(ctx, flag);
  const { openQueue } = await import('../../queue/client.js');
  return { client: await openQueue(url, ctx.config, { onLog: ctx.onLog }), shown: redactUrl(url) };
}

function errorText(r: JobRecord): string {
  return r.error ? `${r.error.message} (${r.error.code}, exit ${r.error.exitCode})` : '';
}

/** The exit code of finished jobs, as a batch's: 0, the one code all failures share, or 1. */
function exitCodeOf(recs: readonly JobRecord[]): number {
  const codes = new Set(recs.filter((r) => r.state !== 'completed').map((r) => r.error?.exitCode ?? 1));
  return codes.size === 0 ? 0 : codes.size === 1 ? [...codes][0]! : 1;
}

/** Adds the jobs, prints their ids (or JSON records), and with `--wait` follows them to the end. */
async function submit(ctx: CliContext, flagQueue: string | boolean | undefined, follow: boolean, jobs: StemkitJobData[]): Promise<number> {
  const { client, shown } = await open(ctx, flagQueue);
  try {
    const { enqueue, followJobs } = await import('../../queue/client.js');
    const ids = await enqueue(client, jobs, ctx.config);
    jobs.forEach((j, k) => {
      const target = j.kind === 'tts' ? j.output : j.input;
      ctx.emitJson({ type: 'job', id: ids[k], kind: j.kind, target, queue: client.name });
      ctx.print(`job ${ids[k]}: ${j.kind} ${target}`);
    });
    ctx.onLog({ level: 'info', message: `queued ${ids.length} job${ids.length === 1 ? '' : 's'} on "${client.name}" at ${shown}` });
    if (!follow) return 0;
    const recs = await followJobs(client, ids, {
      onProgress: ctx.onProgress,
      signal: ctx.signal,
      onFinished: (r) => {
        const { style } = ctx;
        ctx.emitJson({ type: 'result', ...r });
        if (r.state === 'completed' && r.result) {
          ctx.print(`${style.ok('✓')} job ${r.id}: ${r.target}${r.result.status === 'skipped' ? ' (skipped, outputs exist)' : ''}`);
          for (const [k, p] of Object.entries(r.result.outputs)) ctx.print(`  ${k}: ${p}`);
          const t = Object.entries(r.result.times).map(([k, v]) => `${k} ${v.toFixed(2)}s`).join(' | ');
          ctx.print(style.dim(`  ${t} | on ${r.result.worker.host} (pid ${r.result.worker.pid})`));
        } else {
          ctx.print(`${style.fail('✗')} job ${r.id}: ${r.target}: ${errorText(r)}`);
        }
      },
    });
    const ok = recs.filter((r) => r.state === 'completed').length;
    ctx.print(`${recs.length} job${recs.length === 1 ? '' : 's'}: ${ok} ok, ${recs.length - ok} failed`);
    const exitCode = exitCodeOf(recs);
    ctx.emitJson({ type: 'summary', jobs: recs.length, ok, failed: recs.length - ok, exitCode });
    return exitCode;
  } finally {
    await client.close();
  }
}

/** `separate … --queue`: one job per input (globs and folders expanded here; URLs passed as they are). */
export async function submitSeparate(
  ctx: CliContext,
  inputs: string[],
  flags: { queue?: string | boolean; wait?: boolean; recursive?: boolean },
  follow: boolean,
  spec: SeparatorSpec,
  file: SeparateFileOptions,
): Promise<number> {
  const { expandInputs } = await import('../../separate/inputs.js');
  const { submitter } = await import('../../queue/worker.js');
  const urls = inputs.filter((i) => /^https?:\/\//i.test(i));
  for (const u of urls) {
    const parsed = new URL(u);
    if (parsed.username !== '' || parsed.password !== '') throw new UsageError(`input URLs may not carry credentials: ${redactUrl(u)}`, { hint: 'jobs are stored in Redis; serve the file without a password or put it on the shared storage' });
  }
  const paths = inputs.filter((i) => !urls.includes(i));
  const expanded = paths.length > 0 ? await expandInputs(paths, { recursive: flags.recursive === true }) : { files: [], missing: [] };
  if (expanded.missing.length > 0) throw new InputError(`input not found: ${expanded.missing.join(', ')}`, { hint: 'jobs need inputs on storage the workers see; check the paths' });
  const all = [...expanded.files, ...urls];
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(p));
  const jobSpec: SeparatorSpec = { ...spec };
  if (jobSpec.model !== undefined && /\.onnx$|[/\\]/i.test(jobSpec.model)) jobSpec.model = resolve(jobSpec.model);
  if (jobSpec.modelPath !== undefined) jobSpec.modelPath = abs(jobSpec.modelPath)!;
  const from = submitter();
  const timeoutSec = ctx.config.queue.jobTimeoutSec;
  const jobs: StemkitJobData[] = all.map((input) => ({ v: 1, kind: 'separate', input, spec: jobSpec, file: { ...file, outDir: resolve(file.outDir ?? 'separated') }, timeoutSec, from }));
  return submit(ctx, flags.queue, follow, jobs);
}

/** `tts … --queue`: one job per text (a single text, or each line of a `--jsonl` batch). */
export async function submitTts(
  ctx: CliContext,
  flags: { queue?: string | boolean; model?: string; voices?: string; precision?: string; bits?: string },
  follow: boolean,
  texts: Array<{ text: string; output: string; options: TtsJobData['options'] }>,
): Promise<number> {
  const { submitter } = await import('../../queue/worker.js');
  const from = submitter();
  const model = flags.model ?? 'kokoro';
  const jobs: TtsJobData[] = texts.map((t) => ({
    v: 1,
    kind: 'tts',
    text: t.text,
    output: resolve(t.output),
    model: /\.onnx$|[/\\]/i.test(model) && !model.startsWith('piper:') ? resolve(model) : model,
    ...(flags.voices !== undefined ? { voices: resolve(flags.voices) } : {}),
    ...(flags.precision !== undefined ? { precision: flags.precision } : {}),
    ...(flags.bits !== undefined ? { bits: Number(flags.bits) as 16 | 24 | 32 } : {}),
    options: t.options,
    timeoutSec: ctx.config.queue.jobTimeoutSec,
    from,
  }));
  return submit(ctx, flags.queue, follow, jobs);
}

// ---------------------------------------------------------------------------------------------------------
// `stemkit queue …`

interface QueueFlags {
  queue?: string;
}

function age(iso: string | undefined, now: number): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

async function withQueue(ctx: CliContext, cmd: Command, fn: (client: QueueClient, shown: string) => Promise<number>): Promise<number> {
  const flags = cmd.optsWithGlobals<QueueFlags>();
  const { client, shown } = await open(ctx, flags.queue);
  try {
    return await fn(client, shown);
  } finally {
    await client.close();
  }
}

async function status(ctx: CliContext, cmd: Command): Promise<number> {
  return withQueue(ctx, cmd, async (client, shown) => {
    const { queueStatus } = await import('../../queue/client.js');
    const s = await queueStatus(client);
    ctx.emitJson({ type: 'queue-status', queue: client.name, url: shown, counts: s.counts, workers: s.workers });
    const { bold, dim } = ctx.style;
    const now = Date.now();
    const lines = [`${bold(`Queue "${client.name}"`)} ${dim(`at ${shown}`)}`, ''];
    lines.push(Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join(' · '), '');
    if (s.workers.length === 0) lines.push('No workers are running.');
    else {
      lines.push(
        formatTable(
          [{ header: 'worker' }, { header: 'profile' }, { header: 'slots (heavy/tts/video)' }, { header: 'running', align: 'right' }, { header: 'done', align: 'right' }, { header: 'failed', align: 'right' }, { header: 'up', align: 'right' }],
          s.workers.map((w) => [
            `${w.host} pid ${w.pid}${w.closing ? ' (closing)' : ''}`,
            `${w.profile} (${w.device}, cpu ×${w.cpuThreads})`,
            `${w.limits.heavy}/${w.limits.tts}/${w.limits.video}`,
            `${w.active.length}/${w.concurrency}${w.active.length > 0 ? ` [${w.active.map((a) => a.id).join(', ')}]` : ''}`,
            String(w.done),
            String(w.failed),
            age(w.startedAt, now),
          ]),
        ),
      );
    }
    ctx.print(lines.join('\n'));
    return 0;
  });
}

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'paused'];

async function list(ctx: CliContext, cmd: Command, f: { state?: string; limit?: string }): Promise<number> {
  const states = (f.state ?? 'waiting,active,delayed,failed').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = states.filter((s) => !STATES.includes(s));
  if (bad.length > 0) throw new UsageError(`--state: unknown state ${bad.join(', ')}`, { hint: `use one or more of: ${STATES.join(', ')}` });
  const limit = f.limit === undefined ? 50 : Number(f.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a whole number ≥ 1 (got "${f.limit}")`);
  return withQueue(ctx, cmd, async (client) => {
    const { listJobs } = await import('../../queue/client.js');
    const recs = await listJobs(client, states, limit);
    for (const r of recs) ctx.emitJson({ type: 'job', ...r });
    if (recs.length === 0) {
      ctx.print(`No ${states.join('/')} jobs.`);
      return 0;
    }
    const now = Date.now();
    ctx.print(
      formatTable(
        [{ header: 'id', align: 'right' }, { header: 'state' }, { header: 'kind' }, { header: 'tries', align: 'right' }, { header: 'age', align: 'right' }, { header: 'target' }, { header: 'detail' }],
        recs.map((r) => [
          r.id,
          r.state,
          r.kind,
          `${r.attemptsMade}/${r.attempts}`,
          age(r.createdAt, now),
          r.target,
          r.error ? `${r.error.code} (exit ${r.error.exitCode}): ${r.error.message}` : r.progress && r.state === 'active' ? `${r.progress.stage} ${r.progress.total > 0 ? `${Math.round((100 * r.progress.done) / r.progress.total)}%` : ''}` : '',
        ]),
      ),
    );
    return 0;
  });
}

async function act(ctx: CliContext, cmd: Command, ids: string[], what: 'retry' | 'cancel'): Promise<number> {
  return withQueue(ctx, cmd, async (client) => {
    const lib = await import('../../queue/client.js');
    const results = what === 'retry' ? await lib.retryJobs(client, ids) : await lib.cancelJobs(client, ids);
    for (const r of results) {
      ctx.emitJson({ type: what, ...r });
      ctx.print(`${r.ok ? ctx.style.ok('✓') : ctx.style.fail('✗')} job ${r.id}: ${r.outcome}`);
    }
    // Every id named must have been acted on; a missing one is like a missing input.
    return results.every((r) => r.ok) ? 0 : 66;
  });
}

async function clean(ctx: CliContext, cmd: Command, f: { state?: string; olderThan?: string }): Promise<number> {
  const state = f.state ?? 'completed';
  if (state !== 'completed' && state !== 'failed') throw new UsageError(`--state must be completed or failed (got "${state}")`);
  const olderThan = f.olderThan === undefined ? 0 : Number(f.olderThan);
  if (f.olderThan !== undefined && (f.olderThan.trim() === '' || !Number.isFinite(olderThan) || olderThan < 0)) throw new UsageError(`--older-than must be a number of seconds ≥ 0 (got "${f.olderThan}")`);
  return withQueue(ctx, cmd, async (client) => {
    const { cleanJobs } = await import('../../queue/client.js');
    const n = await cleanJobs(client, state, olderThan);
    ctx.emitJson({ type: 'clean', state, removed: n });
    ctx.print(`removed ${n} ${state} job${n === 1 ? '' : 's'}`);
    return 0;
  });
}

/** The `queue` command and its subcommands. */
export function queueCommand(): Command {
  const q = new Command('queue')
    .description('Show and manage the jobs of a Redis job queue (see `stemkit worker`)')
    .option('--queue <url>', 'the Redis URL (default: STEMKIT_QUEUE_URL / "queue.url"), e.g. redis://:password@host:6379/0');
  q.command('status')
    .description('jobs by state, and the live workers with their host, profile and slots')
    .action(runAction(async (ctx: CliContext, _o: unknown, cmd: Command) => status(ctx, cmd)));
  q.command('list')
    .description('jobs with their state, tries, target and error code')
    .option('--state <states>', `comma-separated: ${STATES.join(', ')} (default: waiting,active,delayed,failed)`)
    .option('--limit <n>', 'at most this many jobs (default 50)')
    .action(runAction(async (ctx: CliContext, f: { state?: string; limit?: string }, cmd: Command) => list(ctx, cmd, f)));
  q.command('retry')
    .description('run failed jobs again (a fresh set of attempts)')
    .argument('<ids...>', 'job ids')
    .action(runAction(async (ctx: CliContext, ids: string[], _o: unknown, cmd: Command) => act(ctx, cmd, ids, 'retry')));
  q.command('cancel')
    .description('remove waiting jobs; stop running ones (they fail with E_CANCELLED and release their slots)')
    .argument('<ids...>', 'job ids')
    .action(runAction(async (ctx: CliContext, ids: string[], _o: unknown, cmd: Command) => act(ctx, cmd, ids, 'cancel')));
  q.command('clean')
    .description('forget finished jobs')
    .option('--state <state>', 'completed (default) or failed')
    .option('--older-than <seconds>', 'only jobs finished at least this long ago (default 0: all)')
    .action(runAction(async (ctx: CliContext, f: { state?: string; olderThan?: string }, cmd: Command) => clean(ctx, cmd, f)));
  return q;
}
