/**
 * Engine behaviour that the adapters do not see: interruption leaves nothing behind, progress events are
 * monotonic, output planning for two-stem and --stems, and the timing line format.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSeparator, planOutputs } from '../../src/separate/separate.js';
import { formatTimingLine } from '../../src/separate/batch.js';
import type { ProgressEvent } from '../../src/progress.js';
import { mdxModel, mdxSidecar } from '../helpers/separate-models.js';
import { sines, tempDir, testConfig, writeWav } from '../helpers/separate-fixtures.js';

const tmp = tempDir('stemkit-sep-engine-');
const model = join(tmp.dir, 'ident.onnx');
const input = join(tmp.dir, 'long.wav');

beforeAll(async () => {
  mdxModel(model, 1024, 32, 1);
  mdxSidecar(model, { compensate: 1.0, mdx_dim_f_set: 1024, mdx_dim_t_set: 5, mdx_n_fft_scale_set: 2048, primary_stem: 'Vocals' });
  await writeWav(input, sines(8 * 44100, 44100, 2, [440]));
});
afterAll(() => tmp.cleanup());

describe('engine', () => {
  it('an interrupted file throws InterruptedError and leaves no output or temp file', async () => {
    const sep = await loadSeparator({ model }, { config: testConfig(tmp.dir) });
    const ac = new AbortController();
    const out = join(tmp.dir, 'out-int');
    try {
      await expect(
        sep.separateFile(input, {
          outDir: out,
          signal: ac.signal,
          // Abort once inference has started: the stem writers exist (spooling) by then.
          onProgress: (e) => {
            if (e.stage === 'separate' && e.status === 'progress') ac.abort();
          },
        }),
      ).rejects.toMatchObject({ exitCode: 130 });
    } finally {
      await sep.dispose();
    }
    const left = existsSync(out) ? readdirSync(out, { recursive: true }).map(String).filter((f) => f.includes('.')) : [];
    expect(left).toEqual([]);
  }, 30_000);

  it('progress: per stage, done never decreases, total is constant, and the last event reaches it', async () => {
    const events: ProgressEvent[] = [];
    const sep = await loadSeparator({ model }, { config: testConfig(tmp.dir) });
    try {
      const r = await sep.separateFile(input, { outDir: join(tmp.dir, 'out-prog'), onProgress: (e) => events.push(e) });
      expect(r.status).toBe('ok');
    } finally {
      await sep.dispose();
    }
    for (const stage of ['separate', 'write'] as const) {
      const ev = events.filter((e) => e.stage === stage);
      expect(ev.length).toBeGreaterThan(1);
      expect(new Set(ev.map((e) => e.total)).size).toBe(1);
      for (let i = 1; i < ev.length; i++) expect(ev[i]!.done).toBeGreaterThanOrEqual(ev[i - 1]!.done);
      expect(ev.at(-1)).toMatchObject({ status: 'done', done: ev[0]!.total });
    }
  }, 30_000);

  it('plans outputs: two-stem methods, --stems subsets, mode 2', () => {
    const four = ['drums', 'bass', 'other', 'vocals'];
    expect(planOutputs(four, {})).toEqual({ stems: four, wanted: four });
    expect(planOutputs(four, { twoStems: 'vocals', otherMethod: 'minus' })).toEqual({ stems: ['vocals', 'minus_vocals'], wanted: ['vocals'], complement: { name: 'minus_vocals', of: 'vocals', method: 'minus' } });
    expect(planOutputs(four, { mode: 2 })).toMatchObject({ stems: ['vocals', 'no_vocals'], wanted: four });
    expect(planOutputs(four, { stems: ['bass'] })).toEqual({ stems: ['bass'], wanted: ['bass'] });
    expect(planOutputs(four, { twoStems: 'drums', stems: ['minus_drums'], otherMethod: 'minus' })).toMatchObject({ stems: ['minus_drums'], wanted: ['drums'] });
    expect(planOutputs(four, { twoStems: 'drums', stems: ['no_drums'] })).toMatchObject({ stems: ['no_drums'], wanted: four });
    expect(planOutputs(['speech', 'noise'], { mode: 2 })).toEqual({ stems: ['speech', 'noise'], wanted: ['speech', 'noise'] });
    expect(() => planOutputs(four, { stems: ['piano'] })).toThrow(/unknown stem "piano"/);
  });

  it('formats the one-line timing summary', () => {
    const line = formatTimingLine({ times: { load: 0.41, decode: 0.3, infer: 12.8, write: 0.52, total: 14.03 }, rtf: 0.0612, provider: 'cpu', threads: 4 });
    expect(line).toBe('load 0.41s | decode 0.30s | infer 12.8s | write 0.52s | total 14.0s | RTF 0.06 | cpu ×4');
    expect(formatTimingLine({ times: { load: 1, decode: 0, infer: 2, write: 0, total: 3 }, rtf: 0.01, provider: 'cuda', threads: 0 })).toMatch(/\| cuda$/);
  });
});
