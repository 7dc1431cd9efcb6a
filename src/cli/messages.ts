/**
 * User-facing text of the CLI shell, as small formatters, so wording lives in one place.
 */
import type { ConfigProblem } from '../errors.js';

export function interruptNotice(): string {
  return 'interrupting... (press Ctrl-C again to stop immediately)';
}

/** `CPU: 2 cores available, using 1 thread (limit: 4, usage limit 0.7)` */
export function cpuSummary(c: { cores: number; cpuThreads: number; maxCpuThreads: number; cpuUsageLimit: number; threads: number | undefined; threadsPolicy?: string; profile?: string }): string {
  const cores = `${c.cores} ${c.cores === 1 ? 'core' : 'cores'} available`;
  const using = `using ${c.cpuThreads} ${c.cpuThreads === 1 ? 'thread' : 'threads'}`;
  const limits = `limit: ${c.maxCpuThreads}, usage limit ${c.cpuUsageLimit}`;
  const why =
    c.threads !== undefined
      ? `set explicitly; profile limit: ${c.maxCpuThreads}, usage limit ${c.cpuUsageLimit}`
      : c.threadsPolicy === 'auto-interactive'
        ? 'auto: all cores at a terminal; --profile or --threads to cap'
        : c.threadsPolicy === 'auto-server'
          ? `auto, not a terminal: profile ${c.profile ?? 'medium'}, ${limits}`
          : limits;
  return `CPU: ${cores}, ${using} (${why})`;
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** One line per config problem: `  - gpu.memoryFraction = 1.5 (from .stemrc.json): expected a number in (0, 1]` */
export function configProblemLine(p: ConfigProblem): string {
  return `  - ${p.key} = ${show(p.value)} (from ${p.source}): expected ${p.expected}`;
}

export function internalErrorLine(message: string): string {
  return `internal error: ${message}`;
}

export function internalErrorHint(): string {
  return 'This is a bug in stemkit. Re-run with --verbose for the stack trace and report it.';
}

export function usageHint(): string {
  return 'Run `stemkit --help` for the commands and options.';
}

/** Commander's `(Did you mean separate?)` tail → `did you mean "separate"?` */
export function commanderSuggestion(text: string): string | undefined {
  const m = /Did you mean (?:one of )?(.+?)\?\)?\s*$/m.exec(text);
  if (!m?.[1]) return undefined;
  return `did you mean ${m[1]}?`;
}

/**
 * Makes text from outside stemkit (file names, TTS text, ffmpeg output) safe to print on a terminal:
 * C0/C1 control characters, DEL and the bidirectional overrides become visible escapes (`\x1b`, `\r`,
 * `\u202e`), so a crafted file name can neither move the cursor, recolour or retitle the terminal, nor
 * reorder what is shown. Newlines are escaped too unless `keepNewlines` (for multi-line messages we built).
 */
export function printable(text: string, keepNewlines = false): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n' && keepNewlines) return c;
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * For text that already carries stemkit's own colours (chalk SGR sequences, `ESC [ … m`): escapes every other
 * control character. A last line of defence behind printable() at the places that interpolate outside text.
 */
export function printableStyled(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.split(/(\u001b\[[0-9;]*m)/).map((part, i) => (i % 2 === 1 ? part : printable(part, true))).join('');
}

/** The flag of a library option where it is not simply the option in kebab case. */
const OPTION_FLAGS: Record<string, string> = {
  channelMode: '--channels',
  outDir: '-o',
  timeoutSec: '--wait-timeout',
  mdx: '--mdx-*',
  'mdx.nFft': '--mdx-n-fft',
  'mdx.dimF': '--mdx-dim-f',
  'mdx.dimT': '--mdx-dim-t',
};

/** `twoStems` → `--two-stems`: library errors name options, the CLI shows the flag the user typed. */
export function flagForOption(option: string): string {
  return OPTION_FLAGS[option] ?? `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * The hint of a library error as the command line puts it: `wait: true` (the library's default that the CLI
 * turns off with `--no-wait`) cannot be mapped word for word, so it has its own line; other hints go through withFlags.
 */
export function cliHint(code: string, hint: string, details: Record<string, unknown> | undefined): string {
  if (code === 'E_BUSY' && details?.['pool'] !== undefined) return 'Retry later, or let stemkit wait for a free slot (drop --no-wait).';
  return hintWithFlags(hint, details);
}

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/**
 * A hint with its options shown as flags: those of `details.option`, and `details.hintOption` for an option
 * named only in the hint (where the message uses the same word in its plain sense: "needs voices").
 */
export function hintWithFlags(hint: string, details: Record<string, unknown> | undefined): string {
  return withFlags(hint, { option: [...asList(details?.['option']), ...asList(details?.['hintOption'])] });
}

/**
 * A library message (or hint) with the option(s) named in `details.option` (one name or a list) shown as flags: the message
 * `twoStems drums: the model has no stem "drums"` reads `--two-stems drums: …` on the command line.
 */
export function withFlags(text: string, details: Record<string, unknown> | undefined): string {
  const named = details?.['option'];
  const options = typeof named === 'string' ? [named] : Array.isArray(named) ? named.filter((o): o is string => typeof o === 'string') : [];
  let out = text;
  for (const option of options) {
    if (option === '') continue;
    // Nested options (`mdx.nFft`) carry a dot: escaped, it matches only itself.
    const name = option.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`(^|[^\\w".-])${name}(?![\\w"-]|\\.\\w)`, 'g'), (_m, pre: string) => `${pre}${flagForOption(option)}`);
  }
  return out;
}
