/**
 * Finding and reading the config file (cosmiconfig, module name `stemkit`). cosmiconfig is imported
 * lazily so `stemkit --help` does not pay for it.
 */
import { existsSync } from 'node:fs';
import { extname, resolve as resolvePath } from 'node:path';
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
      const result = await explorer.load(path);
      return { path, config: result?.config };
    } catch (cause) {
      throw parseFailure(path, cause);
    }
  }
  try {
    const result = await explorer.search(cwd);
    if (!result || result.isEmpty) return { path: result?.filepath, config: undefined };
    return { path: result.filepath, config: result.config };
  } catch (cause) {
    const path = (cause as { filepath?: string } | null)?.filepath;
    throw parseFailure(path ?? 'config file', cause);
  }
}

function parseFailure(path: string, cause: unknown): ConfigError {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return new ConfigError(`cannot read config file ${path}: ${reason}`, [], {
    code: 'E_CONFIG_PARSE',
    cause,
    hint: 'Fix the syntax of the file (JSON, YAML or a JS module exporting an object); `.stemrc.example` shows every key.',
  });
}
