/**
 * Real processes running batches built from the job primitives (test/helpers/jobs-batch.mjs) on one
 * runtime directory: the limit holds across processes and within each, outputs are complete, SIGINT
 * leaves no partial file and exits 130, and a re-run skips finished files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertBuilt, maxOverlap, repoRoot, spawnNode, type Proc } from '../helpers/jobs-procs.js';

const script = join(repoRoot, 'test', 'helpers', 'jobs-batch.mjs');
const batch = (o: Record<string, unknown>): Proc => spawnNode([script, JSON.stringify(o)]);
const expected = (input: string, chunks: number): string => Array.from({ length: chunks }, (_, i) => `${input} ${i}\n`).join('');

let work: string;
beforeAll(() => {
  assertBuilt('src/jobs/batch.ts', 'dist/jobs/batch.js');
  assertBuilt('src/jobs/semaphore.ts', 'dist/jobs/semaphore.js');
});
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'stemkit-batch-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('batches in real processes', () => {
  it('three batch processes of two files each never run more than 2 file jobs at once, and all outputs are complete', async () => {
    const runtimeDir = join(work, 'rt');
    const procs = [0, 1, 2].map((p) => batch({ runtimeDir, heavy: 2, inputs: [`p${p}a`, `p${p}b`], outDir: join(work, 'out'), chunks: 4, chunkDelayMs: 40 }));
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0]);
    const files = procs.flatMap((p) => p.lines.filter((l) => l.event === 'file'));
    expect(files.map((f) => f['status'])).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(maxOverlap(files.map((f) => [f['start'] as number, f['end'] as number] as const))).toBeLessThanOrEqual(2);
    const outs = readdirSync(join(work, 'out')).sort();
    expect(outs).toEqual(['p0a.out', 'p0b.out', 'p1a.out', 'p1b.out', 'p2a.out', 'p2b.out']);
    for (const f of outs) expect(readFileSync(join(work, 'out', f), 'utf8')).toBe(expected(f.replace('.out', ''), 4));
    expect(readdirSync(join(runtimeDir, 'slots'))).toEqual([]);
  });

  it('SIGINT during a write exits 130 with no partial file and no slot; a re-run skips finished files', async () => {
    const runtimeDir = join(work, 'rt');
    const outDir = join(work, 'out');
    // heavy 1: files run one after another, so "a" is finished when "b" is being written.
    const opts = { runtimeDir, heavy: 1, inputs: ['a', 'b', 'c'], outDir, chunks: 6, chunkDelayMs: 60 };
    const first = batch(opts);
    await first.waitFor('file'); // a done
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (first.lines.some((l) => l.event === 'writing' && l['input'] === 'b' && (l['chunk'] as number) >= 2)) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(130);
    expect(first.lines.at(-1)).toMatchObject({ event: 'error', code: 'E_INTERRUPTED', exitCode: 130 });
    // Only the finished output exists: no partial b.out, no temp file, no slot left behind.
    expect(readdirSync(outDir)).toEqual(['a.out']);
    expect(readFileSync(join(outDir, 'a.out'), 'utf8')).toBe(expected('a', 6));
    expect(readdirSync(join(runtimeDir, 'slots'))).toEqual([]);

    const second = batch({ ...opts, chunkDelayMs: 5 });
    expect(await second.exited).toBe(0);
    expect(second.lines.filter((l) => l.event === 'file').map((l) => [l['input'], l['status']])).toEqual([
      ['a', 'skipped'],
      ['b', 'ok'],
      ['c', 'ok'],
    ]);
    expect(readdirSync(outDir).sort()).toEqual(['a.out', 'b.out', 'c.out']);
    for (const i of ['b', 'c']) expect(readFileSync(join(outDir, `${i}.out`), 'utf8')).toBe(expected(i, 6));
    expect(readdirSync(join(runtimeDir, 'slots'))).toEqual([]);
  });
});
