/**
 * The contract between the CLI entry (cli/main.ts) and each command module (cli/commands/*.ts).
 *
 * A command module exports a factory returning a commander Command whose action is wrapped with
 * `runAction`. runAction resolves the configuration (defaults < file < profile < env < typed flags),
 * builds the renderer, wires SIGINT/SIGTERM to an AbortSignal and calls the handler with a CliContext.
 * Handlers return an exit code (or nothing for 0) and throw StemkitErrors for failures; cli/main.ts maps
 * thrown errors to one printed line and an exit code.
 */
import type { Command } from 'commander';
import type { ResolvedConfig } from '../config/schema.js';
import type { LogEvent, ProgressEvent } from '../progress.js';

export interface GlobalFlags {
  profile?: string;
  config?: string;
  device?: string;
  threads?: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
}

export interface CliContext {
  config: ResolvedConfig;
  /** Where each resolved value came from, keyed by dotted path: 'default', a file path, 'profile medium', 'env MAX_CPU_THREADS', 'flag --threads'. */
  sources: Record<string, string>;
  /** The config file in effect, if any. */
  configFile: string | undefined;
  flags: GlobalFlags;
  /** Aborted on SIGINT/SIGTERM. Pass to every library call. */
  signal: AbortSignal;
  /** Library progress events go here: bars on a TTY, plain lines otherwise, JSON lines with --json. */
  onProgress(event: ProgressEvent): void;
  /** Library log events (warnings in yellow; debug only with --verbose). */
  onLog(event: LogEvent): void;
  /** Human-readable result text to stdout (suppressed with --json; kept with --quiet). */
  print(text: string): void;
  /** A machine-readable result record: one JSON line on stdout with --json, ignored otherwise. */
  emitJson(record: Record<string, unknown>): void;
  /** True when the user typed the option on the command line (not a default). */
  typed(cmd: Command, option: string): boolean;
  /** Colour helpers that respect --no-color / NO_COLOR / non-TTY. */
  style: { ok(s: string): string; fail(s: string): string; warn(s: string): string; dim(s: string): string; bold(s: string): string };
}

export type ActionHandler<A extends unknown[]> = (ctx: CliContext, ...args: A) => Promise<number | void>;
