/**
 * The speech models on a multi-channel file with two threads: the second channel's stream runs on a worker thread
 * (src/separate/speech-lanes.ts), with the same samples as the one-thread path, within the thread budget, and no
 * worker at all for a mono file. Real GTCRN and DTLN from $STEMKIT_SHARED_DIR; the worker runs the build
 * (dist/separate/speech-worker.js), which `npm test` builds first.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError } from '../../src/errors.js';
import { createSession } from '../../src/runtime/onnx.js';
import { withSpeechLanes, type SpeechModelSpec } from '../../src/separate/speech-lanes.js';
import { createDtlnModel, createGtcrnModel } from '../../src/separate/speech.js';
import type { StemModel, StemStream } from '../../src/separate/types.js';
import { SHARED_DIR, tempDir, whiteNoise, writeWav } from '../helpers/separate-fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..');
const RATE = 16000;

/** OS threads of this process (Linux). A worker thread is one; a one-thread ORT session adds none. */
function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

/** Two different channels: a tone in noise, and another noise. */
function stereo(seconds: number): Float32Array[] {
  const a = whiteNoise(seconds * RATE, 0.05, 3);
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + 0.3 * Math.sin((2 * Math.PI * 220 * i) / RATE);
  return [a, whiteNoise(seconds * RATE, 0.1, 9)];
}

/** Each channel through its own stream, the lanes pushed at the same time; the speech stems joined. */
async function perChannel(model: StemModel, x: Float32Array[], block: number, signal?: AbortSignal): Promise<Float32Array[]> {
  const streams: StemStream[] = x.map((_, lane) => model.createStream({ wantedStems: ['speech'], lane, ...(signal ? { signal } : {}) }));
  const parts: Float32Array[][] = x.map(() => []);
  const take = (outs: Array<Awaited<ReturnType<StemStream['push']>>>): void => outs.forEach((o, c) => parts[c]!.push(o['speech']!.channels[0]!));
  for (let i = 0; i < x[0]!.length; i += block) take(await Promise.all(streams.map((s, c) => s.push({ channels: [x[c]!.subarray(i, i + block)], sampleRate: RATE }))));
  take(await Promise.all(streams.map((s) => s.flush())));
  return parts.map((p) => {
    const y = new Float32Array(p.reduce((a, q) => a + q.length, 0));
    p.reduce((o, q) => (y.set(q, o), o + q.length), 0);
    return y;
  });
}

describe.skipIf(!SHARED_DIR)('speech models: the extra channels on worker threads', () => {
  const cases: Array<{ spec: () => SpeechModelSpec; load: (threads: number) => Promise<StemModel> }> = [
    {
      spec: () => ({ kind: 'gtcrn', id: 'gtcrn', paths: [join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx')] }),
      load: (threads) => createGtcrnModel(join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx'), { id: 'gtcrn', session: { device: 'cpu', threads }, createSession }),
    },
    {
      spec: () => ({ kind: 'dtln', id: 'dtln', paths: [join(SHARED_DIR!, 'models/dtln/model_1.onnx'), join(SHARED_DIR!, 'models/dtln/model_2.onnx')] }),
      load: (threads) => createDtlnModel(join(SHARED_DIR!, 'models/dtln/model_1.onnx'), join(SHARED_DIR!, 'models/dtln/model_2.onnx'), { id: 'dtln', session: { device: 'cpu', threads }, createSession }),
    },
  ];
  for (const c of cases) {
    it(`${c.spec().kind}: two channels at two threads give exactly the one-thread samples, with one worker thread, gone after dispose`, async () => {
      const x = stereo(3);
      const one = await c.load(1);
      const ref = await perChannel(one, x, 7000);
      await one.dispose();
      const base = osThreads();
      const session = { device: 'cpu' as const, threads: 2 };
      const two = withSpeechLanes(await c.load(2), c.spec(), session);
      try {
        expect([two.threads, two.concurrentLanes]).toEqual([2, true]);
        // A mono file: lane 0 only, in this thread; no worker starts.
        await perChannel(two, [x[0]!], 7000);
        expect(osThreads()).toBe(base);
        const y = await perChannel(two, x, 7000);
        // The budget of two: this thread and one worker (whose one-thread session starts no thread).
        expect(osThreads() - base).toBe(1);
        for (let ch = 0; ch < 2; ch++) {
          expect(y[ch]!.length).toBe(x[0]!.length);
          // Same kernels, same states, one thread each: bit-identical.
          expect(Buffer.compare(Buffer.from(y[ch]!.buffer), Buffer.from(ref[ch]!.buffer))).toBe(0);
        }
        // The channels differ (the worker did not return lane 0's audio).
        expect(Buffer.compare(Buffer.from(y[0]!.buffer), Buffer.from(y[1]!.buffer))).not.toBe(0);
      } finally {
        await two.dispose();
      }
      expect(osThreads()).toBe(base);
    }, 60_000);
  }

  it('an abort while the worker runs stops the lane with InterruptedError (130); the model is still usable', async () => {
    const c = cases[0]!;
    const two = withSpeechLanes(await c.load(2), c.spec(), { device: 'cpu', threads: 2 });
    try {
      const ac = new AbortController();
      const x = stereo(20);
      // The second channel alone, in the worker: abort once its first block is back.
      const lane = two.createStream({ wantedStems: ['speech'], lane: 1, signal: ac.signal });
      await lane.push({ channels: [x[1]!.subarray(0, 4000)], sampleRate: RATE });
      const running = lane.push({ channels: [x[1]!.subarray(4000, 20 * RATE)], sampleRate: RATE });
      ac.abort();
      await expect(running).rejects.toBeInstanceOf(InterruptedError);
      await expect(lane.flush()).rejects.toBeInstanceOf(InterruptedError);
      // The worker finishes or skips the given-up block, forgets that stream, and takes the next one.
      const y = await perChannel(two, stereo(1), 4000);
      expect(y[1]!.length).toBe(RATE);
    } finally {
      await two.dispose();
    }
  }, 60_000);

  it("a worker that cannot load its model fails the lane with the one-thread path's typed error", async () => {
    const c = cases[0]!;
    const two = withSpeechLanes(await c.load(2), { kind: 'gtcrn', id: 'gtcrn', paths: [join(ROOT, 'package.json')] }, { device: 'cpu', threads: 2 });
    try {
      const err = await perChannel(two, stereo(1), 4000).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'DataError', exitCode: 65 });
    } finally {
      await two.dispose();
    }
  }, 60_000);

  describe('stemkit separate on a stereo file', () => {
    const tmp = tempDir();
    beforeAll(async () => {
      await writeWav(join(tmp.dir, 'talk.wav'), { channels: stereo(4), sampleRate: RATE });
    });
    afterAll(() => tmp.cleanup());
    it('writes the same bytes at --threads 2 as at --threads 1', () => {
      const model = join(SHARED_DIR!, 'models/gtcrn/gtcrn_simple.onnx');
      const env = { ...process.env, NO_COLOR: '1', HOME: tmp.dir, STEMKIT_CACHE_DIR: join(tmp.dir, 'cache'), STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run') };
      for (const t of ['1', '2']) {
        execFileSync(process.execPath, [join(ROOT, 'bin', 'stemkit.js'), 'separate', join(tmp.dir, 'talk.wav'), '--model', model, '-o', join(tmp.dir, `out${t}`), '--threads', t, '--device', 'cpu'], { env, stdio: 'pipe' });
      }
      for (const stem of ['speech', 'noise']) {
        const a = readFileSync(join(tmp.dir, 'out1', 'talk', `${stem}.wav`));
        expect(a.length).toBeGreaterThan(4 * RATE * 2 * 2);
        expect(Buffer.compare(a, readFileSync(join(tmp.dir, 'out2', 'talk', `${stem}.wav`)))).toBe(0);
      }
    }, 60_000);
  });
});
