/**
 * The "done when" for `stemkit worker`, with real Redis servers (127.0.0.1, free ports), real
 * worker processes (`node bin/stemkit.js worker`) and real submissions (`separate --queue`):
 * - two workers sharing one runtime directory (one "machine", small profile: 2 heavy jobs) and a third with
 *   its own (a second machine) run 12 jobs: each completes once with correct outputs, and no machine ever
 *   runs more than 2 at once (from the slot times the workers store in each job's result);
 * - a bad input fails once, without retries, with its code (65);
 * - a worker killed with SIGKILL mid-job: its job is found stalled and finished by another; all 12 outputs
 *   are complete and no temp file is left;
 * - Redis killed and restarted mid-run (append-only file, fsync always): no job is lost.
 * The model is the slow identity MDX-Net stand-in (vocals = input), so outputs are checkable exactly.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWav, sineAt, stemkit, writeSineWav, writeSlowModel } from '../helpers/jobs-cli.js';
import { assertBuilt, maxOverlap, type JsonLine, type Proc } from '../helpers/jobs-procs.js';
import { HAS_REDIS, startRedis, type TestRedis } from '../helpers/queue-redis.js';
import { buildPiperModel, piperConfig } from '../helpers/tts-fixtures.js';
import { openQueue, type QueueClient } from '../../src/queue/client.js';
import { resolveConfig } from '../../src/config/resolve.js';

let work: string;
let model: string;
const FREQS = Array.from({ length: 12 }, (_, k) => 200 + 40 * k);

beforeAll(async () => {
  assertBuilt('src/queue/worker.ts', 'dist/queue/worker.js');
  assertBuilt('src/cli/commands/queue.ts', 'dist/cli/commands/queue.js');
  work = await mkdtemp(join(tmpdir(), 'stemkit-queue-'));
  // The MDX-Net identity stand-in without its slowing MatMuls: a 1-second job costs about a second of DSP.
  model = writeSlowModel(join(work, 'model'), 0);
  mkdirSync(join(work, 'in'));
  for (const f of FREQS) writeSineWav(join(work, 'in', `tone${f}.wav`), 1, f);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A config file for one scenario: roots = the work folder, and how soon a silent worker's jobs go to others. */
function configFile(name: string, stallSec: number, extra: Record<string, unknown> = {}): string {
  const path = join(work, `${name}.json`);
  writeFileSync(path, JSON.stringify({ queue: { roots: [work], stallSec, attempts: 3, ...extra } }));
  return path;
}

function startWorker(url: string, config: string, runtimeDir: string): Proc {
  return stemkit(['--profile', 'small', '--config', config, '--json', '--device', 'cpu', 'worker', '--queue', url, '--drain', '5'], { STEMKIT_RUNTIME_DIR: runtimeDir });
}

const jobEvents = (p: Proc, event: string): JsonLine[] => p.lines.filter((l) => l['type'] === 'job' && l['event'] === event);

async function waitUntil(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 150_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function client(url: string): Promise<QueueClient> {
  const { config } = resolveConfig({ env: {}, flags: {}, cores: 2, homeDir: work });
  return openQueue(url, config);
}

/** Submits the 12 tones (plus `extra` paths) with `separate --queue`; returns the job ids from its JSON lines. */
async function submit(url: string, out: string, extra: string[] = [], wait = false): Promise<{ ids: string[]; proc: Proc; code: number | string }> {
  const inputs = [...FREQS.map((f) => join(work, 'in', `tone${f}.wav`)), ...extra];
  const proc = stemkit(['--json', 'separate', ...inputs, '--model', model, '-o', out, '--queue', url, ...(wait ? ['--wait'] : [])]);
  const code = await proc.exited;
  const ids = proc.lines.filter((l) => l['type'] === 'job').map((l) => String(l['id']));
  return { ids, proc, code };
}

/** Every tone's stems are complete and right: vocals = the sine, instrumental = 0, 44100 frames, no temp files. */
async function expectOutputs(out: string): Promise<void> {
  for (const f of FREQS) {
    const track = join(out, `tone${f}`);
    // The stems, and the manifest saying which model wrote them; nothing else (no temp file of a killed run).
    expect(readdirSync(track).sort()).toEqual(['.stemkit-outputs.json', 'instrumental.wav', 'vocals.wav']);
    const vocals = await readWav(join(track, 'vocals.wav'));
    const inst = await readWav(join(track, 'instrumental.wav'));
    expect(vocals.channels[0]!.length).toBe(44100);
    expect(inst.channels[0]!.length).toBe(44100);
    let ev = 0;
    let ei = 0;
    for (const ch of vocals.channels) for (let i = 0; i < ch.length; i++) ev = Math.max(ev, Math.abs(ch[i]! - sineAt(i, f)));
    for (const ch of inst.channels) for (let i = 0; i < ch.length; i++) ei = Math.max(ei, Math.abs(ch[i]!));
    // Identity model: vocals = input except MDX-Net's zeroed bins 0–2 (≈0.01 on a 0.3 sine at 200 Hz; model-io.md
    // §2.3) and 16-bit rounding; a torn, swapped or silent file is off by ≥ 0.3.
    expect(ev).toBeLessThan(0.02);
    expect(ei).toBeLessThan(0.02);
  }
}

async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
}

describe.skipIf(!HAS_REDIS)('stemkit worker on BullMQ and Redis', () => {
  it('two workers on one machine and one on another run 12 jobs once each, at most 2 at a time per machine; a bad input fails once with 65', async () => {
    const redis = await startRedis(join(work, 'redis1'));
    const url = redis.url;
    const config = configFile('c1', 10);
    const rtA = join(work, 'rtA');
    const rtB = join(work, 'rtB');
    const workers = [startWorker(url, config, rtA), startWorker(url, config, rtA), startWorker(url, config, rtB)];
    try {
      await Promise.all(workers.map((w) => w.waitForLine((l) => l['type'] === 'worker' && l['event'] === 'ready')));
      const bad = join(work, 'in', 'bad.wav');
      writeFileSync(bad, 'not audio');
      const out = join(work, 'out1');
      const { ids, proc, code } = await submit(url, out, [bad], true);
      // --wait exits with the code the failures share: the bad input's 65.
      expect(code).toBe(65);
      expect(ids).toHaveLength(13);
      const results = proc.lines.filter((l) => l['type'] === 'result');
      expect(results.filter((r) => r['state'] === 'completed')).toHaveLength(12);

      await expectOutputs(out);
      // Once each: one start and one done per good job over all workers; the bad one started once, failed once.
      const starts = workers.flatMap((w) => jobEvents(w, 'start').map((l) => String(l['id'])));
      const dones = workers.flatMap((w) => jobEvents(w, 'done'));
      expect(starts.sort()).toEqual([...ids].sort());
      expect(dones.map((l) => String(l['id'])).sort()).toEqual(ids.slice(0, 12).sort());
      const failed = workers.flatMap((w) => jobEvents(w, 'failed'));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ id: ids[12], willRetry: false, error: { code: 'E_BAD_INPUT', exitCode: 65 } });

      // Per machine, never more than the small profile's 2 heavy slots at once (the slot times each job stored).
      const holds = (ws: Proc[]): Array<[number, number]> =>
        ws.flatMap((w) => jobEvents(w, 'done').map((l) => {
          const s = (l['outcome'] as { slots: { acquiredAt: number; releasedAt: number } }).slots;
          return [s.acquiredAt, s.releasedAt] as [number, number];
        }));
      expect(maxOverlap(holds(workers.slice(0, 2)))).toBeLessThanOrEqual(2);
      expect(maxOverlap(holds(workers.slice(2)))).toBeLessThanOrEqual(2);
      // Both machines took part (12 jobs of ~1 s cannot all go to one before the other polls).
      expect(holds(workers.slice(2)).length).toBeGreaterThan(0);
      expect(holds(workers.slice(0, 2)).length).toBeGreaterThan(0);

      const c = await client(url);
      try {
        const job = await c.queue.getJob(ids[12]!);
        expect(job!.attemptsMade).toBe(1);
        expect(await job!.getState()).toBe('failed');
        expect(job!.failedReason).toMatch(/^\[E_BAD_INPUT 65\] /);
      } finally {
        await c.close();
      }
      const status = stemkit(['--json', 'queue', '--queue', url, 'status']);
      expect(await status.exited).toBe(0);
      expect(status.lines[0]).toMatchObject({ type: 'queue-status', counts: { completed: 12, failed: 1, waiting: 0, active: 0 } });
      expect((status.lines[0]!['workers'] as unknown[]).length).toBe(3);
    } finally {
      await stopAll(workers);
      await redis.stop();
    }
    // SIGTERM: a graceful stop that says so, with the CLI's code for it (143).
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([143, 143, 143]);
    for (const w of workers) expect(w.lines.some((l) => l['type'] === 'worker' && l['event'] === 'stopped')).toBe(true);
  }, 200_000);

  it('a worker killed with SIGKILL mid-job: its job is finished by another; all 12 outputs complete, no temp files', async () => {
    const redis = await startRedis(join(work, 'redis2'));
    const url = redis.url;
    // Short enough to keep the test short, long enough that a loaded machine's pauses do not look like a dead worker.
    const config = configFile('c2', 5);
    const workers = [startWorker(url, config, join(work, 'rtC')), startWorker(url, config, join(work, 'rtC')), startWorker(url, config, join(work, 'rtD'))];
    try {
      await Promise.all(workers.map((w) => w.waitForLine((l) => l['type'] === 'worker' && l['event'] === 'ready')));
      const out = join(work, 'out2');
      const { ids } = await submit(url, out);
      expect(ids).toHaveLength(12);
      const victim = workers[0]!;
      const started = await victim.waitForLine((l) => l['type'] === 'job' && l['event'] === 'start');
      // Mid-job: the job has begun writing (a progress update from the worker shows it past the start).
      await new Promise((r) => setTimeout(r, 300));
      victim.child.kill('SIGKILL');
      expect(await victim.exited).toBe('SIGKILL');
      const killedJob = String(started['id']);
      const c = await client(url);
      try {
        await waitUntil('12 completed jobs', async () => (await c.queue.getJobCounts('completed')).completed === 12);
        const counts = await c.queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
        expect(counts).toMatchObject({ completed: 12, failed: 0, waiting: 0, active: 0, delayed: 0 });
      } finally {
        await c.close();
      }
      const survivors = workers.slice(1);
      // The killed worker's job (unless it finished just before the kill) was run again by a survivor.
      const finishedByVictim = jobEvents(victim, 'done').some((l) => String(l['id']) === killedJob);
      if (!finishedByVictim) expect(survivors.some((w) => jobEvents(w, 'done').some((l) => String(l['id']) === killedJob))).toBe(true);
      await expectOutputs(out);
    } finally {
      await stopAll(workers);
      await redis.stop();
    }
  }, 200_000);

  it('Redis killed and restarted mid-run (append-only file): every job still completes', async () => {
    const redis: TestRedis = await startRedis(join(work, 'redis3'), { aof: true });
    const url = redis.url;
    const config = configFile('c3', 5);
    const workers = [startWorker(url, config, join(work, 'rtE')), startWorker(url, config, join(work, 'rtF'))];
    try {
      await Promise.all(workers.map((w) => w.waitForLine((l) => l['type'] === 'worker' && l['event'] === 'ready')));
      const out = join(work, 'out3');
      const { ids } = await submit(url, out);
      expect(ids).toHaveLength(12);
      await waitUntil('3 finished jobs', () => workers.reduce((n, w) => n + jobEvents(w, 'done').length, 0) >= 3);
      await redis.stop(true);
      await new Promise((r) => setTimeout(r, 1000));
      await redis.restart();
      const c = await client(url);
      try {
        await waitUntil('12 completed jobs after the restart', async () => (await c.queue.getJobCounts('completed')).completed === 12);
        expect(await c.queue.getJobCounts('failed', 'waiting', 'active')).toMatchObject({ failed: 0, waiting: 0, active: 0 });
      } finally {
        await c.close();
      }
      await expectOutputs(out);
      // Every submitted job is among the completed ones: nothing acknowledged was lost.
      const c2 = await client(url);
      try {
        const completed = (await c2.queue.getJobs(['completed'], 0, 100)).map((j) => j.id);
        expect(completed.sort()).toEqual([...ids].sort());
      } finally {
        await c2.close();
      }
    } finally {
      await stopAll(workers);
      await redis.stop();
    }
  }, 200_000);

  it('a TTS job; `queue cancel` stops a running job, a job over its time limit fails, both once, giving back their slots; SIGTERM hands a running job back', async () => {
    const redis = await startRedis(join(work, 'redis4'));
    const url = redis.url;
    // No stall detection needed here: a long lock, so a loaded machine cannot make a failed job look stalled.
    const config = configFile('c4', 20);
    // The time limit is the submitter's (stored in each job).
    const shortLimit = configFile('c4-submit', 20, { jobTimeoutSec: 4 });
    const rt = join(work, 'rtG');
    const worker = startWorker(url, config, rt);
    try {
      await worker.waitForLine((l) => l['type'] === 'worker' && l['event'] === 'ready');
      // TTS through the queue: a Piper stand-in (English front end built in, no espeak-ng needed).
      const piper = join(work, 'model', 'en_US-test-medium.onnx');
      writeFileSync(piper, buildPiperModel({ multiSpeaker: false }));
      writeFileSync(`${piper}.json`, JSON.stringify(piperConfig({ multiSpeaker: false })));
      const speech = join(work, 'out4', 'hello.wav');
      const tts = stemkit(['--json', 'tts', 'Bye! Bye.', '-m', piper, '-o', speech, '--queue', url, '--wait']);
      expect(await tts.exited).toBe(0);
      expect(tts.lines.find((l) => l['type'] === 'result')).toMatchObject({ state: 'completed', kind: 'tts', result: { status: 'ok', outputs: { audio: speech } } });
      expect((await readWav(speech)).channels[0]!.length).toBeGreaterThan(0);

      // Long jobs: a 60 s track through 60 chained MatMuls per model call (~2 s each on an idle core), far beyond the 4 s limit.
      const slow = writeSlowModel(join(work, 'slow'), 60);
      const long = join(work, 'in', 'long.wav');
      writeSineWav(long, 60, 300);
      const submitLong = async (out: string, config: string[] = []): Promise<string> => {
        const p = stemkit([...config, '--json', 'separate', long, '--model', slow, '-o', join(work, out), '--queue', url]);
        expect(await p.exited).toBe(0);
        return String(p.lines.find((l) => l['type'] === 'job')!['id']);
      };
      const cancelled = await submitLong('out5');
      await worker.waitForLine((l) => l['type'] === 'job' && l['event'] === 'start' && l['id'] === cancelled);
      const cancel = stemkit(['--json', 'queue', '--queue', url, 'cancel', cancelled]);
      expect(await cancel.exited).toBe(0);
      expect(cancel.lines[0]).toMatchObject({ type: 'cancel', id: cancelled, outcome: 'cancelling (running)', ok: true });
      const c1 = await worker.waitForLine((l) => l['type'] === 'job' && l['event'] === 'failed' && l['id'] === cancelled);
      expect(c1).toMatchObject({ willRetry: false, error: { code: 'E_CANCELLED', exitCode: 130 } });
      expect(readdirSync(join(rt, 'slots'))).toEqual([]);

      const timedOut = await submitLong('out6', ['--config', shortLimit]);
      const t1 = await worker.waitForLine((l) => l['type'] === 'job' && l['event'] === 'failed' && l['id'] === timedOut);
      expect(t1).toMatchObject({ willRetry: false, error: { code: 'E_JOB_TIMEOUT', exitCode: 75 } });
      expect(readdirSync(join(rt, 'slots'))).toEqual([]);
      const c = await client(url);
      try {
        for (const id of [cancelled, timedOut]) {
          const job = await c.queue.getJob(id);
          expect(await job!.getState()).toBe('failed');
          expect(job!.attemptsMade).toBe(1);
        }
      } finally {
        await c.close();
      }
      // Neither left a stem behind: outputs appear only when complete.
      const stemsIn = (out: string): string[] => readdirSync(join(work, out, 'long')).filter((n) => n !== '.stemkit-outputs.json');
      for (const out of ['out5', 'out6']) expect(stemsIn(out)).toEqual([]);
      expect(jobEvents(worker, 'start').filter((l) => l['id'] === cancelled || l['id'] === timedOut)).toHaveLength(2);

      // SIGTERM mid-job: the worker waits --drain (5 s), then hands the job back to the queue, untried.
      const handed = await submitLong('out7');
      await worker.waitForLine((l) => l['type'] === 'job' && l['event'] === 'start' && l['id'] === handed);
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(143);
      expect(jobEvents(worker, 'handed-back').map((l) => l['id'])).toEqual([handed]);
      expect(readdirSync(join(rt, 'slots'))).toEqual([]);
      expect(stemsIn('out7')).toEqual([]);
      const c2 = await client(url);
      try {
        const job = await c2.queue.getJob(handed);
        expect(await job!.getState()).toBe('waiting');
        expect(job!.attemptsMade).toBe(0);
      } finally {
        await c2.close();
      }
    } finally {
      await stopAll([worker]);
      await redis.stop();
    }
  }, 200_000);
});
