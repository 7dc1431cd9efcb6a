import { describe, expect, it } from 'vitest';
import { resolveConfig, type ResolveInput } from '../../src/config/resolve.js';
import { ConfigError } from '../../src/errors.js';

const FILE = '/proj/.stemrc.json';

function input(over: Partial<ResolveInput> = {}): ResolveInput {
  return { env: {}, flags: {}, cores: 8, homeDir: '/home/u', ...over };
}

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig precedence', () => {
  // Each row: the layers present, and the value + source expected for maxCpuThreads.
  const rows: Array<{ name: string; in: Partial<ResolveInput>; value: number; source: string; profile: string }> = [
    { name: 'built-in default (medium)', in: {}, value: 4, source: 'default (profile medium)', profile: 'medium' },
    { name: 'file top level beats the default profile', in: { file: { path: FILE, config: { maxCpuThreads: 5 } } }, value: 5, source: FILE, profile: 'medium' },
    {
      name: 'a profile chosen in the file beats the file top level',
      in: { file: { path: FILE, config: { maxCpuThreads: 5, defaultProfile: 'large' } } },
      value: 6,
      source: 'profile large',
      profile: 'large',
    },
    {
      name: 'env STEMKIT_PROFILE beats the file defaultProfile',
      in: { file: { path: FILE, config: { defaultProfile: 'large' } }, env: { STEMKIT_PROFILE: 'small' } },
      value: 2,
      source: 'profile small',
      profile: 'small',
    },
    {
      name: 'flag --profile beats env STEMKIT_PROFILE',
      in: { env: { STEMKIT_PROFILE: 'small' }, flags: { profile: 'large' } },
      value: 6,
      source: 'profile large',
      profile: 'large',
    },
    {
      name: 'env MAX_CPU_THREADS beats the chosen profile',
      in: { env: { MAX_CPU_THREADS: '3' }, flags: { profile: 'large' } },
      value: 3,
      source: 'env MAX_CPU_THREADS',
      profile: 'large',
    },
    {
      name: 'file profile overrides a built-in profile key by key',
      in: { file: { path: FILE, config: { defaultProfile: 'large', profiles: { large: { maxCpuThreads: 12 } } } } },
      value: 12,
      source: `profile large (${FILE})`,
      profile: 'large',
    },
    {
      name: 'custom profile from the file',
      in: { file: { path: FILE, config: { profiles: { box: { maxCpuThreads: 7, cpuUsageLimit: 1 } } } }, flags: { profile: 'box' } },
      value: 7,
      source: `profile box (${FILE})`,
      profile: 'box',
    },
    { name: 'empty env value is ignored', in: { env: { MAX_CPU_THREADS: '' } }, value: 4, source: 'default (profile medium)', profile: 'medium' },
  ];
  it.each(rows)('$name', (row) => {
    const { config, sources } = resolveConfig(input(row.in));
    expect(config.maxCpuThreads).toBe(row.value);
    expect(sources['maxCpuThreads']).toBe(row.source);
    expect(config.profile).toBe(row.profile);
  });

  it('a file overriding one key of a built-in profile keeps the other keys labelled built-in', () => {
    const { config, sources } = resolveConfig(input({ file: { path: FILE, config: { profiles: { large: { maxCpuThreads: 12 } } } }, flags: { profile: 'large' } }));
    expect(config.cpuUsageLimit).toBe(0.8);
    expect(sources['cpuUsageLimit']).toBe('profile large');
    expect(sources['maxCpuThreads']).toBe(`profile large (${FILE})`);
  });

  it('a custom profile falls back to lower layers for keys it does not set', () => {
    const { config, sources } = resolveConfig(
      input({ file: { path: FILE, config: { maxConcurrentTts: 5, profiles: { box: { maxCpuThreads: 7 } } } }, flags: { profile: 'box' } }),
    );
    expect(config.maxConcurrentTts).toBe(5);
    expect(sources['maxConcurrentTts']).toBe(FILE);
    expect(config.cpuUsageLimit).toBe(0.7);
  });

  it('flags win over env and file for device and threads', () => {
    const { config, sources } = resolveConfig(
      input({ file: { path: FILE, config: { device: 'cpu', threads: 2 } }, env: { STEMKIT_DEVICE: 'cuda' }, flags: { device: 'webgpu', threads: '3' } }),
    );
    expect(config.device).toBe('webgpu');
    expect(sources['device']).toBe('flag --device');
    expect(config.threads).toBe(3);
    expect(config.cpuThreads).toBe(3);
    expect(sources['cpuThreads']).toBe('flag --threads');
  });

  it('flags the user did not type are absent and change nothing (env stays in effect)', () => {
    // runAction only passes typed flags; an empty override object must leave env and file in place.
    const { config, sources } = resolveConfig(input({ env: { STEMKIT_DEVICE: 'cpu' }, file: { path: FILE, config: { threads: 2 } }, flags: {} }));
    expect(config.device).toBe('cpu');
    expect(sources['device']).toBe('env STEMKIT_DEVICE');
    expect(config.threads).toBe(2);
    expect(sources['threads']).toBe(FILE);
  });

  it('reads every environment variable', () => {
    const { config, sources } = resolveConfig(
      input({
        env: {
          MAX_CPU_THREADS: '8',
          CPU_USAGE_LIMIT: '0.5',
          MAX_CONCURRENT_TTS: '4',
          MAX_CONCURRENT_VIDEO: '2',
          MAX_CONCURRENT_HEAVY_TASKS: '6',
          STEMKIT_DEVICE: 'cpu',
          STEMKIT_CACHE_DIR: '/c',
          STEMKIT_RUNTIME_DIR: '/r',
          STEMKIT_OFFLINE: 'yes',
          STEMKIT_MODEL_MIRROR: 'https://mirror.example/models',
          FFMPEG_PATH: '/opt/ffmpeg',
          FFPROBE_PATH: '/opt/ffprobe',
        },
      }),
    );
    expect(config).toMatchObject({
      maxCpuThreads: 8,
      cpuUsageLimit: 0.5,
      maxConcurrentTts: 4,
      maxConcurrentVideo: 2,
      maxConcurrentHeavyTasks: 6,
      device: 'cpu',
      cacheDir: '/c',
      runtimeDir: '/r',
      ffmpegPath: '/opt/ffmpeg',
      ffprobePath: '/opt/ffprobe',
      models: { offline: true, mirror: 'https://mirror.example/models', precision: 'auto' },
    });
    expect(config.cpuThreads).toBe(4); // min(8, floor(8 × 0.5))
    expect(sources['models.offline']).toBe('env STEMKIT_OFFLINE');
    expect(sources['cacheDir']).toBe('env STEMKIT_CACHE_DIR');
  });

  it.each([
    { name: 'STEMKIT_CACHE_DIR first', env: { STEMKIT_CACHE_DIR: '/a', XDG_CACHE_HOME: '/x' }, file: { cacheDir: '/f' }, want: '/a' },
    { name: 'then the config file (relative to it)', env: { XDG_CACHE_HOME: '/x' }, file: { cacheDir: 'cache' }, want: '/proj/cache' },
    { name: 'then $XDG_CACHE_HOME/stemkit', env: { XDG_CACHE_HOME: '/x' }, file: {}, want: '/x/stemkit' },
    { name: 'then ~/.cache/stemkit', env: {}, file: {}, want: '/home/u/.cache/stemkit' },
  ])('cacheDir: $name', ({ env, file, want }) => {
    expect(resolveConfig(input({ env, file: { path: FILE, config: file } })).config.cacheDir).toBe(want);
  });

  it('GPU, models and bench keys from the file', () => {
    const { config } = resolveConfig(
      input({
        file: {
          path: FILE,
          config: {
            gpu: { deviceId: 1, memoryFraction: 0.5, cudnnConvAlgoSearch: 'heuristic', tf32: false },
            models: { precision: 'fp16', offline: true },
            bench: { targets: { '2': { maxSeconds: 20 } } },
          },
        },
      }),
    );
    expect(config.gpu).toEqual({ deviceId: 1, memoryFraction: 0.5, cudnnConvAlgoSearch: 'heuristic', tf32: false });
    expect(config.models).toEqual({ mirror: undefined, offline: true, precision: 'fp16' });
    expect(config.bench.targets['2']).toEqual({ maxSeconds: 20, minMBps: 2 });
    expect(config.bench.targets['6']).toEqual({ maxSeconds: 45, minMBps: 0.8 });
  });

  it('defaults', () => {
    const { config } = resolveConfig(input());
    expect(config).toMatchObject({
      profile: 'medium',
      device: 'auto',
      threads: undefined,
      cpuThreads: 4, // min(4, floor(8 × 0.7) = 5)
      cores: 8,
      gpu: { deviceId: 0, memoryFraction: 0.9, cudnnConvAlgoSearch: 'exhaustive', tf32: true },
      cacheDir: '/home/u/.cache/stemkit',
      models: { offline: false, precision: 'auto' },
    });
  });
});

describe('thread computation', () => {
  it.each([
    { profile: 'small', cores: 2, want: 1 }, // floor(2 × 0.5) = 1
    { profile: 'medium', cores: 2, want: 1 }, // floor(2 × 0.7) = 1
    { profile: 'large', cores: 2, want: 1 }, // floor(2 × 0.8) = 1
    { profile: 'small', cores: 16, want: 2 }, // cap 2
    { profile: 'medium', cores: 16, want: 4 }, // cap 4
    { profile: 'large', cores: 16, want: 6 }, // cap 6
    { profile: 'large', cores: 5, want: 4 }, // floor(5 × 0.8) = 4
    { profile: 'medium', cores: 1, want: 1 }, // floor(0.7) = 0 → at least 1
  ])('$profile on $cores cores → $want', ({ profile, cores, want }) => {
    expect(resolveConfig(input({ cores, flags: { profile } })).config.cpuThreads).toBe(want);
  });

  it('--threads is used as given, even above the profile cap (up to the core count)', () => {
    const r = resolveConfig(input({ cores: 16, flags: { threads: '8' } }));
    expect(r.config.cpuThreads).toBe(8);
    expect(r.warnings).toEqual([]);
  });

  it.each(['3', '10000', '1e20'])('--threads %s on 2 cores is capped at 2 with a warning', (threads) => {
    const r = resolveConfig(input({ cores: 2, flags: { threads } }));
    expect(r.config.cpuThreads).toBe(2);
    expect(r.warnings).toEqual([`threads = ${Number(threads)} (from flag --threads) is more than the 2 logical cores of this machine; using 2`]);
  });
});

describe('validation', () => {
  it('reports every problem at once with key, value, expectation and source', () => {
    const err = problemsOf(() =>
      resolveConfig(
        input({
          file: { path: FILE, config: { maxCpuThreads: 0, gpu: { memoryFraction: 1.5, tf32: 'yes' }, devcie: 'cpu' } },
          env: { CPU_USAGE_LIMIT: 'lots', STEMKIT_DEVICE: 'gpu' },
          flags: { threads: '-2' },
        }),
      ),
    );
    expect(err.exitCode).toBe(78);
    expect(err.code).toBe('E_CONFIG_INVALID');
    expect(err.message).toBe('invalid configuration: 7 problems');
    expect(err.problems).toEqual(
      expect.arrayContaining([
        { key: 'devcie', value: 'cpu', expected: 'a known key (did you mean "device"?)', source: FILE },
        { key: 'maxCpuThreads', value: 0, expected: 'an integer >= 1', source: FILE },
        { key: 'gpu.memoryFraction', value: 1.5, expected: 'a number in (0, 1]', source: FILE },
        { key: 'gpu.tf32', value: 'yes', expected: 'true or false', source: FILE },
        { key: 'cpuUsageLimit', value: 'lots', expected: 'a number in (0, 1]', source: 'env CPU_USAGE_LIMIT' },
        { key: 'threads', value: -2, expected: 'an integer >= 1', source: 'flag --threads' },
        { key: 'device', value: 'gpu', expected: 'one of: auto, cpu, cuda, webgpu', source: 'env STEMKIT_DEVICE' },
      ]),
    );
    expect(err.problems).toHaveLength(7);
  });

  it('an unknown profile is reported with a suggestion', () => {
    const err = problemsOf(() => resolveConfig(input({ flags: { profile: 'lrge' } })));
    expect(err.problems).toEqual([{ key: 'profile', value: 'lrge', expected: 'one of: small, medium, large (did you mean "large"?)', source: 'flag --profile' }]);
  });

  it('problems inside profiles that are not selected are reported too', () => {
    const err = problemsOf(() => resolveConfig(input({ file: { path: FILE, config: { profiles: { large: { cpuUsageLimit: 2, maxCpuTreads: 3 } } } } })));
    expect(err.problems).toEqual([
      { key: 'profiles.large.maxCpuTreads', value: 3, expected: 'a known key (did you mean "maxCpuThreads"?)', source: `profile large (${FILE})` },
      { key: 'profiles.large.cpuUsageLimit', value: 2, expected: 'a number in (0, 1]', source: `profile large (${FILE})` },
    ]);
  });

  it('a file that is not an object is reported', () => {
    const err = problemsOf(() => resolveConfig(input({ file: { path: FILE, config: [1, 2] } })));
    expect(err.problems[0]).toMatchObject({ key: '(file)', source: FILE });
  });
});

describe('validation of overridden values', () => {
  it('a bad file value is reported even when env overrides it', () => {
    const err = problemsOf(() => resolveConfig(input({ file: { path: FILE, config: { device: 'gpu' } }, env: { STEMKIT_DEVICE: 'cpu' } })));
    expect(err.problems).toEqual([{ key: 'device', value: 'gpu', expected: 'one of: auto, cpu, cuda, webgpu', source: FILE }]);
  });
});

describe('serve.* keys', () => {
  it('maxQueued follows the profile (2 × heavy slots) unless set; folders are relative to the file', () => {
    const small = resolveConfig(input({ flags: { profile: 'small' } }));
    expect(small.config.serve).toEqual({ host: '127.0.0.1', port: 8765, maxQueued: 4, maxUploadBytes: 1024 ** 3, maxLoadedModels: 2, retention: 3600, shutdownGrace: 30, inputRoots: [], workDir: undefined });
    expect(small.sources['serve.maxQueued']).toBe('computed (2 × maxConcurrentHeavyTasks)');
    expect(resolveConfig(input({ flags: { profile: 'large' } })).config.serve.maxQueued).toBe(8);
    const set = resolveConfig(input({ file: { path: FILE, config: { serve: { maxQueued: 0, inputRoots: ['music', '/srv/a'], workDir: 'jobs', port: 0 } } } }));
    expect(set.config.serve).toMatchObject({ maxQueued: 0, inputRoots: ['/proj/music', '/srv/a'], workDir: '/proj/jobs', port: 0 });
    expect(set.sources['serve.inputRoots']).toBe(FILE);
  });

  it('reports every bad serve value and unknown serve keys at once', () => {
    const e = problemsOf(() => resolveConfig(input({ file: { path: FILE, config: { serve: { port: 70000, maxQueued: -1, inputRoots: 'music', retention: 'long', maxLoadedModel: 3 } } } })));
    expect(e.problems.map((p) => [p.key, p.expected])).toEqual([
      ['serve.maxLoadedModel', 'a known key (did you mean "maxLoadedModels"?)'],
      ['serve.port', 'an integer port 0..65535'],
      ['serve.maxQueued', 'an integer >= 0'],
      ['serve.inputRoots', 'a list of folder paths'],
      ['serve.retention', 'a number >= 0'],
    ]);
  });
});
