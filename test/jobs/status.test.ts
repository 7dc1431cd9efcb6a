import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { acquireSlots } from '../../src/jobs/semaphore.js';

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stemkit-status-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  // An empty cwd keeps a developer's own config file out of the test.
  const code = await main(['node', 'stemkit', ...args], { stdout: out.stream, stderr: err.stream, env: { STEMKIT_RUNTIME_DIR: dir, NO_COLOR: '1' }, cwd: dir, cores: 4 });
  return { code, out: out.text(), err: err.text() };
}

describe('stemkit status', () => {
  it('reports pools, limits of the profile and holders as JSON', async () => {
    const cfg = { maxConcurrentHeavyTasks: 2, maxConcurrentTts: 1, maxConcurrentVideo: 1, runtimeDir: dir };
    const lease = await acquireSlots({ pools: ['heavy', 'tts'], config: cfg, wait: false, command: 'stemkit tts hello' });
    try {
      const r = await run(['--profile', 'small', 'status', '--json']);
      expect(r.code).toBe(0);
      const rec = JSON.parse(r.out.trim()) as { type: string; profile: string; runtimeDir: string; pools: Array<Record<string, unknown>> };
      expect(rec.type).toBe('status');
      expect(rec.profile).toBe('small');
      expect(rec.runtimeDir).toBe(dir);
      expect(rec.pools.map((p) => [p['pool'], p['used'], p['limit'], p['stale']])).toEqual([
        ['heavy', 1, 2, 0],
        ['tts', 1, 1, 0],
        ['video', 0, 1, 0],
      ]);
      expect(rec.pools[0]!['holders']).toMatchObject([{ pool: 'heavy', index: 0, pid: process.pid, command: 'stemkit tts hello' }]);
    } finally {
      await lease.release();
    }
  });

  it('prints a table of pools and says when nothing runs', async () => {
    const r = await run(['--profile', 'medium', 'status']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Job slots (profile medium; runtime dir ${dir})`);
    expect(r.out).toMatch(/heavy +0 +3\n/);
    expect(r.out).toMatch(/tts +0 +2\n/);
    expect(r.out).toMatch(/video +0 +1\n/);
    expect(r.out).toContain('No jobs are running.');
  });
});
