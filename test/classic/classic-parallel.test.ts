/**
 * `classic` on worker threads (threads ≥ 2 on the CPU): the same stems as the one-thread path, never more compute
 * threads than the budget, workers gone on abort and dispose, and a worker's errors as the same typed errors.
 * The workers run the build (dist/separate/classic-worker.js): `npm test` builds first.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { InputError, InterruptedError, StemkitError } from '../../src/errors.js';
import { CLASSIC_PARAMS, classicContextSamples, createClassicModel } from '../../src/separate/classic.js';
import { classicChunkSamples, reviveError, transferError } from '../../src/separate/classic-parallel.js';
import type { StemBlocks, StemModel } from '../../src/separate/types.js';
import { readAll } from '../../src/audio/open.js';
import { openWavSource } from '../../src/audio/wav.js';
import { separateStream } from '../helpers/stem-stream.js';
import { writeWav } from '../helpers/separate-fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'models', 'classic.onnx');
const RATE = CLASSIC_PARAMS.sampleRate;
const STEMS = ['drums', 'bass', 'other', 'vocals'] as const;
/**
 * The parallel path against the one-thread path: measured 1.2e-7 on the shared songs and the test signal, the same
 * as the one-thread path against itself with another block size (the masks' frame batches differ, so ORT's kernels
 * round a few values differently). One float32 step at 1 is 1.2e-7.
 */
const TOL_PARALLEL = 3e-7;

/** OS threads of this process (Linux). A worker thread is one; a one-thread ORT session adds none. */
function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

/** Deterministic music-like stereo signal: a centred vibrato tone, a panned bass, clicks and LCG noise. */
function testSignal(frames: number): Float32Array[] {
  const l = new Float32Array(frames);
  const r = new Float32Array(frames);
  let s = 12345;
  for (let i = 0; i < frames; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const n = s / 2 ** 31 - 1;
    const t = i / RATE;
    const centre = 0.3 * Math.sin(2 * Math.PI * 220 * t + 3 * Math.sin(2 * Math.PI * 5 * t));
    const bass = 0.3 * Math.sin(2 * Math.PI * 55 * t);
    const click = i % 11025 < 200 ? 0.3 * n : 0;
    l[i] = centre + 0.8 * bass + click + 0.05 * n;
    r[i] = centre + 0.4 * bass + click - 0.05 * n;
  }
  return [l, r];
}

function separate(model: StemModel, x: Float32Array[], block: number, signal?: AbortSignal): Promise<Record<string, Float32Array[]>> {
  return separateStream(model, x, [block], { totalFrames: x[0]!.length, ...(signal ? { signal } : {}) });
}

function maxDiff(a: Record<string, Float32Array[]>, b: Record<string, Float32Array[]>, frames: number): number {
  let d = 0;
  for (const k of STEMS) {
    for (let c = 0; c < 2; c++) {
      expect(a[k]![c]!.length).toBe(frames);
      expect(b[k]![c]!.length).toBe(frames);
      for (let i = 0; i < frames; i++) d = Math.max(d, Math.abs(a[k]![c]![i]! - b[k]![c]![i]!));
    }
  }
  return d;
}

let one: StemModel;
beforeAll(async () => {
  one = await createClassicModel(MODEL, { device: 'cpu', threads: 1 });
  // The libuv pool starts on the first asynchronous file read; start it now so that it does not count below.
  await readFile(MODEL);
});
afterAll(async () => {
  await one.dispose();
});

describe('the chunk plan', () => {
  it('reaches 0.77 s through the three stages, on the frame grid of every stage', () => {
    // bass 4096 + 8·1024, drums 1024 + 8·256, vocals 4096 + 14·1024 (modulation ±12 frames, refiner ±2).
    expect(classicContextSamples()).toBe(12288 + 3072 + 18432);
    expect(classicContextSamples() % 1024).toBe(0);
  });
  it('gives every worker the same number of chunks of at most 60 s, on the 1024-sample grid', () => {
    expect(classicChunkSamples(180 * RATE, 2)).toBe(Math.ceil((45 * RATE) / 1024) * 1024); // 4 chunks, 2 per worker
    expect(classicChunkSamples(180 * RATE, 4)).toBe(Math.ceil((45 * RATE) / 1024) * 1024); // 4 chunks, 1 per worker
    expect(classicChunkSamples(300 * RATE, 4)).toBe(Math.ceil((37.5 * RATE) / 1024) * 1024); // 8 chunks, 2 per worker
    expect(classicChunkSamples(8 * RATE, 2)).toBe(Math.ceil((5 * RATE) / 1024) * 1024); // short: at least 5 s
    expect(classicChunkSamples(undefined, 2)).toBe(Math.ceil((60 * RATE) / 1024) * 1024);
    expect(classicChunkSamples(180 * RATE, 2, 4)).toBe(Math.ceil((4 * RATE) / 1024) * 1024);
  });
});

describe('classic on two worker threads', () => {
  it('gives the one-thread stems (within 3e-7) over several chunks, with two threads running and none left after dispose', async () => {
    const x = testSignal(11 * RATE + 333);
    const ref = await separate(one, x, 65536);
    const base = osThreads();
    const two = await createClassicModel(MODEL, { device: 'cpu', threads: 2 }, { chunkSeconds: 2 });
    try {
      expect(two.threads).toBe(2);
      expect(two.provider).toBe('cpu');
      // Two worker threads, each with a one-thread session (which starts no thread of its own): the budget of two.
      expect(osThreads() - base).toBe(2);
      // 6 chunks, at most 3 in flight; blocks that do not line up with the chunks.
      const y = await separate(two, x, 44100);
      expect(osThreads() - base).toBe(2);
      expect(maxDiff(ref, y, x[0]!.length)).toBeLessThan(TOL_PARALLEL);
      // A whole track in one push, and a track shorter than one chunk, then an empty one.
      expect(maxDiff(ref, await separate(two, x, x[0]!.length), x[0]!.length)).toBeLessThan(TOL_PARALLEL);
      const short = x.map((c) => c.slice(0, 5000));
      expect(maxDiff(await separate(one, short, 5000), await separate(two, short, 5000), 5000)).toBeLessThan(TOL_PARALLEL);
      const empty = await two.createStream({}).flush();
      for (const k of STEMS) expect(empty[k]!.channels[0]!.length).toBe(0);
    } finally {
      await two.dispose();
    }
    expect(osThreads()).toBe(base);
  });

  it('uses three workers for a budget of three', async () => {
    const base = osThreads();
    const three = await createClassicModel(MODEL, { device: 'cpu', threads: 3 }, { chunkSeconds: 1 });
    try {
      expect(osThreads() - base).toBe(3);
      const x = testSignal(4 * RATE);
      expect(maxDiff(await separate(one, x, 65536), await separate(three, x, 30000), x[0]!.length)).toBeLessThan(TOL_PARALLEL);
    } finally {
      await three.dispose();
    }
    expect(osThreads()).toBe(base);
  });

  it('stops at an abort: InterruptedError (130) at once, the workers stop between blocks, the model still usable', async () => {
    const base = osThreads();
    const two = await createClassicModel(MODEL, { device: 'cpu', threads: 2 }, { chunkSeconds: 2 });
    try {
      const x = testSignal(12 * RATE);
      const ac = new AbortController();
      const stream = two.createStream({ signal: ac.signal });
      // Enough for three chunks: both workers busy, one waiting.
      await stream.push({ channels: x.map((c) => c.subarray(0, 7 * RATE)), sampleRate: RATE });
      ac.abort();
      const err = await stream.flush().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InterruptedError);
      expect((err as InterruptedError).exitCode).toBe(130);
      // The workers drop the aborted chunks at their next block (never inside ORT) and take the next stream's.
      expect(osThreads() - base).toBe(2);
      const y = await separate(two, x.map((c) => c.subarray(0, 3 * RATE)), 65536);
      expect(maxDiff(await separate(one, x.map((c) => c.subarray(0, 3 * RATE)), 65536), y, 3 * RATE)).toBeLessThan(TOL_PARALLEL);
      expect(osThreads() - base).toBe(2);
    } finally {
      await two.dispose();
    }
    expect(osThreads()).toBe(base);
  });

  it("surfaces a worker's errors as the one-thread path's typed errors", async () => {
    const base = osThreads();
    // At load: the same InputError (66) as in-process.
    const missing = join(tmpdir(), 'stemkit-no-such-classic.onnx');
    const a = await createClassicModel(missing, { device: 'cpu', threads: 1 }).catch((e: unknown) => e);
    const b = await createClassicModel(missing, { device: 'cpu', threads: 2 }).catch((e: unknown) => e);
    expect(a).toBeInstanceOf(InputError);
    expect(b).toBeInstanceOf(InputError);
    expect((b as InputError).code).toBe((a as InputError).code);
    expect((b as InputError).message).toBe((a as InputError).message);
    expect(osThreads()).toBe(base);
    // At run time: a graph with classic's input names but 7 bins instead of 2049 loads, and ORT rejects its feeds.
    const dir = mkdtempSync(join(tmpdir(), 'stemkit-classic-par-'));
    try {
      const g = new GraphBuilder('wrong_classic');
      for (const n of ['bass', 'drums', 'vocals']) {
        g.input(`${n}_re`, 'float32', [n === 'vocals' ? 6 : 2, 't', 7]);
        g.input(`${n}_im`, 'float32', [n === 'vocals' ? 6 : 2, 't', 7]);
      }
      for (const o of ['bass_mask', 'drums_mask', 'vocals_mask', 'final_bass_mask', 'final_drums_mask']) g.op('Identity', ['bass_re'], {}, o);
      for (const o of ['bass_mask', 'drums_mask', 'vocals_mask', 'final_bass_mask', 'final_drums_mask']) g.output(o, 'float32', [2, 't', 7]);
      const path = join(dir, 'wrong.onnx');
      writeFileSync(path, g.build(17));
      const x = testSignal(3 * RATE);
      const fail = async (threads: number): Promise<unknown> => {
        const m = await createClassicModel(path, { device: 'cpu', threads }, { chunkSeconds: 1 });
        try {
          return await separate(m, x, 65536).then(() => undefined, (e: unknown) => e);
        } finally {
          await m.dispose();
        }
      };
      const inProcess = await fail(1);
      const inWorker = await fail(2);
      expect(inProcess).toBeInstanceOf(StemkitError);
      expect(inWorker).toBeInstanceOf((inProcess as StemkitError).constructor as typeof StemkitError);
      expect({ code: (inWorker as StemkitError).code, exitCode: (inWorker as StemkitError).exitCode, hint: (inWorker as StemkitError).hint }).toEqual({
        code: 'E_MODEL_CONTRACT',
        exitCode: 65,
        hint: (inProcess as StemkitError).hint,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(osThreads()).toBe(base);
  });

  it('revives every StemkitError class with its code and hint; anything else is an InternalError (70)', () => {
    const e = reviveError(transferError(new InputError('gone', { code: 'E_X', hint: 'h' })));
    expect(e).toBeInstanceOf(InputError);
    expect([e.code, e.exitCode, e.hint, e.message]).toEqual(['E_X', 66, 'h', 'gone']);
    expect(reviveError(transferError(new InterruptedError())).exitCode).toBe(130);
    const raw = reviveError(transferError(new TypeError('boom')));
    expect([raw.name, raw.exitCode, raw.message]).toEqual(['InternalError', 70, 'classic worker thread: boom']);
  });
});

const shared = process.env['STEMKIT_SHARED_DIR'];
const song = shared ? join(shared, 'eval', 'music', 'planetblupi-music004', 'mixture.flac') : '';

describe.skipIf(!shared || !existsSync(song))('classic on two worker threads, a real song', () => {
  it('gives the one-thread stems within 3e-7 (15 s in 4 chunks)', async () => {
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', song, '-f', 'f32le', '-ac', '2', '-'], { maxBuffer: 1 << 28 });
    const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const x = [new Float32Array(all.length / 2), new Float32Array(all.length / 2)];
    for (let i = 0; i < x[0]!.length; i++) {
      x[0]![i] = all[2 * i]!;
      x[1]![i] = all[2 * i + 1]!;
    }
    const two = await createClassicModel(MODEL, { device: 'cpu', threads: 2 }, { chunkSeconds: 4 });
    try {
      expect(maxDiff(await separate(one, x, 65536), await separate(two, x, 65536), x[0]!.length)).toBeLessThan(TOL_PARALLEL);
    } finally {
      await two.dispose();
    }
  });
});

describe('classic on threads, piece by piece', () => {
  it('hands the stems on in pieces of a worker block, in order, equal to the one-thread stems', async () => {
    const x = testSignal(12 * RATE + 777);
    const ref = await separate(one, x, 65536);
    const two = await createClassicModel(MODEL, { device: 'cpu', threads: 2 }, { chunkSeconds: 5 });
    try {
      const stream = two.createStream({ totalFrames: x[0]!.length });
      const pieces: StemBlocks[] = [];
      for await (const p of stream.pieces!({ channels: x, sampleRate: RATE })) pieces.push(p);
      for await (const p of stream.pieces!(null)) pieces.push(p);
      const sizes = pieces.map((p) => p['vocals']!.channels[0]!.length);
      // 3 chunks of 5 s or less; a worker pushes 65536 samples at a time, and its flush returns at most the
      // cascade's latency more: no piece is a chunk's worth.
      expect(pieces.length).toBeGreaterThan(6);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(65536 + classicContextSamples());
      const joined: Record<string, Float32Array[]> = {};
      for (const k of STEMS) {
        joined[k] = [0, 1].map((c) => {
          const y = new Float32Array(x[0]!.length);
          let o = 0;
          for (const p of pieces) {
            expect(p[k]!.channels[c]!.length).toBe(p['vocals']!.channels[0]!.length);
            y.set(p[k]!.channels[c]!, o);
            o += p[k]!.channels[c]!.length;
          }
          expect(o).toBe(x[0]!.length);
          return y;
        });
      }
      expect(maxDiff(ref, joined, x[0]!.length)).toBeLessThan(TOL_PARALLEL);
    } finally {
      await two.dispose();
    }
  });

  it('stemkit separate writes the same stems at --threads 2 as at 1 (pieces through the pipeline and writers)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stemkit-classic-cli-'));
    try {
      // 13 s: two chunks on two workers, the second one's pieces queued while the first is written.
      const x = testSignal(13 * RATE + 123);
      await writeWav(join(dir, 'song.wav'), { channels: x, sampleRate: RATE });
      const env = { ...process.env, NO_COLOR: '1', HOME: dir, STEMKIT_CACHE_DIR: join(dir, 'cache'), STEMKIT_RUNTIME_DIR: join(dir, 'run') };
      const stems: Record<string, Record<string, Float32Array[]>> = {};
      for (const t of ['1', '2']) {
        const out = join(dir, `out${t}`);
        execFileSync(process.execPath, [join(ROOT, 'bin', 'stemkit.js'), 'separate', join(dir, 'song.wav'), '-o', out, '--threads', t, '--device', 'cpu', '--bits', '32', '--clip', 'none'], { cwd: dir, env, stdio: 'pipe' });
        stems[t] = {};
        for (const k of STEMS) stems[t]![k] = (await readAll(await openWavSource(join(out, 'song', `${k}.wav`)))).channels;
      }
      expect(maxDiff(stems['1']!, stems['2']!, x[0]!.length)).toBeLessThan(TOL_PARALLEL);
      // Not the same file twice: the stems differ from each other.
      expect(maxDiff({ ...stems['1']!, vocals: stems['1']!['drums']! }, stems['1']!, x[0]!.length)).toBeGreaterThan(0.01);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('stemkit separate --threads 2, interrupted', () => {
  /** A real CLI process on a 40 s track; Ctrl-C (once, or twice 20 ms apart) while the workers run. */
  async function interrupt(times: 1 | 2): Promise<{ code: number | null; signal: NodeJS.Signals | null; left: string[] }> {
    const dir = mkdtempSync(join(tmpdir(), 'stemkit-classic-sigint-'));
    try {
      await writeWav(join(dir, 'song.wav'), { channels: testSignal(40 * RATE), sampleRate: RATE });
      const out = join(dir, 'out');
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'stemkit.js'), '--json', 'separate', join(dir, 'song.wav'), '-o', out, '--threads', '2', '--device', 'cpu'], {
        cwd: dir,
        env: { ...process.env, NO_COLOR: '1', HOME: dir, STEMKIT_CACHE_DIR: join(dir, 'cache'), STEMKIT_RUNTIME_DIR: join(dir, 'run') },
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const exit = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      // The separate stage has started: the workers hold chunks, and spend about half their time inside ORT.
      while (!/"stage":"separate","status":"start"/.test(stderr)) {
        if (child.exitCode !== null) throw new Error(`stemkit ended early: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 800));
      child.kill('SIGINT');
      if (times === 2) {
        await new Promise((r) => setTimeout(r, 20));
        child.kill('SIGINT');
      }
      const [code, signal] = await exit;
      return { code, signal, left: existsSync(out) ? readdirSync(out, { recursive: true }).map(String).filter((f) => f.endsWith('.wav') || f.includes('tmp')) : [] };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('Ctrl-C while the workers run: exit 130, the process ends, no output or temp file is left', async () => {
    expect(await interrupt(1)).toEqual({ code: 130, signal: null, left: [] });
  });

  it('Ctrl-C twice (exit at once): 130, not an abort of a worker stopped inside ONNX Runtime', async () => {
    // Measured before the exit hook waited for the workers' blocks: SIGABRT in 3 of 5 runs.
    expect(await interrupt(2)).toMatchObject({ code: 130, signal: null });
  });
});
