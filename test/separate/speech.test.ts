/**
 * GTCRN and DTLN, the real pretrained networks from $STEMKIT_SHARED_DIR/models, on speech + white noise.
 * Clean speech: the spoken `vocals` stem of a shared eval song, downmixed and resampled to 16 kHz.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resampleAudio } from '../../src/dsp/resample.js';
import { createSession } from '../../src/runtime/onnx.js';
import { loadSeparator } from '../../src/separate/separate.js';
import { createDtlnModel, createGtcrnModel } from '../../src/separate/speech.js';
import { SHARED_DIR, readAudio, siSdr, tempDir, testConfig, whiteNoise, rms, writeWav, maxAbsDiff } from '../helpers/separate-fixtures.js';

const SECONDS = 6;

describe.skipIf(!SHARED_DIR)('speech enhancement on speech + noise (real models)', () => {
  const tmp = tempDir();
  let clean: Float32Array;
  let noisy: Float32Array;
  const noisyPath = join(tmp.dir, 'noisy.wav');

  beforeAll(async () => {
    const vocals = await readAudio(join(SHARED_DIR!, 'eval/music/planetblupi-music000/vocals.flac'));
    const mono = new Float32Array(vocals.channels[0]!.length);
    for (let i = 0; i < mono.length; i++) mono[i] = 0.5 * (vocals.channels[0]![i]! + vocals.channels[1]![i]!);
    const at16 = resampleAudio({ channels: [mono], sampleRate: vocals.sampleRate }, 16000);
    clean = at16.channels[0]!.slice(0, SECONDS * 16000);
    // Noise 3 dB below the speech (input SNR +3 dB).
    const noise = whiteNoise(clean.length, rms(clean) / Math.SQRT2, 7);
    noisy = new Float32Array(clean.length);
    for (let i = 0; i < clean.length; i++) noisy[i] = clean[i]! + noise[i]!;
    await writeWav(noisyPath, { channels: [noisy], sampleRate: 16000 });
  });
  afterAll(() => tmp.cleanup());

  const cases = [
    { id: 'gtcrn', modelPath: () => join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx'), minGain: 4 },
    { id: 'dtln', modelPath: () => join(SHARED_DIR!, 'models/dtln/model_1.onnx'), minGain: 4 },
  ];
  for (const c of cases) {
    it(`${c.id}: improves SI-SDR, and speech + noise = input`, async () => {
      const config = testConfig(tmp.dir);
      const sep = await loadSeparator({ model: c.id, modelPath: c.modelPath() }, { config });
      try {
        expect(sep.stems).toEqual(['speech', 'noise']);
        const out = join(tmp.dir, c.id);
        const r = await sep.separateFile(noisyPath, { outDir: out, bits: 32, clip: 'none' });
        expect(r.error).toBeUndefined();
        expect(r.status).toBe('ok');
        const speech = (await readAudio(r.outputs['speech']!)).channels[0]!;
        const noise = (await readAudio(r.outputs['noise']!)).channels[0]!;
        expect(speech.length).toBe(noisy.length);
        expect(noise.length).toBe(noisy.length);
        const before = siSdr(noisy, clean);
        const after = siSdr(speech, clean);
        // Reported in the test output; the improvement bound is well below what both models reach here.
        console.info(`${c.id}: SI-SDR ${before.toFixed(2)} dB → ${after.toFixed(2)} dB (+${(after - before).toFixed(2)} dB); infer ${r.times.infer.toFixed(2)}s for ${SECONDS}s`);
        expect(after - before).toBeGreaterThan(c.minGain);
        // noise = input − speech, computed in float32 and written as float32: exact up to float32 rounding.
        const sum = speech.map((v, i) => v + noise[i]!);
        expect(maxAbsDiff(sum, noisy)).toBeLessThan(1e-6);
      } finally {
        await sep.dispose();
      }
    }, 60_000);
  }

  const steppedCases = [
    {
      id: 'gtcrn',
      load: (stepping: 'scan' | 'frame') => createGtcrnModel(join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx'), { id: 'gtcrn', session: { device: 'cpu', threads: 1 }, createSession, stepping }),
    },
    {
      id: 'dtln',
      load: (stepping: 'scan' | 'frame') =>
        createDtlnModel(join(SHARED_DIR!, 'models/dtln/model_1.onnx'), join(SHARED_DIR!, 'models/dtln/model_2.onnx'), { id: 'dtln', session: { device: 'cpu', threads: 1 }, createSession, stepping }),
    },
  ];
  for (const c of steppedCases) {
    it(`${c.id}: the Scan path (a block of frames per run) gives the frame-by-frame outputs, streamed in uneven blocks`, async () => {
      const run = async (stepping: 'scan' | 'frame', block: number): Promise<Float32Array> => {
        const model = await c.load(stepping);
        try {
          const stream = model.createStream({ wantedStems: ['speech'] });
          const parts: Float32Array[] = [];
          const take = (b: Awaited<ReturnType<typeof stream.push>>): void => void (b['speech'] && parts.push(b['speech'].channels[0]!));
          for (let i = 0; i < noisy.length; i += block) take(await stream.push({ channels: [noisy.subarray(i, i + block)], sampleRate: 16000 }));
          take(await stream.flush());
          const y = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
          let o = 0;
          for (const p of parts) y.set(p, (o += p.length) - p.length);
          return y;
        } finally {
          await model.dispose();
        }
      };
      const frame = await run('frame', 16384);
      // 4099 samples: blocks that end mid-step; 80000: a call longer than DTLN's 512-step cap per run.
      for (const block of [4099, 80000]) {
        const scan = await run('scan', block);
        expect(scan.length).toBe(noisy.length);
        expect(frame.length).toBe(noisy.length);
        // The Scan body runs the step graph's kernels on the same values; measured max difference 0 for both models
        // (bound: float32 noise).
        expect(maxAbsDiff(scan, frame)).toBeLessThan(1e-6);
      }
    }, 60_000);
  }

  it('gtcrn and dtln run one ORT thread whatever the budget (a second one only slowed them), on both paths', async () => {
    const seen: number[] = [];
    const counting: typeof createSession = async (path, o) => {
      seen.push(o.threads);
      return createSession(path, o);
    };
    const session = { device: 'cpu' as const, threads: 4 };
    for (const stepping of ['scan', 'frame'] as const) {
      const g = await createGtcrnModel(join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx'), { id: 'gtcrn', session, createSession: counting, stepping });
      const d = await createDtlnModel(join(SHARED_DIR!, 'models/dtln/model_1.onnx'), join(SHARED_DIR!, 'models/dtln/model_2.onnx'), { id: 'dtln', session, createSession: counting, stepping });
      expect([g.threads, d.threads]).toEqual([1, 1]);
      await Promise.all([g.dispose(), d.dispose()]);
    }
    // The frame paths open their sessions through the given createSession (the Scan path opens its own).
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([1]));
  });

  it('dtln: a file that is not a DTLN stage is refused with E_MODEL_CONTRACT on either path', async () => {
    const gtcrn = join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx');
    const stage2 = join(SHARED_DIR!, 'models/dtln/model_2.onnx');
    for (const stepping of [undefined, 'scan', 'frame'] as const) {
      await expect(createDtlnModel(gtcrn, stage2, { id: 'dtln', session: { device: 'cpu', threads: 1 }, createSession, ...(stepping && { stepping }) })).rejects.toMatchObject({
        code: 'E_MODEL_CONTRACT',
        message: expect.stringContaining('does not match the DTLN contract'),
      });
    }
  }, 30_000);
});
