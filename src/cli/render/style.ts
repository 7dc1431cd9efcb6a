/**
 * Colour helpers. A dedicated chalk instance per run so `--no-color` never leaks between in-process runs.
 */
import { Chalk } from 'chalk';
import type { CliContext } from '../context.js';
import { isCi } from './select.js';

export type Style = CliContext['style'];

/**
 * Whether to colour a stream, first rule that applies: off with `--no-color`; off with NO_COLOR set (any
 * non-empty value, per no-color.org); FORCE_COLOR=0 or false turns it off and any other FORCE_COLOR value
 * turns it on, terminal or not (as chalk and Node do); off under CI (CI=true: plain logs, even on a
 * terminal); otherwise on when the stream is a terminal.
 */
export function useColor(flags: { color: boolean }, env: Readonly<Record<string, string | undefined>>, isTTY: boolean): boolean {
  if (!flags.color) return false;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  if (isCi(env)) return false;
  return isTTY;
}

export function createStyle(enabled: boolean): Style {
  const c = new Chalk({ level: enabled ? 1 : 0 });
  return {
    ok: (s) => c.green(s),
    fail: (s) => c.red(s),
    warn: (s) => c.yellow(s),
    dim: (s) => c.dim(s),
    bold: (s) => c.bold(s),
  };
}
