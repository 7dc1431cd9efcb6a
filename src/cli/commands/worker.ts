/**
 * `stemkit worker`: take separation and TTS jobs from a Redis queue and run them on this machine, within
 * the profile's limits (src/queue/worker.ts does the work; this is the door).
 */
import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { redactUrl } from '../../util/redact.js';
import { runAction, type CliContext } from '../context.js';

interface WorkerFlags {
  queue?: string;
  concurrency?: string;
  drain?: string;
}

function count(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min) throw new UsageError(`${flag} must be a number ≥ ${min} (got "${v}")`);
  return n;
}

async function work(ctx: CliContext, f: WorkerFlags): Promise<number> {
  const concurrency = count('--concurrency', f.concurrency, 1);
  if (concurrency !== undefined && !Number.isInteger(concurrency)) throw new UsageError(`--concurrency must be a whole number (got "${f.concurrency}")`);
  const drain = count('--drain', f.drain, 0) ?? 30;
  const { checkQueueUrl } = await import('../../queue/connection.js');
  const url = checkQueueUrl(f.queue ?? ctx.config.queue.url);
  const { startWorker } = await import('../../queue/worker.js');
  ctx.onLog({ level: 'info', message: `connecting to ${redactUrl(url)}` });
  const worker = await startWorker({
    config: ctx.config,
    url,
    ...(concurrency !== undefined ? { concurrency } : {}),
    onLog: ctx.onLog,
    onJob: (e) => {
      const { style } = ctx;
      ctx.emitJson({ type: 'job', ...e, pid: process.pid, t: Date.now() });
      if (e.event === 'start') ctx.print(`${style.dim('▶')} job ${e.id}: ${e.kind} ${e.target}${e.attempt > 1 ? ` (try ${e.attempt})` : ''}`);
      else if (e.event === 'done') ctx.print(`${style.ok('✓')} job ${e.id}: ${e.outcome?.status === 'skipped' ? 'skipped, outputs exist' : `done in ${(e.outcome?.times['total'] ?? 0).toFixed(2)}s`}`);
      else if (e.event === 'handed-back') ctx.print(`${style.warn('↩')} job ${e.id}: handed back to the queue`);
      else ctx.print(`${style.fail('✗')} job ${e.id}: ${e.error?.message} (${e.error?.code}, exit ${e.error?.exitCode})${e.willRetry ? '; will be retried' : ''}`);
    },
  });
  ctx.emitJson({ type: 'worker', event: 'ready', id: worker.id, concurrency: worker.concurrency, roots: worker.roots, pid: process.pid });
  // Runs until SIGTERM/SIGINT; a second signal exits at once (the jobs then count as stalled and go to other workers).
  await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  ctx.onLog({ level: 'info', message: `stopping: running jobs get ${drain} s to finish, then go back to the queue` });
  await worker.close(drain);
  ctx.emitJson({ type: 'worker', event: 'stopped', id: worker.id, pid: process.pid });
  return 0;
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('Run queued separation and TTS jobs from Redis on this machine, within its profile')
    .option('--queue <url>', 'the Redis URL (default: STEMKIT_QUEUE_URL / "queue.url"), e.g. rediss://:password@redis.internal:6379/0')
    .option('--concurrency <n>', "jobs at once (default: the profile's maxConcurrentHeavyTasks); slots still cap what runs")
    .option('--drain <seconds>', 'on SIGTERM, let running jobs finish this long before handing them back (default 30)')
    .addHelpText(
      'after',
      `
Every job takes the same job slots as a CLI run on this machine (see \`stemkit status\`), so the profile's
limits hold whatever else runs here. Models stay loaded between jobs. See README "Many machines".

Examples:
  STEMKIT_QUEUE_URL=redis://redis.internal:6379 stemkit --profile small worker
  stemkit worker --queue rediss://:secret@redis.example.com:6380/2 --drain 120`,
    )
    .action(runAction(async (ctx: CliContext, f: WorkerFlags) => work(ctx, f)));
}
