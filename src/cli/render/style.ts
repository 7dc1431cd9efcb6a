/**
 * Colour helpers. A dedicated chalk instance per run so `--no-color` never leaks between in-process runs.
 */
import { Chalk } from 'chalk';
import type { CliContext } from '../context.js';

export type Style = CliContext['style'];

/**
 * Whether to colour a stream: off with `--no-color`, with NO_COLOR set (any non-empty value, per
 * no-color.org), with FORCE_COLOR=0, or when the stream is not a terminal.
 */
export function useColor(flags: { color: boolean }, env: Readonly<Record<string, string | undefined>>, isTTY: boolean): boolean {
  if (!flags.color) return false;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['FORCE_COLOR'] === '0') return false;
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
