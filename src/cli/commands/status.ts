/**
 * `stemkit status`: the cross-process job pools (heavy, TTS, video), their limits from the profile,
 * and which processes hold slots right now.
 */
import { Command } from 'commander';
import { readPools, resolveRuntimeDir, type PoolStatus } from '../../jobs/semaphore.js';
import { runAction, type CliContext } from '../context.js';
import { formatTable } from '../render/table.js';

const POOL_LABEL: Record<PoolStatus['pool'], string> = { heavy: 'heavy', tts: 'tts', video: 'video' };

function age(sinceIso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(sinceIso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

async function status(ctx: CliContext): Promise<number> {
  const runtimeDir = resolveRuntimeDir(ctx.config);
  const pools = await readPools(ctx.config);
  ctx.emitJson({ type: 'status', profile: ctx.config.profile, runtimeDir, pools });

  const now = Date.now();
  const { bold, dim, warn } = ctx.style;
  const lines = [`${bold('Job slots')} ${dim(`(profile ${ctx.config.profile}; runtime dir ${runtimeDir})`)}`, ''];
  lines.push(
    formatTable(
      [{ header: 'pool' }, { header: 'running', align: 'right' }, { header: 'limit', align: 'right' }],
      pools.map((p) => [POOL_LABEL[p.pool], p.used >= p.limit ? warn(String(p.used)) : String(p.used), String(p.limit)]),
    ),
  );
  const holders = pools.flatMap((p) => p.holders);
  lines.push('');
  if (holders.length === 0) {
    lines.push('No jobs are running.');
  } else {
    lines.push(
      formatTable(
        [{ header: 'pool' }, { header: 'slot', align: 'right' }, { header: 'pid', align: 'right' }, { header: 'running for', align: 'right' }, { header: 'command' }],
        holders.map((h) => [POOL_LABEL[h.pool], String(h.index), String(h.pid), age(h.since, now), h.command]),
      ),
    );
  }
  const stale = pools.reduce((n, p) => n + p.stale, 0);
  if (stale > 0) lines.push('', dim(`${stale} slot${stale === 1 ? '' : 's'} left by processes that died; the next job reclaims ${stale === 1 ? 'it' : 'them'}.`));
  ctx.print(lines.join('\n'));
  return 0;
}

export function statusCommand(): Command {
  return new Command('status')
    .description('Show the cross-process job slots (heavy, TTS, video), their limits and who holds them')
    .addHelpText(
      'after',
      `
The limits come from the profile (maxConcurrentHeavyTasks, maxConcurrentTts, maxConcurrentVideo).
Slots live in the runtime directory: config "runtimeDir", $STEMKIT_RUNTIME_DIR, $XDG_RUNTIME_DIR/stemkit,
or <tmp>/stemkit-<uid>. Slots of processes that died are reclaimed automatically.`,
    )
    .action(runAction(async (ctx: CliContext) => status(ctx)));
}
