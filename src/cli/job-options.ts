/**
 * The job flags shared by `separate` and `tts`: `--no-wait` and `--wait-timeout <seconds>` (CLI only: the library takes `wait` and `timeoutSec`).
 * Only the types and Option class of commander are used; command modules call addJobOptions().
 */
import { type Command, Option } from 'commander';
import { UsageError } from '../errors.js';

/** What acquireSlots needs from the flags. */
export interface JobOptions {
  wait: boolean;
  timeoutSec?: number;
}

/** Adds `--no-wait` and `--wait-timeout <seconds>` to a command. Returns the command for chaining. */
export function addJobOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--no-wait', 'when every job slot is busy, exit at once with code 75 instead of waiting'))
    .addOption(new Option('--wait-timeout <seconds>', 'give up (exit 75) after waiting this long for a free slot'));
}

/**
 * Reads the flags added by addJobOptions from commander's parsed options.
 * @throws UsageError (64) when --wait-timeout is not a non-negative number.
 */
export function jobOptionsFrom(opts: { wait?: boolean; waitTimeout?: string | number }): JobOptions {
  const wait = opts.wait !== false;
  if (opts.waitTimeout === undefined) return { wait };
  const timeoutSec = Number(opts.waitTimeout);
  if (String(opts.waitTimeout).trim() === '' || !Number.isFinite(timeoutSec) || timeoutSec < 0) {
    throw new UsageError(`--wait-timeout must be a number of seconds ≥ 0 (got "${String(opts.waitTimeout)}")`, {
      hint: 'Example: --wait-timeout 600',
    });
  }
  return { wait, timeoutSec };
}
