import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { resolveConfig } from '../../src/config/resolve.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('.stemrc.example', () => {
  it('is valid and its values are exactly the defaults', async () => {
    const file = await loadConfigFile({ configPath: join(root, '.stemrc.example'), cwd: root });
    const fromExample = resolveConfig({ file: { path: file.path!, config: file.config }, env: {}, flags: {}, cores: 8, homeDir: '/h' }).config;
    const defaults = resolveConfig({ env: {}, flags: {}, cores: 8, homeDir: '/h' }).config;
    expect(fromExample).toEqual(defaults);
  });

  it('mentions every environment variable and every top-level key', () => {
    const text = readFileSync(join(root, '.stemrc.example'), 'utf8');
    for (const name of ['MAX_CPU_THREADS', 'CPU_USAGE_LIMIT', 'MAX_CONCURRENT_TTS', 'MAX_CONCURRENT_VIDEO', 'MAX_CONCURRENT_HEAVY_TASKS', 'STEMKIT_DEVICE', 'STEMKIT_CACHE_DIR', 'STEMKIT_RUNTIME_DIR', 'STEMKIT_OFFLINE', 'STEMKIT_MODEL_MIRROR', 'FFMPEG_PATH', 'FFPROBE_PATH']) {
      expect(text).toContain(name);
    }
    for (const key of ['defaultProfile', 'threads', 'cacheDir', 'runtimeDir', 'ffmpegPath', 'ffprobePath', 'deviceId', 'memoryFraction', 'cudnnConvAlgoSearch', 'tf32', 'mirror', 'offline', 'precision', 'targets', 'profiles']) {
      expect(text).toContain(`${key}:`);
    }
  });
});
