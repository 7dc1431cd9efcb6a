/**
 * `stemkit serve`: the separation and TTS jobs behind an HTTP API on this machine's job slots.
 * Thin adapter: flags → startServer (src/serve/app.ts, imported lazily), then wait for SIGTERM/SIGINT and
 * run the shutdown sequence. Exit 0 after a clean stop, 128 + the signal (143 SIGTERM, 130 SIGINT, 129 SIGHUP)
 * when running jobs had to be cancelled at the end of the grace period.
 */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { STOP_SIGNALS, UsageError, type StopSignal } from '../../errors.js';
import { runAction, type CliContext } from '../context.js';

interface ServeFlags {
  host?: string;
  port?: string;
  token?: string;
  queue?: string | boolean;
}

function packageVersion(): string {
  return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
}

/** The `serve` command. */
export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('Run separation and TTS jobs behind an HTTP API (models stay loaded between jobs)')
    .option('--host <host>', 'interface to bind (default 127.0.0.1; anything else requires a token)')
    .option('--port <port>', 'port (default 8765; 0 picks a free one)')
    .option('--token <secret>', 'require "Authorization: Bearer <secret>" on every request (default: env STEMKIT_TOKEN)')
    .option('--queue [url]', 'run the jobs on `stemkit worker`s through this Redis queue (default: STEMKIT_QUEUE_URL / "queue.url"); needs serve.workDir on shared storage');
  cmd.addHelpText(
    'after',
    `
Examples:
  stemkit serve                                   # http://127.0.0.1:8765, no token on loopback
  STEMKIT_TOKEN=$(openssl rand -hex 24) stemkit serve --host 0.0.0.0
  stemkit serve --queue redis://redis.internal:6379    # jobs run on the workers; serve.workDir is shared
  curl -F file=@song.mp3 -F mode=2 'http://127.0.0.1:8765/v1/separate?wait=true'

Limits come from the profile (heavy slots, shared with CLI runs) and serve.* in the config:
maxQueued, maxUploadBytes, maxLoadedModels, retention, shutdownGrace, inputRoots.
Exit codes: 0 stopped cleanly; 143 (SIGTERM) / 130 (SIGINT) / 129 (SIGHUP) running jobs were cancelled at shutdown;
64 bad options (e.g. a non-loopback host without a token).`,
  );
  return cmd.action(
    runAction(
      async (ctx: CliContext, f: ServeFlags) => {
        const port = f.port === undefined ? undefined : Number(f.port);
        if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError(`--port must be an integer from 0 to 65535 (got "${f.port}")`, { hint: 'e.g. --port 8765' });
        const token = f.token ?? (process.env['STEMKIT_TOKEN'] || undefined);
        const queueUrl = f.queue === undefined ? undefined : typeof f.queue === 'string' ? f.queue : (ctx.config.queue.url ?? '');
        const { startServer } = await import('../../serve/app.js');
        const server = await startServer({
          config: ctx.config,
          ...(f.host !== undefined ? { host: f.host } : {}),
          ...(port !== undefined ? { port } : {}),
          token,
          queueUrl,
          version: packageVersion(),
          onLog: ctx.onLog,
        });
        ctx.print(`listening on ${server.url}`);
        ctx.emitJson({ type: 'listening', url: server.url, port: server.port });
        const stops = Object.keys(STOP_SIGNALS) as StopSignal[];
        const first = new Map<StopSignal, () => void>();
        const signal = await new Promise<StopSignal>((resolve) => {
          for (const s of stops) first.set(s, () => resolve(s));
          for (const [s, h] of first) process.on(s, h);
        });
        for (const [s, h] of first) process.off(s, h);
        ctx.onLog({ level: 'info', message: `${signal}: no new jobs; running jobs get ${ctx.config.serve.shutdownGrace}s to finish (send it again to stop them now)` });
        const now = new AbortController();
        const again = (): void => now.abort();
        for (const s of stops) process.once(s, again);
        const aborted = await server.shutdown(now.signal);
        for (const s of stops) process.off(s, again);
        ctx.onLog({ level: 'info', message: aborted ? 'stopped; running jobs were cancelled' : 'stopped' });
        return aborted ? 128 + STOP_SIGNALS[signal] : 0;
      },
      { ownSignals: true },
    ),
  );
}
