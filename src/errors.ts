/**
 * Typed errors with stable string codes and sysexits-style exit codes.
 * The CLI maps every thrown error to an exit code in exactly one place (cli/main.ts).
 */

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 64,
  dataErr: 65,
  noInput: 66,
  unavailable: 69,
  software: 70,
  cantCreate: 73,
  tempFail: 75,
  config: 78,
  /** 128 + the signal number, as shells report a process ended by a signal. */
  hangup: 129,
  interrupted: 130,
  terminated: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface StemkitErrorOptions {
  /** A short next step for the user, printed on its own line under the message. */
  hint?: string;
  cause?: unknown;
  /** Structured details for `--json` error output. */
  details?: Record<string, unknown>;
}

export class StemkitError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, exitCode: ExitCodeValue, message: string, options: StemkitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.details = options.details;
  }
}

/** 64: the command line itself is wrong. */
export class UsageError extends StemkitError {
  constructor(message: string, options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_USAGE', ExitCode.usage, message, options);
  }
}

/** 65: the input exists but its content is malformed or unsupported. */
export class DataError extends StemkitError {
  constructor(message: string, options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_BAD_INPUT', ExitCode.dataErr, message, options);
  }
}

/** 66: an input file is missing or unreadable. */
export class InputError extends StemkitError {
  constructor(message: string, options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_INPUT_NOT_FOUND', ExitCode.noInput, message, options);
  }
}

/** 69: something needed is not available (model, device/provider, ffmpeg, espeak-ng, network). */
export class UnavailableError extends StemkitError {
  constructor(message: string, options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_UNAVAILABLE', ExitCode.unavailable, message, options);
  }
}

/** 73: an output cannot be created or written. */
export class OutputError extends StemkitError {
  constructor(message: string, options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_OUTPUT', ExitCode.cantCreate, message, options);
  }
}

/** 75: temporary condition (all slots busy); the caller may retry later. */
export class BusyError extends StemkitError {
  constructor(message: string, options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_BUSY', ExitCode.tempFail, message, options);
  }
}

export interface ConfigProblem {
  /** Dotted key path, e.g. `gpu.memoryFraction`. */
  key: string;
  value: unknown;
  /** What is allowed, e.g. `a number in (0, 1]` or `one of: small, medium, large`. */
  expected: string;
  /** Where the bad value came from, e.g. `.stemrc.json`, `env MAX_CPU_THREADS`, `flag --threads`. */
  source: string;
}

/** 78: configuration is invalid; carries every problem found, not just the first. */
export class ConfigError extends StemkitError {
  readonly problems: ConfigProblem[];
  constructor(message: string, problems: ConfigProblem[] = [], options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_CONFIG_INVALID', ExitCode.config, message, {
      ...options,
      details: { problems, ...(options.details ?? {}) },
    });
    this.problems = problems;
  }
}

/** Signals that stop a run gracefully, with their numbers (the exit code is 128 + the number, as shells report). */
export const STOP_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
export type StopSignal = keyof typeof STOP_SIGNALS;

/** 130: the user interrupted (SIGINT or an aborted signal); 143 for SIGTERM and 129 for SIGHUP. */
export class InterruptedError extends StemkitError {
  constructor(message = 'interrupted', options: StemkitErrorOptions & { signal?: StopSignal } = {}) {
    super('E_INTERRUPTED', options.signal === 'SIGTERM' ? ExitCode.terminated : options.signal === 'SIGHUP' ? ExitCode.hangup : ExitCode.interrupted, message, options);
  }
}

/** 70: a bug or an unexpected state inside stemkit (or a model that breaks its contract). */
export class InternalError extends StemkitError {
  constructor(message: string, options: StemkitErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_INTERNAL', ExitCode.software, message, options);
  }
}

export function isStemkitError(e: unknown): e is StemkitError {
  return e instanceof StemkitError;
}

/** Throws InterruptedError when the signal is aborted; call between blocks of long work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError();
}

const READ_SYSCALLS = new Set(['scandir', 'opendir', 'stat', 'lstat', 'read', 'access', 'readlink', 'realpath']);

/**
 * Maps a raw file-system error (an `ErrnoException` that escaped a lower layer) to the StemkitError it means,
 * so that a full disk is 73 and an unreadable file 66 on every path, never 70 "a bug"; any other value comes
 * back unchanged. `role` says whether the path was being read (input) or written (output) when the caller
 * knows; otherwise the system call decides.
 */
export function fromSystemError(e: unknown, ctx: { path?: string; role?: 'input' | 'output' } = {}): unknown {
  if (e instanceof StemkitError || !(e instanceof Error)) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  const path = ctx.path ?? err.path ?? (err as { dest?: string }).dest;
  const at = path ? ` (${path})` : '';
  const role = ctx.role ?? (err.syscall && READ_SYSCALLS.has(err.syscall) ? 'input' : 'output');
  const opts = { cause: e };
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new OutputError(`no space left on the device${at}`, { ...opts, code: 'E_DISK_FULL', hint: 'free some space or write to another disk (outDir); nothing incomplete was left under a final name', details: { hintOption: 'outDir' } });
    case 'EFBIG':
      return new OutputError(`file too large for the file system${at}`, { ...opts, code: 'E_DISK_FULL', hint: 'write to another file system or a compressed output (format flac)', details: { hintOption: 'format' } });
    case 'EROFS':
      return new OutputError(`read-only file system${at}`, { ...opts, hint: 'write to another folder (outDir)', details: { hintOption: 'outDir' } });
    case 'EMFILE':
    case 'ENFILE':
      return new BusyError(`too many open files${at}`, { ...opts, code: 'E_TOO_MANY_FILES', hint: 'raise the limit (ulimit -n) or run fewer jobs at once' });
    case 'EACCES':
    case 'EPERM':
    case 'ENAMETOOLONG':
    case 'ELOOP':
    case 'EIO':
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ENOENT': {
      const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENAMETOOLONG' ? 'name too long' : code === 'ELOOP' ? 'symbolic link loop' : code === 'EIO' ? 'I/O error' : code === 'ENOENT' ? 'no such file or folder' : code === 'EISDIR' ? 'is a folder' : 'a part of the path is not a folder';
      return role === 'input'
        ? new InputError(`cannot read${path ? ` ${path}` : ''}: ${why}`, { ...opts, code: 'E_INPUT_UNREADABLE', hint: 'check the path and its permissions' })
        : new OutputError(`cannot write${path ? ` ${path}` : ''}: ${why}`, { ...opts, hint: 'check the output folder (-o), its permissions and name lengths' });
    }
    default:
      return e;
  }
}
