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
