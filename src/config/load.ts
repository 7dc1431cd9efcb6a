/**
 * Finding and reading the config file (cosmiconfig, module name `stemkit`). cosmiconfig is imported
 * lazily so `stemkit --help` does not pay for it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { ConfigError } from '../errors.js';

/** Where stemkit looks for a config file, in this order, in each directory from cwd up to the project root. */
export const SEARCH_PLACES = [
  'package.json',
  '.stemrc',
  '.stemrc.json',
  '.stemrc.yaml',
  '.stemrc.yml',
  'stemkit.config.js',
  'stemkit.config.mjs',
  'stemkit.config.cjs',
] as const;

export interface LoadedConfigFile {
  /** Absolute path of the file in effect, or undefined when none was found. */
  path: string | undefined;
  /** The parsed content (validated later by resolveConfig). */
  config: unknown;
}

export interface LoadConfigOptions {
  /** `--config <file>`: load exactly this file (it must exist). */
  configPath?: string | undefined;
  /** Where the search starts; defaults to process.cwd(). */
  cwd?: string | undefined;
}

/** File names of the user-level config, in `$XDG_CONFIG_HOME/stemkit/` (default `~/.config/stemkit/`). */
export const USER_CONFIG_PLACES = ['config.yaml', 'config.yml', 'config.json', '.stemrc', '.stemrc.yaml', '.stemrc.yml', '.stemrc.json'] as const;

/** The user-level config folder: `$XDG_CONFIG_HOME/stemkit`, else `<home>/.config/stemkit`; undefined without a home. */
export function userConfigDir(env: Readonly<Record<string, string | undefined>>, home: string | undefined): string | undefined {
  const xdg = env['XDG_CONFIG_HOME'];
  // The XDG spec: a relative value is invalid and must be ignored.
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'stemkit');
  return home !== undefined ? join(home, '.config', 'stemkit') : undefined;
}

/**
 * Loads the user-level config (the layer below the project's): the first of USER_CONFIG_PLACES in
 * `dir`. Nothing found is not an error.
 * @throws ConfigError (78) when the file cannot be parsed.
 */
export async function loadUserConfigFile(dir: string | undefined): Promise<LoadedConfigFile> {
  if (dir === undefined || !existsSync(dir)) return { path: undefined, config: undefined };
  const { cosmiconfig } = await import('cosmiconfig');
  const explorer = cosmiconfig('stemkit', { searchPlaces: [...USER_CONFIG_PLACES], searchStrategy: 'none', cache: false });
  try {
    const result = await settleOrFail(explorer.search(dir), `the user config in ${dir}`);
    if (!result || result.isEmpty) return { path: result?.filepath, config: undefined };
    return { path: result.filepath, config: result.config };
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw parseFailure((cause as { filepath?: string } | null)?.filepath ?? join(dir, 'config'), cause);
  }
}

/**
 * Loads the config file: the one named by `--config`, or the first found by searching from `cwd`
 * upwards to the directory holding the nearest package.json.
 * @throws ConfigError (78) when the named file is missing or a file cannot be parsed.
 */
export async function loadConfigFile(opts: LoadConfigOptions = {}): Promise<LoadedConfigFile> {
  const cwd = opts.cwd ?? process.cwd();
  const { cosmiconfig, defaultLoaders } = await import('cosmiconfig');
  const ext = opts.configPath !== undefined ? extname(opts.configPath) : '';
  const explorer = cosmiconfig('stemkit', {
    searchPlaces: [...SEARCH_PLACES],
    // `--config any.name` with an extension cosmiconfig does not know is read like `.stemrc`: YAML (or JSON).
    ...(ext !== '' && !(ext in defaultLoaders) ? { loaders: { [ext]: defaultLoaders['.yaml'] } } : {}),
    // 'project' stops at the nearest package.json, so a config file in $HOME does not leak into every project.
    searchStrategy: 'project',
    cache: false,
  });
  if (opts.configPath !== undefined) {
    const path = resolvePath(cwd, opts.configPath);
    if (!existsSync(path)) {
      throw new ConfigError(`config file not found: ${opts.configPath}`, [{ key: '--config', value: opts.configPath, expected: 'an existing file', source: 'flag --config' }], {
        code: 'E_CONFIG_NOT_FOUND',
        hint: 'Check the path given to --config, or leave it out to search for .stemrc / stemkit.config.* from the current directory.',
      });
    }
    try {
      const result = await settleOrFail(explorer.load(path), path);
      return { path, config: result?.config };
    } catch (cause) {
      throw cause instanceof ConfigError ? cause : parseFailure(path, cause);
    }
  }
  try {
    const result = await settleOrFail(explorer.search(cwd), firstCandidate(cwd) ?? `the config file found from ${cwd}`);
    if (!result || result.isEmpty) return { path: result?.filepath, config: undefined };
    return { path: result.filepath, config: result.config };
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    const path = (cause as { filepath?: string } | null)?.filepath;
    throw parseFailure(path ?? 'config file', cause);
  }
}

/** 1-based line and column of a character offset in `text`. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before[before.length - 1]?.length ?? 0) + 1 };
}

/**
 * The parser's reason with its line and column, e.g. `missed comma between flow collection entries (line 2,
 * column 10)`. cosmiconfig puts it after a "YAML Error in <file>:" / "JSON Error in <file>:" first line.
 */
export function parseReason(cause: unknown, readText: () => string | undefined): string {
  if (!(cause instanceof Error)) return String(cause);
  const yaml = cause as Error & { reason?: unknown; mark?: { line?: unknown; column?: unknown } };
  if (typeof yaml.reason === 'string' && typeof yaml.mark?.line === 'number' && typeof yaml.mark.column === 'number') {
    return `${yaml.reason} (line ${yaml.mark.line + 1}, column ${yaml.mark.column + 1})`;
  }
  const lines = cause.message.split('\n').map((l) => l.trim());
  // Skip the "… Error in <file>:" headline and code-frame rows ("> 3 | …", "| ^").
  const reason = lines.slice(1).find((l) => l !== '' && !/^(>\s*)?\d*\s*\|/.test(l)) ?? lines[0] ?? '';
  const at = /^(.*?) at position (\d+)(?: \(line \d+ column \d+\))?(?: while parsing .*)?$/.exec(reason);
  if (at) {
    const text = readText();
    if (text !== undefined) {
      const { line, column } = lineColumn(text, Number(at[2]));
      return `${at[1]} (line ${line}, column ${column})`;
    }
    return `${at[1]} at position ${at[2]}`;
  }
  return reason;
}

/**
 * A JS config that fails to load: Node's own syntax check names the line (an import() failure does not,
 * and cosmiconfig's require() fallback can hide it behind an internal assertion).
 */
function jsReason(path: string): string | undefined {
  const r = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) return undefined;
  const lines = (r.stderr ?? '').split('\n');
  const where = new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+)$`).exec(lines[0] ?? '');
  const error = lines.find((l) => /^[A-Za-z]*Error: /.test(l));
  if (!error) return undefined;
  return where ? `${error} (line ${where[1]})` : error;
}

/** How long a JS config module may take to evaluate before stemkit gives up on it. */
export const CONFIG_LOAD_TIMEOUT_MS = 10_000;

/**
 * Resolves like `p`, but fails with ConfigError (78) when `p` can never settle: a JS config whose top-level
 * `await` never resolves leaves nothing for the event loop to do, and without this the process would end
 * silently with exit 0 ('beforeExit' tells us); one that keeps the loop busy forever hits the timeout.
 */
function settleOrFail<T>(p: Promise<T>, path: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      process.off('beforeExit', onDrained);
    };
    const fail = (why: string): void => {
      if (settled) return;
      cleanup();
      reject(
        new ConfigError(`cannot read config file ${path}: ${why}`, [], {
          code: 'E_CONFIG_HANG',
          hint: 'A JS config module must finish evaluating: check its top-level await (and what it waits for), or use a JSON/YAML config.',
        }),
      );
    };
    const onDrained = (): void => fail('it never finished loading (a top-level await that never resolves)');
    const timer = setTimeout(() => fail(`it did not finish loading within ${CONFIG_LOAD_TIMEOUT_MS / 1000} s`), CONFIG_LOAD_TIMEOUT_MS);
    timer.unref();
    process.on('beforeExit', onDrained);
    p.then(
      (v) => {
        if (settled) return;
        cleanup();
        resolve(v);
      },
      (e: unknown) => {
        if (settled) return;
        cleanup();
        reject(e);
      },
    );
  });
}

/** The file the search would most likely load (for messages): the first search place present from cwd up. */
function firstCandidate(cwd: string): string | undefined {
  let dir = resolvePath(cwd);
  for (;;) {
    for (const place of SEARCH_PLACES) {
      if (place !== 'package.json' && existsSync(join(dir, place))) return join(dir, place);
    }
    const up = dirname(dir);
    if (existsSync(join(dir, 'package.json')) || up === dir) return undefined;
    dir = up;
  }
}

function parseFailure(path: string, cause: unknown): ConfigError {
  const js = /\.(c|m)?js$/.test(path) ? jsReason(path) : undefined;
  const reason = js ?? parseReason(cause, () => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  });
  return new ConfigError(`cannot read config file ${path}: ${reason}`, [], {
    code: 'E_CONFIG_PARSE',
    cause,
    hint: 'Fix the syntax of the file (JSON, YAML or a JS module exporting an object); `.stemrc.example` shows every key.',
  });
}
