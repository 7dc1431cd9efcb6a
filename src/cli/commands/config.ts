/**
 * `stemkit config`: the resolved configuration, where each value came from, and the thread computation.
 */
import { Command } from 'commander';
import { runAction } from '../context.js';
import { cpuSummary } from '../messages.js';
import { redactUrl } from '../../util/redact.js';

/** Flattens the resolved config into dotted keys, in a stable order. */
export function flattenConfig(obj: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(...flattenConfig(v as Record<string, unknown>, key));
    else out.push([key, v]);
  }
  return out;
}

/** `stemkit config`: every resolved value with its source, and the computed CPU thread count. */
export function configCommand(): Command {
  return new Command('config')
    .description('Show the resolved configuration and where every value comes from')
    .action(
      runAction(async (ctx) => {
        // The queue URL may carry a password: shown redacted, like everywhere else.
        const shownConfig = { ...ctx.config, queue: { ...ctx.config.queue, url: ctx.config.queue.url === undefined ? undefined : redactUrl(ctx.config.queue.url) } };
        const entries = flattenConfig(shownConfig as unknown as Record<string, unknown>);
        if (ctx.flags.json) {
          ctx.emitJson({
            type: 'config',
            configFile: ctx.configFile ?? null,
            userConfigFile: ctx.userConfigFile ?? null,
            // Unset values as null rather than dropped, so every key is present in the record.
            config: JSON.parse(JSON.stringify(shownConfig, (_k, v: unknown) => (v === undefined ? null : v))) as unknown,
            sources: Object.fromEntries(entries.map(([k]) => [k, ctx.sources[k] ?? 'default'])),
            cpu: cpuSummary(ctx.config),
          });
          return 0;
        }
        ctx.print(`config file: ${ctx.configFile ?? '(none found)'}`);
        if (ctx.userConfigFile) ctx.print(`user config: ${ctx.userConfigFile}`);
        const shown = entries.map(([k, v]) => [k, v === undefined ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v)] as const);
        const keyWidth = Math.max(...shown.map(([k]) => k.length));
        // Long paths would push every source far right; cap the value column and let long values overflow.
        const valueWidth = Math.min(40, Math.max(...shown.map(([, v]) => v.length)));
        for (const [k, v] of shown) ctx.print(`${k.padEnd(keyWidth)}  ${v.padEnd(valueWidth)}  ${ctx.style.dim(ctx.sources[k] ?? 'default')}`);
        ctx.print(cpuSummary(ctx.config));
        return 0;
      }),
    );
}
