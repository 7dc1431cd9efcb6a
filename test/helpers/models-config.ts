/** Minimal configurations for model-cache tests (only the members src/models reads). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResolvedConfig } from '../../src/config/schema.js';

export type ModelsTestConfig = Pick<ResolvedConfig, 'cacheDir' | 'device' | 'models'>;

export function tempCacheDir(prefix = 'stemkit-models-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function modelsConfig(cacheDir: string, models: Partial<ResolvedConfig['models']> = {}, device: ResolvedConfig['device'] = 'cpu'): ModelsTestConfig {
  return { cacheDir, device, models: { mirror: undefined, offline: false, precision: 'auto', ...models } };
}
