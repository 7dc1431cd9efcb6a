/**
 * Configuration resolution: one pure function merging, in increasing precedence,
 * built-in defaults < config file (top level) < selected profile < environment < typed CLI flags,
 * then validating the result in a single pass that collects every problem.
 *
 * Profile semantics: the default profile (`medium`) is part of the built-in defaults, so a file's
 * top-level `maxCpuThreads` overrides it. A profile the user actually selected (flag `--profile`,
 * env `STEMKIT_PROFILE` or the file's `defaultProfile`) is a layer above the file's top level.
 */
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.js';
import {
  BUILTIN_PROFILES,
  CUDNN_ALGO_SEARCH,
  DEFAULTS,
  DEFAULT_PROFILE,
  DEVICES,
  computeThreads,
  type ProfileValues,
  type ResolvedConfig,
} from './schema.js';
import { didYouMean } from './suggest.js';
import { redactUrl } from '../util/redact.js';

/** Precision values accepted by `models.precision`. */
export const PRECISIONS = ['auto', 'fp32', 'fp16', 'int8'] as const;

/** The per-profile keys (and the optional device/threads a custom profile may also pin). */
export interface UserProfile extends Partial<ProfileValues> {
  device?: string;
  threads?: number;
}

/** What a config file may contain; every key optional. Values are validated, not trusted. */
export interface UserConfig extends Partial<ProfileValues> {
  defaultProfile?: string;
  device?: string;
  threads?: number;
  cacheDir?: string;
  runtimeDir?: string;
  ffmpegPath?: string;
  ffprobePath?: string;
  gpu?: { deviceId?: number; memoryFraction?: number; cudnnConvAlgoSearch?: string; tf32?: boolean };
  models?: { mirror?: string; offline?: boolean; precision?: string };
  bench?: { targets?: Partial<Record<'2' | '4' | '6', { maxSeconds?: number; minMBps?: number }>> };
  serve?: Partial<Record<(typeof SERVE_KEYS)[number], unknown>>;
  queue?: { url?: string; name?: string; pathMap?: Record<string, string>; roots?: string[]; attempts?: number; jobTimeoutSec?: number; stallSec?: number; maxDownloadMB?: number };
  profiles?: Record<string, UserProfile>;
}

/**
 * Values the user typed on the command line (only those: see `typed()` in cli/context.ts).
 * Strings are taken as commander delivers them and validated here.
 */
export interface CliOverrides {
  profile?: string;
  device?: string;
  threads?: string | number;
  offline?: boolean;
  precision?: string;
  mirror?: string;
  cacheDir?: string;
}

export interface ResolveInput {
  /** The loaded config file, if any: its path (used as the source label) and raw parsed content. */
  file?: { path: string; config: unknown } | undefined;
  /** The user-level config file ($XDG_CONFIG_HOME/stemkit/…), a layer below `file`. */
  userFile?: { path: string; config: unknown } | undefined;
  env: Readonly<Record<string, string | undefined>>;
  flags: CliOverrides;
  /** Logical cores available (os.availableParallelism()). */
  cores: number;
  /** Home directory for the default cache dir; defaults to env HOME, then the account's (os.homedir()). */
  homeDir?: string | undefined;
  /**
   * A person at a terminal (stdin and stderr are terminals, not CI). With no CPU setting anywhere, such a
   * run uses every core (`threadsPolicy` 'auto-interactive'); anything else keeps the default profile's cap.
   */
  interactive?: boolean | undefined;
}

export interface ResolveResult {
  config: ResolvedConfig;
  /** Source of every leaf value, keyed by dotted path. */
  sources: Record<string, string>;
  /** Values that were usable only after an adjustment (e.g. threads capped at the core count), for a warning. */
  warnings: string[];
}

/** Environment variables stemkit reads, with the key each sets. */
export const ENV_KEYS = {
  MAX_CPU_THREADS: 'maxCpuThreads',
  CPU_USAGE_LIMIT: 'cpuUsageLimit',
  MAX_CONCURRENT_TTS: 'maxConcurrentTts',
  MAX_CONCURRENT_VIDEO: 'maxConcurrentVideo',
  MAX_CONCURRENT_HEAVY_TASKS: 'maxConcurrentHeavyTasks',
  STEMKIT_PROFILE: 'profile',
  STEMKIT_DEVICE: 'device',
  STEMKIT_CACHE_DIR: 'cacheDir',
  STEMKIT_RUNTIME_DIR: 'runtimeDir',
  STEMKIT_OFFLINE: 'models.offline',
  STEMKIT_MODEL_MIRROR: 'models.mirror',
  FFMPEG_PATH: 'ffmpegPath',
  FFPROBE_PATH: 'ffprobePath',
  STEMKIT_QUEUE_URL: 'queue.url',
} as const;

const FLAG_NAMES: Record<keyof CliOverrides, string> = {
  profile: 'flag --profile',
  device: 'flag --device',
  threads: 'flag --threads',
  offline: 'flag --offline',
  precision: 'flag --precision',
  mirror: 'flag --mirror',
  cacheDir: 'flag --cache-dir',
};

const PROFILE_KEYS = ['maxCpuThreads', 'cpuUsageLimit', 'maxConcurrentTts', 'maxConcurrentVideo', 'maxConcurrentHeavyTasks'] as const;

const TOP_KEYS = [
  ...PROFILE_KEYS,
  'defaultProfile',
  'device',
  'threads',
  'cacheDir',
  'runtimeDir',
  'ffmpegPath',
  'ffprobePath',
  'gpu',
  'models',
  'bench',
  'serve',
  'queue',
  'profiles',
] as const;
const GPU_KEYS = ['deviceId', 'memoryFraction', 'cudnnConvAlgoSearch', 'tf32'] as const;
const MODELS_KEYS = ['mirror', 'offline', 'precision'] as const;
const SERVE_KEYS = ['host', 'port', 'maxQueued', 'maxUploadBytes', 'maxLoadedModels', 'maxLoadedBytes', 'retention', 'shutdownGrace', 'inputRoots', 'workDir'] as const;
const QUEUE_KEYS = ['url', 'name', 'pathMap', 'roots', 'attempts', 'jobTimeoutSec', 'stallSec', 'maxDownloadMB'] as const;
const BENCH_TARGET_KEYS = ['maxSeconds', 'minMBps'] as const;
const BENCH_TIERS = ['2', '4', '6'] as const;
const USER_PROFILE_KEYS = [...PROFILE_KEYS, 'device', 'threads'] as const;

// ---------------------------------------------------------------------------------------------------
// Validators: each returns the accepted value or a description of what was expected.

type Check = (v: unknown) => { ok: true; value: unknown } | { ok: false; expected: string };

const intAtLeast =
  (min: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min ? { ok: true, value: v } : { ok: false, expected: `an integer >= ${min}` };
const fraction: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= 1 ? { ok: true, value: v } : { ok: false, expected: 'a number in (0, 1]' };
const positive: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? { ok: true, value: v } : { ok: false, expected: 'a number > 0' };
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? { ok: true, value: v } : { ok: false, expected: `one of: ${values.join(', ')}` };
const bool: Check = (v) => (typeof v === 'boolean' ? { ok: true, value: v } : { ok: false, expected: 'true or false' });
const nonEmptyString: Check = (v) =>
  typeof v === 'string' && v.trim() !== '' ? { ok: true, value: v } : { ok: false, expected: 'a non-empty string' };
const url: Check = (v) => {
  if (typeof v === 'string') {
    try {
      const u = new URL(v);
      if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'file:') return { ok: true, value: v };
    } catch {
      // fall through to the problem below
    }
  }
  return { ok: false, expected: 'an http(s):// or file:// URL' };
};

const redisUrl: Check = (v) => {
  if (typeof v === 'string') {
    try {
      const u = new URL(v);
      if ((u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '' && /^(\/\d*)?$/.test(u.pathname)) return { ok: true, value: v };
    } catch {
      // fall through to the problem below
    }
  }
  return { ok: false, expected: 'a redis://[:password@]host[:port][/db] or rediss:// URL' };
};
const absolutePath = (v: unknown): boolean => typeof v === 'string' && isAbsolute(v);
const pathMap: Check = (v) =>
  isRecord(v) && Object.entries(v).every(([k, to]) => isAbsolute(k) && absolutePath(to))
    ? { ok: true, value: v }
    : { ok: false, expected: 'an object mapping absolute job paths to absolute local paths, e.g. {"/shared": "/mnt/nas"}' };
const pathList: Check = (v) =>
  Array.isArray(v) && v.length > 0 && v.every(absolutePath) ? { ok: true, value: v } : { ok: false, expected: 'a non-empty list of absolute folder paths' };

const CHECKS: Record<string, Check> = {
  maxCpuThreads: intAtLeast(1),
  cpuUsageLimit: fraction,
  maxConcurrentTts: intAtLeast(1),
  maxConcurrentVideo: intAtLeast(1),
  maxConcurrentHeavyTasks: intAtLeast(1),
  device: oneOf(DEVICES),
  threads: intAtLeast(1),
  cacheDir: nonEmptyString,
  runtimeDir: nonEmptyString,
  ffmpegPath: nonEmptyString,
  ffprobePath: nonEmptyString,
  'gpu.deviceId': intAtLeast(0),
  'gpu.memoryFraction': fraction,
  'gpu.cudnnConvAlgoSearch': oneOf(CUDNN_ALGO_SEARCH),
  'gpu.tf32': bool,
  'models.mirror': url,
  'models.offline': bool,
  'models.precision': oneOf(PRECISIONS),
  'queue.url': redisUrl,
  // BullMQ builds Redis keys as <prefix>:<name>:…; a colon in the name would split them.
  'queue.name': (v) => (typeof v === 'string' && /^[A-Za-z0-9_.-]+$/.test(v) ? { ok: true, value: v } : { ok: false, expected: 'letters, digits, _ . - (no colon)' }),
  'queue.pathMap': pathMap,
  'queue.roots': pathList,
  'queue.attempts': intAtLeast(1),
  'queue.jobTimeoutSec': positive,
  'queue.stallSec': positive,
  'queue.maxDownloadMB': positive,
};
// `serve.*` (stemkit serve). maxQueued defaults to 2 × maxConcurrentHeavyTasks, so it follows the profile.
const atLeast =
  (min: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min ? { ok: true, value: v } : { ok: false, expected: `a number >= ${min}` };
const stringList: Check = (v) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string' && x.trim() !== '') ? { ok: true, value: v } : { ok: false, expected: 'a list of folder paths' };
Object.assign(CHECKS, {
  'serve.host': nonEmptyString,
  'serve.port': (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535 ? { ok: true, value: v } : { ok: false, expected: 'an integer port 0..65535' }),
  'serve.maxQueued': intAtLeast(0),
  'serve.maxUploadBytes': intAtLeast(1),
  'serve.maxLoadedModels': intAtLeast(1),
  'serve.maxLoadedBytes': intAtLeast(1),
  'serve.retention': atLeast(0),
  'serve.shutdownGrace': atLeast(0),
  'serve.inputRoots': stringList,
  'serve.workDir': nonEmptyString,
} satisfies Record<string, Check>);
for (const tier of BENCH_TIERS) {
  CHECKS[`bench.targets.${tier}.maxSeconds`] = positive;
  CHECKS[`bench.targets.${tier}.minMBps`] = positive;
}

// ---------------------------------------------------------------------------------------------------
// Text → typed value for env and flag strings. Unparseable text is passed through unchanged so the
// validator reports it with the original value.

const NUMERIC_KEYS = new Set(['maxCpuThreads', 'cpuUsageLimit', 'maxConcurrentTts', 'maxConcurrentVideo', 'maxConcurrentHeavyTasks', 'threads']);

function parseText(key: string, text: string): unknown {
  if (NUMERIC_KEYS.has(key)) {
    const t = text.trim();
    const n = Number(t);
    return t !== '' && Number.isFinite(n) ? n : text;
  }
  if (key === 'models.offline') {
    const t = text.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) return true;
    if (['0', 'false', 'no', 'off'].includes(t)) return false;
    return text;
  }
  return text;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKey(key: string, known: readonly string[], value: unknown, source: string): ConfigProblem {
  const leaf = key.split('.').pop() ?? key;
  const suggestion = didYouMean(leaf, known);
  return {
    key,
    value,
    expected: suggestion ? `a known key (did you mean "${suggestion}"?)` : `a known key: ${known.join(', ')}`,
    source,
  };
}

/** A flat layer: dotted key → raw value, all from one source. */
type Layer = Map<string, unknown>;

/**
 * Flattens a file object (top level or profile entry) into dotted keys, reporting unknown keys and
 * wrong container types. `profiles` is handled separately by the caller.
 */
function flattenFile(obj: Record<string, unknown>, source: string, problems: ConfigProblem[], fileDir: string): Layer {
  const layer: Layer = new Map();
  for (const [k, v] of Object.entries(obj)) {
    if (!(TOP_KEYS as readonly string[]).includes(k)) {
      problems.push(unknownKey(k, TOP_KEYS, v, source));
      continue;
    }
    if (v === undefined || k === 'profiles' || k === 'defaultProfile') continue;
    if (k === 'gpu' || k === 'models' || k === 'serve' || k === 'queue') {
      const keys = k === 'gpu' ? GPU_KEYS : k === 'models' ? MODELS_KEYS : k === 'serve' ? SERVE_KEYS : QUEUE_KEYS;
      if (!isRecord(v)) {
        problems.push({ key: k, value: v, expected: `an object with keys: ${keys.join(', ')}`, source });
        continue;
      }
      for (const [sk, sv] of Object.entries(v)) {
        if (!(keys as readonly string[]).includes(sk)) problems.push(unknownKey(`${k}.${sk}`, keys, sv, source));
        // Folders, like the other folders of a file, are relative to the file.
        else if (sv !== undefined && ((k === 'serve' && (sk === 'inputRoots' || sk === 'workDir')) || (k === 'queue' && sk === 'roots'))) layer.set(`${k}.${sk}`, relativeToFile(sv, fileDir));
        else if (sv !== undefined) layer.set(`${k}.${sk}`, sv);
      }
      continue;
    }
    if (k === 'bench') {
      if (!isRecord(v)) {
        problems.push({ key: k, value: v, expected: 'an object with key: targets', source });
        continue;
      }
      for (const [bk, bv] of Object.entries(v)) {
        if (bk !== 'targets') {
          problems.push(unknownKey(`bench.${bk}`, ['targets'], bv, source));
          continue;
        }
        if (!isRecord(bv)) {
          problems.push({ key: 'bench.targets', value: bv, expected: `an object with keys: ${BENCH_TIERS.join(', ')}`, source });
          continue;
        }
        for (const [tier, tv] of Object.entries(bv)) {
          if (!(BENCH_TIERS as readonly string[]).includes(tier)) {
            problems.push(unknownKey(`bench.targets.${tier}`, BENCH_TIERS, tv, source));
            continue;
          }
          if (!isRecord(tv)) {
            problems.push({ key: `bench.targets.${tier}`, value: tv, expected: 'an object with keys: maxSeconds, minMBps', source });
            continue;
          }
          for (const [mk, mv] of Object.entries(tv)) {
            if (!(BENCH_TARGET_KEYS as readonly string[]).includes(mk)) problems.push(unknownKey(`bench.targets.${tier}.${mk}`, BENCH_TARGET_KEYS, mv, source));
            else if (mv !== undefined) layer.set(`bench.targets.${tier}.${mk}`, mv);
          }
        }
      }
      continue;
    }
    // Relative directories in a file are relative to the file, not to wherever stemkit runs.
    if ((k === 'cacheDir' || k === 'runtimeDir') && typeof v === 'string' && v !== '' && !isAbsolute(v)) {
      layer.set(k, resolvePath(fileDir, v));
      continue;
    }
    if ((k === 'ffmpegPath' || k === 'ffprobePath') && typeof v === 'string' && v.includes('/') && !isAbsolute(v)) {
      layer.set(k, resolvePath(fileDir, v));
      continue;
    }
    layer.set(k, v);
  }
  return layer;
}

/** Folder paths in a file are relative to the file (non-strings pass through for the validator). */
function relativeToFile(v: unknown, fileDir: string): unknown {
  const one = (x: unknown): unknown => (typeof x === 'string' && x !== '' && !isAbsolute(x) ? resolvePath(fileDir, x) : x);
  return Array.isArray(v) ? v.map(one) : one(v);
}

function profileLayer(values: Record<string, unknown>, source: string, problems: ConfigProblem[], keyPrefix: string): Layer {
  const layer: Layer = new Map();
  for (const [k, v] of Object.entries(values)) {
    if (!(USER_PROFILE_KEYS as readonly string[]).includes(k)) {
      problems.push(unknownKey(`${keyPrefix}.${k}`, USER_PROFILE_KEYS, v, source));
      continue;
    }
    if (v !== undefined) layer.set(k, v);
  }
  return layer;
}

/**
 * Resolves the configuration. Pure: everything it depends on is in `input`.
 * @throws ConfigError (exit 78) listing every invalid value, unknown key and unknown profile at once.
 */
export function resolveConfig(input: ResolveInput): ResolveResult {
  const problems: ConfigProblem[] = [];
  const env = input.env;
  const filePath = input.file?.path;
  const fileSource = filePath ?? 'config file';
  const fileDir = filePath ? dirname(filePath) : '.';

  // 1. The file.
  let fileObj: Record<string, unknown> = {};
  if (input.file && input.file.config !== undefined && input.file.config !== null) {
    if (isRecord(input.file.config)) fileObj = input.file.config;
    else problems.push({ key: '(file)', value: input.file.config, expected: 'an object of settings', source: fileSource });
  }
  const fileLayer = flattenFile(fileObj, fileSource, problems, fileDir);
  // The user-level file: the same format, one layer lower.
  const userSource = input.userFile?.path ?? 'user config file';
  let userObj: Record<string, unknown> = {};
  if (input.userFile && input.userFile.config !== undefined && input.userFile.config !== null) {
    if (isRecord(input.userFile.config)) userObj = input.userFile.config;
    else problems.push({ key: '(file)', value: input.userFile.config, expected: 'an object of settings', source: userSource });
  }
  const userLayer = flattenFile(userObj, userSource, problems, input.userFile ? dirname(input.userFile.path) : '.');

  // 2. Profiles: built-ins, overridden and extended by the file's `profiles`.
  // Per key, so a file overriding one key of `large` does not relabel the built-in ones.
  const profiles = new Map<string, { values: Record<string, unknown>; source: string; keySources: Record<string, string> }>();
  for (const [name, values] of Object.entries(BUILTIN_PROFILES)) {
    profiles.set(name, { values: { ...values }, source: `profile ${name}`, keySources: Object.fromEntries(Object.keys(values).map((k) => [k, `profile ${name}`])) });
  }
  const fileProfiles = fileObj['profiles'];
  // The user file's profiles first, so the project's override them key by key.
  for (const [obj, src] of [[userObj, userSource], [fileObj, fileSource]] as const) {
    const fps = obj['profiles'];
    if (fps === undefined) continue;
    if (!isRecord(fps)) {
      problems.push({ key: 'profiles', value: fps, expected: 'an object mapping profile names to settings', source: src });
      continue;
    }
    for (const [name, values] of Object.entries(fps)) {
      if (!isRecord(values)) {
        problems.push({ key: `profiles.${name}`, value: values, expected: `an object with keys: ${USER_PROFILE_KEYS.join(', ')}`, source: src });
        continue;
      }
      const base = profiles.get(name);
      const source = `profile ${name} (${src})`;
      profiles.set(name, {
        values: { ...(base?.values ?? {}), ...values },
        source,
        keySources: { ...(base?.keySources ?? {}), ...Object.fromEntries(Object.keys(values).map((k) => [k, source])) },
      });
    }
  }

  // 3. Which profile: flag > env > file defaultProfile > built-in default.
  let profileName = DEFAULT_PROFILE;
  let profileSource = 'default';
  let profileChosen = false;
  const candidates: Array<[unknown, string]> = [
    [input.flags.profile, FLAG_NAMES.profile],
    [nonEmpty(env['STEMKIT_PROFILE']), 'env STEMKIT_PROFILE'],
    [fileObj['defaultProfile'], fileSource],
    [userObj['defaultProfile'], userSource],
  ];
  for (const [value, source] of candidates) {
    if (value === undefined) continue;
    if (typeof value === 'string' && profiles.has(value)) {
      profileName = value;
      profileSource = source;
      profileChosen = true;
    } else {
      const names = [...profiles.keys()];
      const suggestion = typeof value === 'string' ? didYouMean(value, names) : undefined;
      problems.push({
        key: source === fileSource || source === userSource ? 'defaultProfile' : 'profile',
        value,
        expected: `one of: ${names.join(', ')}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`,
        source,
      });
    }
    break;
  }

  const profile = profiles.get(profileName) ?? { values: { ...BUILTIN_PROFILES[DEFAULT_PROFILE] }, source: `profile ${DEFAULT_PROFILE}`, keySources: {} };
  const selectedProfileLayer = profileLayer(profile.values, profile.source, problems, `profiles.${profileName}`);
  // Built-in profile values are trusted; only report problems for what the file contributed.

  // 4. Environment.
  const envLayer: Layer = new Map();
  const envSources = new Map<string, string>();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const raw = nonEmpty(env[name]);
    if (raw === undefined || key === 'profile') continue;
    envLayer.set(key, parseText(key, raw));
    envSources.set(key, `env ${name}`);
  }

  // 5. Flags the user typed.
  const flagLayer: Layer = new Map();
  const flagSources = new Map<string, string>();
  const setFlag = (key: string, flag: keyof CliOverrides, value: unknown): void => {
    if (value === undefined) return;
    flagLayer.set(key, typeof value === 'string' ? parseText(key, value) : value);
    flagSources.set(key, FLAG_NAMES[flag]);
  };
  setFlag('device', 'device', input.flags.device);
  setFlag('threads', 'threads', input.flags.threads);
  setFlag('models.offline', 'offline', input.flags.offline);
  setFlag('models.precision', 'precision', input.flags.precision);
  setFlag('models.mirror', 'mirror', input.flags.mirror);
  setFlag('cacheDir', 'cacheDir', input.flags.cacheDir);

  // 6. Merge: defaults < [default profile] < file < [chosen profile] < env < flags.
  const values = new Map<string, unknown>();
  const sources: Record<string, string> = {};
  // Every layer is validated, not only the merged result: a bad value in the file is worth fixing
  // even while an environment variable happens to override it.
  const put = (layer: Layer, source: (key: string) => string): void => {
    for (const [k, v] of layer) {
      const r = CHECKS[k]?.(v);
      // A queue URL may carry a password: never echo it in an error.
      if (r && !r.ok) problems.push({ key: k, value: k === 'queue.url' && typeof v === 'string' ? redactUrl(v) : v, expected: r.expected, source: source(k) });
      values.set(k, v);
      sources[k] = source(k);
    }
  };
  const defaults: Layer = new Map<string, unknown>([
    ['device', DEFAULTS.device],
    ['gpu.deviceId', DEFAULTS.gpu.deviceId],
    ['gpu.memoryFraction', DEFAULTS.gpu.memoryFraction],
    ['gpu.cudnnConvAlgoSearch', DEFAULTS.gpu.cudnnConvAlgoSearch],
    ['gpu.tf32', DEFAULTS.gpu.tf32],
    ['models.offline', DEFAULTS.models.offline],
    ['models.precision', DEFAULTS.models.precision],
    ['queue.name', DEFAULTS.queue.name],
    ['queue.pathMap', {}],
    ['queue.attempts', DEFAULTS.queue.attempts],
    ['queue.jobTimeoutSec', DEFAULTS.queue.jobTimeoutSec],
    ['queue.stallSec', DEFAULTS.queue.stallSec],
    ['queue.maxDownloadMB', DEFAULTS.queue.maxDownloadMB],
  ]);
  for (const tier of BENCH_TIERS) {
    defaults.set(`bench.targets.${tier}.maxSeconds`, DEFAULTS.bench.targets[tier].maxSeconds);
    defaults.set(`bench.targets.${tier}.minMBps`, DEFAULTS.bench.targets[tier].minMBps);
  }
  for (const [k, v] of Object.entries(DEFAULTS.serve)) defaults.set(`serve.${k}`, v);
  defaults.set('serve.inputRoots', []);
  put(defaults, () => 'default');
  // The built-in default profile is the floor for profile keys, also under a custom profile that sets only some.
  const floor: Layer = new Map(Object.entries(BUILTIN_PROFILES[DEFAULT_PROFILE] ?? {}));
  put(floor, () => `default (profile ${DEFAULT_PROFILE})`);
  put(userLayer, () => userSource);
  put(fileLayer, () => fileSource);
  if (profileChosen) put(selectedProfileLayer, (k) => profile.keySources[k] ?? profile.source);
  put(envLayer, (k) => envSources.get(k) ?? 'env');
  put(flagLayer, (k) => flagSources.get(k) ?? 'flag');

  // 7. Validation of the layers happened in put(); what is left are the profiles not selected.
  // A chosen custom profile's own unknown keys were reported above; also validate the unselected
  // file profiles so a typo in `profiles.large` is caught before someone selects it.
  if (isRecord(fileProfiles)) {
    for (const [name, raw] of Object.entries(fileProfiles)) {
      if (name === profileName || !isRecord(raw)) continue;
      const src = `profile ${name} (${fileSource})`;
      for (const [k, v] of profileLayer(raw, src, problems, `profiles.${name}`)) {
        const r = CHECKS[k]?.(v);
        if (r && !r.ok) problems.push({ key: `profiles.${name}.${k}`, value: v, expected: r.expected, source: src });
      }
    }
  }
  if (!Number.isInteger(input.cores) || input.cores < 1) {
    problems.push({ key: 'cores', value: input.cores, expected: 'an integer >= 1', source: 'os.availableParallelism()' });
  }

  if (problems.length > 0) {
    const n = problems.length;
    throw new ConfigError(`invalid configuration: ${n} problem${n === 1 ? '' : 's'}`, problems, {
      hint: filePath ? `Fix the values listed above (config file: ${filePath}); \`stemkit config\` shows where each value comes from.` : 'Fix the values listed above; `stemkit config` shows where each value comes from.',
    });
  }

  // 8. Directories.
  if (!values.has('cacheDir')) {
    const xdg = nonEmpty(env['XDG_CACHE_HOME']);
    const home = input.homeDir ?? homeDirectory(env);
    // Never a literal '~' (it would become a folder named '~' in the current directory): without any home,
    // a per-user folder in the system's temp directory.
    values.set('cacheDir', xdg && isAbsolute(xdg) ? join(xdg, 'stemkit') : home ? join(home, '.cache', 'stemkit') : join(tmpdir(), `stemkit-cache-${process.getuid?.() ?? 'user'}`));
    sources['cacheDir'] = xdg && isAbsolute(xdg) ? 'env XDG_CACHE_HOME' : home ? 'default' : 'default (no home directory)';
  }
  for (const k of ['runtimeDir', 'ffmpegPath', 'ffprobePath', 'models.mirror', 'queue.url', 'queue.roots'] as const) {
    if (!values.has(k)) sources[k] = 'default';
  }

  const num = (k: string): number => values.get(k) as number;
  const str = (k: string): string | undefined => values.get(k) as string | undefined;
  const warnings: string[] = [];
  let threads = values.get('threads') as number | undefined;
  if (threads === undefined) sources['threads'] = 'default';
  // More intra-op threads than logical cores only oversubscribe them (10000 hung ORT's pool start-up).
  if (threads !== undefined && threads > input.cores) {
    warnings.push(`threads = ${threads} (from ${sources['threads'] ?? 'config'}) is more than the ${input.cores} logical cores of this machine; using ${input.cores}`);
    threads = input.cores;
  }
  const profileValues: ProfileValues = {
    maxCpuThreads: num('maxCpuThreads'),
    cpuUsageLimit: num('cpuUsageLimit'),
    maxConcurrentTts: num('maxConcurrentTts'),
    maxConcurrentVideo: num('maxConcurrentVideo'),
    maxConcurrentHeavyTasks: num('maxConcurrentHeavyTasks'),
  };
  const tier = (t: '2' | '4' | '6'): { maxSeconds: number; minMBps: number } => ({
    maxSeconds: num(`bench.targets.${t}.maxSeconds`),
    minMBps: num(`bench.targets.${t}.minMBps`),
  });
  // The thread policy: an explicit count wins; a profile or CPU limit anyone set is honoured; with none,
  // a person at a terminal gets every core (as demucs and spleeter use) and everything else the default cap.
  const capSet = profileChosen || ['maxCpuThreads', 'cpuUsageLimit'].some((k) => !(sources[k] ?? 'default').startsWith('default'));
  const threadsPolicy: ResolvedConfig['threadsPolicy'] = threads !== undefined ? 'explicit' : capSet ? 'profile' : input.interactive === true ? 'auto-interactive' : 'auto-server';
  const config: ResolvedConfig = {
    ...profileValues,
    profile: profileName,
    device: values.get('device') as ResolvedConfig['device'],
    threads,
    threadsPolicy,
    cpuThreads: threadsPolicy === 'auto-interactive' ? input.cores : computeThreads(input.cores, profileValues, threads),
    cores: input.cores,
    gpu: {
      deviceId: num('gpu.deviceId'),
      memoryFraction: num('gpu.memoryFraction'),
      cudnnConvAlgoSearch: values.get('gpu.cudnnConvAlgoSearch') as ResolvedConfig['gpu']['cudnnConvAlgoSearch'],
      tf32: values.get('gpu.tf32') as boolean,
    },
    cacheDir: str('cacheDir') as string,
    runtimeDir: str('runtimeDir'),
    ffmpegPath: str('ffmpegPath'),
    ffprobePath: str('ffprobePath'),
    models: {
      mirror: str('models.mirror'),
      offline: values.get('models.offline') as boolean,
      precision: values.get('models.precision') as ResolvedConfig['models']['precision'],
    },
    queue: {
      url: str('queue.url'),
      name: values.get('queue.name') as string,
      pathMap: { ...(values.get('queue.pathMap') as Record<string, string>) },
      roots: values.get('queue.roots') as string[] | undefined,
      attempts: num('queue.attempts'),
      jobTimeoutSec: num('queue.jobTimeoutSec'),
      stallSec: num('queue.stallSec'),
      maxDownloadMB: num('queue.maxDownloadMB'),
    },
    bench: { targets: { '2': tier('2'), '4': tier('4'), '6': tier('6') } },
    serve: {
      host: values.get('serve.host') as string,
      port: num('serve.port'),
      maxQueued: (values.get('serve.maxQueued') as number | undefined) ?? 2 * profileValues.maxConcurrentHeavyTasks,
      maxUploadBytes: num('serve.maxUploadBytes'),
      maxLoadedModels: num('serve.maxLoadedModels'),
      maxLoadedBytes: values.get('serve.maxLoadedBytes') as number | undefined,
      retention: num('serve.retention'),
      shutdownGrace: num('serve.shutdownGrace'),
      inputRoots: values.get('serve.inputRoots') as string[],
      workDir: str('serve.workDir'),
    },
  };
  if (!values.has('serve.maxQueued')) sources['serve.maxQueued'] = `computed (2 × maxConcurrentHeavyTasks)`;
  if (!values.has('serve.workDir')) sources['serve.workDir'] = 'default';
  if (!values.has('serve.maxLoadedBytes')) sources['serve.maxLoadedBytes'] = "computed (half of the machine's memory)";
  sources['profile'] = profileSource;
  sources['cpuThreads'] = threads === undefined ? 'computed' : sources['threads'] ?? 'computed';
  sources['threadsPolicy'] = threadsPolicy === 'auto-interactive' ? 'computed (a terminal, no CPU limit set)' : threadsPolicy === 'auto-server' ? 'computed (not a terminal, no CPU limit set)' : 'computed';
  sources['cores'] = 'detected';
  return { config, sources, warnings };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** $HOME, else the account's home directory; undefined when there is none. */
export function homeDirectory(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const fromEnv = nonEmpty(env['HOME']);
  if (fromEnv !== undefined) return fromEnv;
  try {
    return nonEmpty(homedir());
  } catch {
    return undefined;
  }
}
