/**
 * The CLI entry: builds the commander program, runs it, and maps every thrown error to one printed
 * line and an exit code (the only place that does). Command modules stay light at import time so
 * `stemkit --help` never loads onnxruntime.
 */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { ConfigError, ExitCode, InternalError, StemkitError, UsageError, fromSystemError } from '../errors.js';
import { benchCommand } from './commands/bench.js';
import { completionCommand } from './commands/completion.js';
import { configCommand } from './commands/config.js';
import { doctorCommand } from './commands/doctor.js';
import { evalCommand } from './commands/eval.js';
import { modelsCommand } from './commands/models.js';
import { separateCommand } from './commands/separate.js';
import { serveCommand } from './commands/serve.js';
import { statusCommand } from './commands/status.js';
import { ttsCommand } from './commands/tts.js';
import { queueCommand } from './commands/queue.js';
import { workerCommand } from './commands/worker.js';
import { defaultIO, setRunState, type CliIO, type RunState } from './context.js';
import { cliHint, commanderSuggestion, configProblemLine, withFlags, internalErrorHint, internalErrorLine, printable, usageHint } from './messages.js';
import { createStyle, useColor } from './render/style.js';

export interface MainIO {
  stdout?: Writable;
  stderr?: Writable;
  env?: NodeJS.ProcessEnv;
  stdoutIsTTY?: boolean;
  stderrIsTTY?: boolean;
  /** Where the config search starts (default process.cwd()). */
  cwd?: string;
  /** Logical cores seen by the thread computation (default os.availableParallelism()). */
  cores?: number;
  /** Aborting it acts like one Ctrl-C (for tests). */
  signal?: AbortSignal;
  /** A person at a terminal (default: stdin and stderr are TTYs, when stderr is the process's). */
  interactive?: boolean;
}

function packageVersion(): string {
  // dist/cli/main.js and src/cli/main.ts are both two levels below the package root.
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}

/** Exit codes and what they mean (shown in `--help`). */
const EXIT_CODES_HELP = `
Exit codes:
  0 ok, 64 usage, 65 bad input data, 66 input not found, 69 unavailable (model, device, ffmpeg),
  70 internal error, 73 cannot write output, 75 busy (retry later), 78 configuration,
  130 interrupted (Ctrl-C), 143 stopped by SIGTERM, 129 stopped by SIGHUP`;

/** Builds the program with every command registered. Exposed for tests and docs generation. */
export function buildProgram(
  io: Pick<CliIO, 'stdout' | 'stderr' | 'stdoutIsTTY' | 'stderrIsTTY'>,
  onParseError: (cmd: Command) => void = () => {},
): Command {
  const program = new Command('stemkit')
    .description('Separate music and speech into stems and turn text into speech, locally, on a GPU or a thread-capped CPU.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    // No .default() on anything the config can set: a default would override the config file (style.md §10).
    .option('--profile <name>', 'resource profile: small, medium, large, or one defined in the config file')
    .option('--config <file>', 'use this config file instead of searching for .stemrc / stemkit.config.*')
    // No commander .choices(): a bad --device is reported by config validation together with every other problem.
    .option('--device <device>', 'where to run models: auto, cpu, cuda, webgpu')
    .option('--threads <n>', 'CPU threads for inference (overrides the profile computation)')
    .option('--json', 'machine-readable output: results as JSON lines on stdout, progress as JSON lines on stderr')
    .option('--quiet', 'no progress output (warnings and errors still go to stderr)')
    .option('--verbose', 'debug messages, and stack traces for errors')
    .option('--no-color', 'no colours (also NO_COLOR=1, or when the output is not a terminal)')
    .helpOption('-h, --help', 'show help')
    .addHelpText('after', EXIT_CODES_HELP);

  for (const cmd of [separateCommand(), ttsCommand(), benchCommand(), modelsCommand(), evalCommand(), statusCommand(), workerCommand(), queueCommand(), configCommand(), doctorCommand(), completionCommand(), serveCommand()]) {
    program.addCommand(cmd);
  }
  program.helpCommand('help [command]', 'show help for a command');

  // addCommand() does not copy these settings to subcommands, so apply them to the whole tree.
  const apply = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.showSuggestionAfterError(true);
    cmd.configureHelp({ showGlobalOptions: true, sortSubcommands: false });
    cmd.configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Errors are printed once, by main(), in stemkit's format; remember which command failed for the hint.
      outputError: () => onParseError(cmd),
      getOutHasColors: () => false,
      getErrHasColors: () => false,
      getOutHelpWidth: () => (io.stdoutIsTTY ? (process.stdout.columns ?? 100) : 100),
      getErrHelpWidth: () => (io.stderrIsTTY ? (process.stderr.columns ?? 100) : 100),
    });
    for (const sub of cmd.commands) apply(sub);
  };
  apply(program);
  return program;
}

/** Flags needed to report an error that happens before (or during) option parsing. */
function prescan(argv: readonly string[]): { json: boolean; verbose: boolean; color: boolean } {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  const opts = end === -1 ? args : args.slice(0, end);
  return { json: opts.includes('--json'), verbose: opts.includes('--verbose'), color: !opts.includes('--no-color') };
}

/** Turns a commander error into stemkit's, or undefined for help/version (not errors). */
function commandPath(cmd: Command | undefined): string {
  const names: string[] = [];
  for (let c: Command | null | undefined = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ') || 'stemkit';
}

/** The deepest command named by the leading words of argv (`models lst` → models); for usage hints. */
function namedCommand(program: Command, argv: readonly string[]): Command {
  let cmd = program;
  for (const word of argv.slice(2)) {
    if (word.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    cmd = sub;
  }
  return cmd;
}

function fromCommander(e: CommanderError, failed: Command | undefined): StemkitError | undefined {
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return undefined;
  if (e.code === 'commander.help' && e.exitCode === 0) return undefined;
  if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') {
    const where = failed?.parent ? ` for '${commandPath(failed).replace(/^stemkit /, '')}'` : '';
    return new UsageError(`no command given${where}`, { code: 'E_USAGE', hint: failed?.parent ? `Run \`${commandPath(failed)} --help\` for its commands.` : usageHint() });
  }
  const lines = e.message.split('\n');
  const first = (lines[0] ?? '').replace(/^error:\s*/, '');
  const suggestion = commanderSuggestion(e.message);
  const message = first.replace(/\s*\(Did you mean.*$/, '');
  const hint = failed?.parent ? `Run \`${commandPath(failed)} --help\` for its ${e.code === 'commander.unknownCommand' ? 'commands' : 'arguments and options'}.` : usageHint();
  return new UsageError(message, {
    code: e.code === 'commander.unknownCommand' ? 'E_UNKNOWN_COMMAND' : e.code === 'commander.unknownOption' ? 'E_UNKNOWN_OPTION' : 'E_USAGE',
    hint: suggestion ? `${suggestion} ${hint}` : hint,
    cause: e,
  });
}

/**
 * An error message made safe for the terminal. Only the lines stemkit appended itself (an ffmpeg error's stderr
 * tail, listed in details.stderr) stay separate lines; newlines inside the message proper are escaped.
 */
function terminalText(message: string, error: StemkitError): string {
  const tail = error.details?.['stderr'];
  const n = Array.isArray(tail) ? tail.length : 0;
  if (n === 0) return printable(message);
  const lines = message.split('\n');
  return [printable(lines.slice(0, -n).join('\n')), ...lines.slice(-n).map((l) => printable(l))].join('\n');
}

/** Prints an error in the one stemkit format and returns its exit code. */
export function reportError(err: unknown, io: CliIO, flags: { json: boolean; verbose: boolean; color: boolean }): number {
  const style = createStyle(useColor(flags, io.env, io.stderrIsTTY));
  // A raw file-system error that escaped a lower layer still gets its real meaning (73 full disk, 66 unreadable).
  err = fromSystemError(err);
  const known = err instanceof StemkitError ? err : undefined;
  const error =
    known ??
    new InternalError(err instanceof Error ? err.message : String(err), { cause: err, hint: internalErrorHint() });
  const headline = known ? withFlags(error.message, error.details) : internalErrorLine(error.message);
  const lines = [style.fail(`stemkit: ${terminalText(headline, error)}`)];
  if (error instanceof ConfigError) for (const p of error.problems) lines.push(printable(configProblemLine(p)));
  if (error.hint) lines.push(style.dim(`hint: ${printable(cliHint(error.code, error.hint, error.details))}`));
  if (flags.verbose) {
    const stackOf = known ? (error.cause instanceof Error ? error.cause : error) : err instanceof Error ? err : undefined;
    if (stackOf?.stack) lines.push(style.dim(stackOf.stack));
  }
  io.stderr.write(`${lines.join('\n')}\n`);
  if (flags.json) {
    const record: Record<string, unknown> = {
      type: 'error',
      code: error.code,
      exitCode: error.exitCode,
      message: headline,
      hint: error.hint ? cliHint(error.code, error.hint, error.details) : null,
    };
    if (error.details) record['details'] = error.details;
    io.stdout.write(`${JSON.stringify(record)}\n`);
  }
  return error.exitCode;
}

const guarded = new WeakSet<Writable>();
function ignoreEpipe(e: NodeJS.ErrnoException): void {
  if (e.code !== 'EPIPE') throw e;
}

/**
 * Runs the CLI and returns the exit code (bin/stemkit.js sets process.exitCode). Never calls
 * process.exit, except on a second Ctrl-C.
 * @param argv Like process.argv: `[node, script, ...args]`.
 */
export async function main(argv: string[], io: MainIO = {}): Promise<number> {
  const fullIO = defaultIO(io);
  // `stemkit config | head` closes the pipe early; that is not an error worth a stack trace.
  // The listener stays: a buffered write can fail after main() has returned.
  for (const s of [fullIO.stdout, fullIO.stderr]) {
    if (!guarded.has(s) && s.listenerCount('error') === 0) {
      guarded.add(s);
      s.on('error', ignoreEpipe);
    }
  }
  const state: RunState = { io: fullIO, exitCode: undefined };
  const prev = setRunState(state);
  const pre = prescan(argv);
  let failed: Command | undefined;
  let program: Command | undefined;
  try {
    program = buildProgram(fullIO, (cmd) => {
      failed = cmd;
    });
    await program.parseAsync(argv, { from: 'node' });
    return state.exitCode ?? ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // outputError is not called for a missing subcommand (commander shows help instead): find it from argv.
      const mapped = fromCommander(e, failed ?? (program ? namedCommand(program, argv) : undefined));
      if (!mapped) return ExitCode.ok;
      return reportError(mapped, fullIO, pre);
    }
    return reportError(e, fullIO, pre);
  } finally {
    setRunState(prev);
  }
}
