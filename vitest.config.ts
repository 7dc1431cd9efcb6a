import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    env: { NO_COLOR: '1', FORCE_COLOR: '0' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores on CI: the DSP and process tests are CPU-bound, so more forks only thrash.
    pool: 'forks',
    maxWorkers: 2,
  },
});
