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
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { loadConfigFile, loadUserConfigFile, userConfigDir } from '../config/load.js';
import { homeDirectory, resolveConfig, type CliOverrides } from '../config/resolve.js';
import type { ResolvedConfig } from '../config/schema.js';
import { InterruptedError, STOP_SIGNALS, type StopSignal } from '../errors.js';
import type { LogEvent, ProgressEvent } from '../progress.js';
import { cleanupTempFilesSync } from '../util/atomic.js';
import { interruptNotice, printable, printableStyled, withFlags } from './messages.js';
import { createRenderer, type Renderer } from './render/renderer.js';
import { isCi, selectRenderer } from './render/select.js';
import { createStyle, useColor } from './render/style.js';

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
  /** The user-level config file ($XDG_CONFIG_HOME/stemkit/…) in effect below it, if any. */
  userConfigFile: string | undefined;
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
  /**
   * The run's raw stdout, for binary results (e.g. `tts --stdout` audio). Prefer print()/emitJson() for
   * text; in-process tests inject their own stream here.
   */
  stdout: Writable;
  /** Colour helpers that respect --no-color / NO_COLOR / non-TTY. */
  style: { ok(s: string): string; fail(s: string): string; warn(s: string): string; dim(s: string): string; bold(s: string): string };
}

export type ActionHandler<A extends unknown[]> = (ctx: CliContext, ...args: A) => Promise<number | void>;

/** The streams and environment of one CLI run (injectable for in-process tests). */
export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  /** Where the config file search starts (default process.cwd()). */
  cwd: string;
  /** Logical cores (default os.availableParallelism()). */
  cores: number;
  /** An extra abort signal (tests use it to simulate Ctrl-C); SIGINT/SIGTERM are always wired. */
  signal: AbortSignal | undefined;
  /** stdin and stderr are a terminal: a person is watching (the thread policy uses it; CI is checked apart). */
  interactive: boolean;
}

/** State shared between main() and the action wrapper for one run. */
export interface RunState {
  io: CliIO;
  /** The exit code the action returned (undefined when no action ran). */
  exitCode: number | undefined;
}

let current: RunState | undefined;

/** @internal main() installs the state of the run it drives; runAction reads it. */
export function setRunState(state: RunState | undefined): RunState | undefined {
  const prev = current;
  current = state;
  return prev;
}

/** Fills unset io members from the real process. */
export function defaultIO(io: Partial<CliIO> = {}): CliIO {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  return {
    stdout,
    stderr,
    env: io.env ?? process.env,
    stdoutIsTTY: io.stdoutIsTTY ?? (io.stdout === undefined ? process.stdout.isTTY === true : false),
    stderrIsTTY: io.stderrIsTTY ?? (io.stderr === undefined ? process.stderr.isTTY === true : false),
    cwd: io.cwd ?? process.cwd(),
    cores: io.cores ?? availableParallelism(),
    signal: io.signal,
    interactive: io.interactive ?? (io.stderr === undefined && process.stdin.isTTY === true && process.stderr.isTTY === true),
  };
}

function optionKey(option: string): string {
  // '--no-color' → 'color', '--cache-dir' → 'cacheDir'
  const bare = option.replace(/^--?/, '').replace(/^no-/, '');
  return bare.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** True when the user typed the option (for this command or a global one) on the command line. */
export function typedOption(cmd: Command, option: string): boolean {
  return cmd.getOptionValueSourceWithGlobals(optionKey(option)) === 'cli';
}

/**
 * The config-relevant options the user typed, from the command and the root program.
 * Options a command defines with these names (`--offline`, `--precision`, `--mirror`, `--cache-dir`)
 * take part in config resolution automatically.
 */
export function collectOverrides(cmd: Command): CliOverrides {
  const all = cmd.optsWithGlobals<Record<string, unknown>>();
  const out: CliOverrides = {};
  const str = (k: 'profile' | 'device' | 'precision' | 'mirror' | 'cacheDir'): void => {
    if (typedOption(cmd, k) && typeof all[k] === 'string') out[k] = all[k];
  };
  str('profile');
  str('device');
  str('precision');
  str('mirror');
  str('cacheDir');
  if (typedOption(cmd, 'threads') && (typeof all['threads'] === 'string' || typeof all['threads'] === 'number')) out.threads = all['threads'];
  if (typedOption(cmd, 'offline') && typeof all['offline'] === 'boolean') out.offline = all['offline'];
  return out;
}

/** Reads the global flags from a parsed command (values, not sources). */
export function globalFlags(cmd: Command): GlobalFlags {
  const all = cmd.optsWithGlobals<Record<string, unknown>>();
  const flags: GlobalFlags = {
    json: all['json'] === true,
    quiet: all['quiet'] === true,
    verbose: all['verbose'] === true,
    color: all['color'] !== false,
  };
  if (typeof all['profile'] === 'string') flags.profile = all['profile'];
  if (typeof all['config'] === 'string') flags.config = all['config'];
  if (typeof all['device'] === 'string') flags.device = all['device'];
  if (typeof all['threads'] === 'string') flags.threads = all['threads'];
  return flags;
}

/**
 * Wraps a command handler: resolves the configuration (defaults < file < profile < env < typed flags),
 * builds the renderer, wires SIGINT/SIGTERM to `ctx.signal` and records the returned exit code for main().
 *
 * The first SIGINT, SIGTERM or SIGHUP aborts `ctx.signal` (handlers should end with InterruptedError; the
 * exit code is 128 + the signal number: 130, 143, 129); a second one removes tracked temp files and exits
 * at once with that code. With `ownSignals` the handler installs its own (`serve`: graceful shutdown).
 *
 * @example
 * cmd.action(runAction(async (ctx, inputs: string[], opts: Flags, cmd: Command) => { ... }))
 */
export function runAction<A extends unknown[]>(handler: ActionHandler<A>, opts: { ownSignals?: boolean } = {}): (...args: A) => Promise<void> {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const state = current ?? { io: defaultIO(), exitCode: undefined };
    const { io } = state;
    const flags = globalFlags(cmd);

    // HOME from the run's environment first (tests inject it), the OS account's home otherwise.
    const home = homeDirectory(io.env);
    const [file, userFile] = await Promise.all([loadConfigFile({ configPath: flags.config, cwd: io.cwd }), loadUserConfigFile(userConfigDir(io.env, home))]);
    const { config, sources, warnings: configWarnings } = resolveConfig({
      file: file.path !== undefined ? { path: file.path, config: file.config } : undefined,
      userFile: userFile.path !== undefined ? { path: userFile.path, config: userFile.config } : undefined,
      env: io.env,
      flags: collectOverrides(cmd),
      cores: io.cores,
      homeDir: home,
      interactive: io.interactive && !isCi(io.env),
    });

    const style = createStyle(useColor(flags, io.env, io.stderrIsTTY));
    const outStyle = createStyle(useColor(flags, io.env, io.stdoutIsTTY));
    const renderer: Renderer = await createRenderer(selectRenderer(flags, io.env, io.stderrIsTTY), {
      stderr: io.stderr,
      style,
      verbose: flags.verbose,
      stdoutIsTTY: io.stdoutIsTTY,
      cwd: io.cwd,
    });

    for (const message of configWarnings) renderer.onLog({ level: 'warn', message });

    const controller = new AbortController();
    let signals = 0;
    // The first signal decides the exit code: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP.
    let stoppedBy: StopSignal = 'SIGINT';
    const interrupted = (cause?: unknown): InterruptedError =>
      new InterruptedError(stoppedBy === 'SIGINT' ? 'interrupted' : `stopped by ${stoppedBy}`, { signal: stoppedBy, ...(cause !== undefined ? { cause } : {}) });
    const onSignal = (sig: StopSignal = 'SIGINT'): void => {
      signals += 1;
      if (signals === 1) {
        stoppedBy = sig;
        controller.abort(interrupted());
        // With --json, stderr carries JSON lines only, so the notice is a log event there.
        if (flags.json) renderer.onLog({ level: 'warn', message: interruptNotice() });
        else renderer.writeLine(io.stderr, style.warn(interruptNotice()));
        return;
      }
      renderer.stop();
      exitInterrupted(stoppedBy);
    };
    const onExternalAbort = (): void => onSignal();
    // A long-running command with its own shutdown sequence (`serve`) handles the signals itself.
    const handlers = Object.fromEntries(Object.keys(STOP_SIGNALS).map((sig) => [sig, () => onSignal(sig as StopSignal)])) as Record<StopSignal, () => void>;
    if (!opts.ownSignals) for (const [sig, h] of Object.entries(handlers)) process.on(sig, h);
    io.signal?.addEventListener('abort', onExternalAbort, { once: true });

    const ctx: CliContext = {
      config,
      sources,
      configFile: file.path,
      userConfigFile: userFile.path,
      flags,
      signal: controller.signal,
      // File names and messages from the library reach the terminal only through printable(): a name with
      // ESC or CR in it cannot drive the terminal (JSON output escapes them by itself).
      onProgress: (e) => renderer.onProgress(flags.json ? e : { ...e, ...(e.file !== undefined ? { file: printable(e.file) } : {}), ...(e.message !== undefined ? { message: printable(e.message) } : {}) }),
      onLog: ({ option, ...e }) => {
        // A library message names an option (`remux`); here the user typed a flag (`--remux`).
        if (option !== undefined) e.message = withFlags(e.message, { option });
        renderer.onLog(flags.json ? e : { ...e, message: printable(e.message, true), ...(e.file !== undefined ? { file: printable(e.file) } : {}) });
      },
      print: (text) => {
        if (!flags.json) renderer.writeLine(io.stdout, printableStyled(text));
      },
      emitJson: (record) => {
        if (flags.json) io.stdout.write(`${JSON.stringify(record)}\n`);
      },
      typed: (c, option) => typedOption(c, option),
      stdout: io.stdout,
      style: outStyle,
    };

    let failed = true;
    try {
      const code = await handler(ctx, ...args);
      failed = false;
      state.exitCode = controller.signal.aborted ? interrupted().exitCode : code ?? 0;
    } catch (e) {
      // Whatever the handler threw while stopping (the library's own InterruptedError, or a failure the abort
      // caused), the run ends as stopped by that signal.
      if (controller.signal.aborted) throw e instanceof InterruptedError && e.exitCode === interrupted().exitCode ? e : interrupted(e);
      throw e;
    } finally {
      renderer.stop();
      for (const [sig, h] of Object.entries(handlers)) process.off(sig, h);
      io.signal?.removeEventListener('abort', onExternalAbort);
      if (failed || controller.signal.aborted) cleanupTempFilesSync();
      // An interrupted run still has to unwind main() after this; a Ctrl-C landing in that window would
      // otherwise meet no listener and kill the process by signal instead of exiting 130.
      if (controller.signal.aborted) lingerAfterInterrupt();
    }
  };
}

function exitInterrupted(sig: StopSignal): never {
  cleanupTempFilesSync();
  // The only process.exit in stemkit: the user asked twice, nothing may delay the exit.
  process.exit(128 + STOP_SIGNALS[sig]);
}

let lingering = false;
/** Once per process: later SIGINT/SIGTERM/SIGHUP exit at once (after the temp-file cleanup). */
function lingerAfterInterrupt(): void {
  if (lingering) return;
  lingering = true;
  for (const sig of Object.keys(STOP_SIGNALS) as StopSignal[]) process.on(sig, () => exitInterrupted(sig));
}
