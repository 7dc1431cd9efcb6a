import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BusyError, InterruptedError, StemkitError } from '../../src/errors.js';
import type { LogEvent, ProgressEvent } from '../../src/progress.js';
import { acquireSlots, isProcessAlive, poolsForJob, processIdentity, readPools, resolveRuntimeDir, withSlots, type SlotLease } from '../../src/jobs/semaphore.js';
import { assertBuilt, deadPid, maxOverlap, spawnHolder } from '../helpers/jobs-procs.js';

const limits = (heavy: number, tts = 1, video = 1) => ({
  maxConcurrentHeavyTasks: heavy,
  maxConcurrentTts: tts,
  maxConcurrentVideo: video,
  runtimeDir: undefined,
});

let dir: string;
const leases: SlotLease[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stemkit-jobs-'));
});
afterEach(async () => {
  for (const l of leases.splice(0)) await l.release();
  await rm(dir, { recursive: true, force: true });
});

async function take(heavy: number, extra: Partial<Parameters<typeof acquireSlots>[0]> = {}): Promise<SlotLease> {
  const lease = await acquireSlots({ pools: ['heavy'], config: limits(heavy), wait: false, runtimeDir: dir, pollMs: 20, ...extra });
  leases.push(lease);
  return lease;
}

function slotFiles(): string[] {
  return readdirSync(join(dir, 'slots')).filter((n) => n.endsWith('.slot')).sort();
}

describe('resolveRuntimeDir', () => {
  it('prefers the option, then config, then STEMKIT_RUNTIME_DIR, then XDG_RUNTIME_DIR/stemkit, then tmp', () => {
    const cfg = { runtimeDir: undefined };
    expect(resolveRuntimeDir({ runtimeDir: '/c' }, '/o', {})).toBe('/o');
    expect(resolveRuntimeDir({ runtimeDir: '/c' }, undefined, { STEMKIT_RUNTIME_DIR: '/e' })).toBe('/c');
    expect(resolveRuntimeDir(cfg, undefined, { STEMKIT_RUNTIME_DIR: '/e', XDG_RUNTIME_DIR: '/x' })).toBe('/e');
    expect(resolveRuntimeDir(cfg, undefined, { XDG_RUNTIME_DIR: '/x' })).toBe(join('/x', 'stemkit'));
    expect(resolveRuntimeDir(cfg, undefined, {})).toBe(join(tmpdir(), `stemkit-${process.getuid!()}`));
  });
});

describe('acquireSlots in one process', () => {
  it('hands out slots up to the limit, then BusyError 75 with the exact message, and frees on release', async () => {
    const a = await take(2);
    const b = await take(2);
    expect([a.slots[0]!.index, b.slots[0]!.index]).toEqual([0, 1]);
    const err = await take(2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusyError);
    expect((err as BusyError).exitCode).toBe(75);
    expect((err as BusyError).code).toBe('E_BUSY');
    expect((err as BusyError).message).toBe('busy: 2/2 heavy jobs running; retry later');
    expect((err as BusyError).details).toEqual({ pool: 'heavy', used: 2, limit: 2 });

    await a.release();
    await a.release(); // idempotent
    expect(slotFiles()).toEqual(['heavy-1.slot']);
    const c = await take(2);
    expect(c.slots[0]!.index).toBe(0);
  });

  it('records pid, time and command in the slot file and readPools reports holders', async () => {
    const before = Date.now();
    await take(3, { command: 'separate song.wav' });
    const rec = JSON.parse(readFileSync(join(dir, 'slots', 'heavy-0.slot'), 'utf8')) as Record<string, unknown>;
    expect(rec['pid']).toBe(process.pid);
    expect(rec['command']).toBe('separate song.wav');
    expect(rec['since']).toBeGreaterThanOrEqual(before);
    const pools = await readPools(limits(3), dir);
    expect(pools.map((p) => [p.pool, p.limit, p.used, p.stale])).toEqual([
      ['heavy', 3, 1, 0],
      ['tts', 1, 0, 0],
      ['video', 1, 0, 0],
    ]);
    expect(pools[0]!.holders).toEqual([
      { pool: 'heavy', index: 0, pid: process.pid, since: new Date(rec['since'] as number).toISOString(), command: 'separate song.wav', host: rec['host'] },
    ]);
  });

  it('logs exact take and release times at debug level', async () => {
    const logs: LogEvent[] = [];
    const lease = await take(2, { onLog: (e) => logs.push(e), file: 'a.wav' });
    const between = Date.now();
    await lease.release();
    expect(logs.map((l) => [l.level, l.file])).toEqual([['debug', 'a.wav'], ['debug', 'a.wav']]);
    const took = /^took slot heavy-0 at (\S+Z) \(waited \d+\.\d\d s\)$/.exec(logs[0]!.message);
    const rel = /^releasing slot heavy-0 at (\S+Z)$/.exec(logs[1]!.message);
    expect(Date.parse(took![1]!)).toBe(lease.acquiredAt);
    expect(Date.parse(rel![1]!)).toBeGreaterThanOrEqual(between);
  });

  it('takes several pools all or nothing', async () => {
    const cfg = limits(2, 1, 1);
    const video = await acquireSlots({ pools: ['video'], config: cfg, wait: false, runtimeDir: dir });
    leases.push(video);
    const err = await acquireSlots({ pools: ['video', 'heavy'], config: cfg, wait: false, runtimeDir: dir }).catch((e: unknown) => e);
    expect((err as BusyError).message).toBe('busy: 1/1 video jobs running; retry later');
    // The heavy slot taken before video was found full must have been given back.
    expect(slotFiles()).toEqual(['video-0.slot']);
    await video.release();
    const both = await acquireSlots({ pools: ['video', 'heavy', 'heavy'], config: cfg, wait: false, runtimeDir: dir });
    leases.push(both);
    // Fixed acquisition order heavy < tts < video, duplicates ignored.
    expect(both.slots.map((s) => `${s.pool}-${s.index}`)).toEqual(['heavy-0', 'video-0']);
  });

  it('waits with a log line and a wait progress event, then times out with BusyError 75', async () => {
    await take(1);
    const logs: LogEvent[] = [];
    const progress: ProgressEvent[] = [];
    const err = await acquireSlots({
      pools: ['heavy'], config: limits(1), wait: true, timeoutSec: 0.3, runtimeDir: dir, pollMs: 20,
      onLog: (e) => logs.push(e), onProgress: (e) => progress.push(e),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusyError);
    expect((err as BusyError).exitCode).toBe(75);
    expect((err as BusyError).code).toBe('E_BUSY_TIMEOUT');
    expect((err as BusyError).message).toBe('busy: still 1/1 heavy jobs running after waiting 0.3 s; retry later');
    expect(logs).toEqual([{ level: 'info', message: 'waiting for a free slot (1/1 heavy jobs running)' }]);
    expect(progress[0]).toEqual({ stage: 'wait', status: 'start', done: 0, total: 1, message: 'waiting for a free slot (1/1 heavy jobs running)' });
  });

  it('stops waiting with InterruptedError (130) when the signal aborts', async () => {
    await take(1);
    const ac = new AbortController();
    const p = acquireSlots({ pools: ['heavy'], config: limits(1), wait: true, runtimeDir: dir, pollMs: 20, signal: ac.signal,
      onLog: () => ac.abort() });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as StemkitError).exitCode).toBe(130);
    expect(slotFiles()).toEqual(['heavy-0.slot']);
  });

  it('withSlots holds the slots exactly while fn runs, also when fn throws', async () => {
    const opts = { pools: poolsForJob({ video: true }), config: limits(2), wait: false, runtimeDir: dir };
    expect(opts.pools).toEqual(['heavy', 'video']);
    expect(poolsForJob({ tts: true })).toEqual(['heavy', 'tts']);
    const seen = await withSlots(opts, async (lease) => {
      expect(lease.waitedSec).toBeGreaterThanOrEqual(0);
      return slotFiles();
    });
    expect(seen).toEqual(['heavy-0.slot', 'video-0.slot']);
    expect(slotFiles()).toEqual([]);
    await expect(withSlots(opts, async () => { throw new Error('job failed'); })).rejects.toThrow('job failed');
    expect(slotFiles()).toEqual([]);
  });

  it('reports an unusable runtime directory as OutputError 73', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const err = await acquireSlots({ pools: ['heavy'], config: limits(1), wait: false, runtimeDir: file }).catch((e: unknown) => e);
    expect((err as StemkitError).exitCode).toBe(73);
    expect((err as StemkitError).code).toBe('E_RUNTIME_DIR');
  });

  it('rejects a pool limit below 1 with ConfigError 78', async () => {
    const err = await take(0).catch((e: unknown) => e);
    expect((err as StemkitError).exitCode).toBe(78);
  });
});

describe('stale slots', () => {
  it('reclaims a slot whose holder pid is dead', async () => {
    const pid = await deadPid();
    await take(1); // creates the dir
    await leases.pop()!.release();
    writeFileSync(join(dir, 'slots', 'heavy-0.slot'), JSON.stringify({ v: 1, pool: 'heavy', index: 0, pid, proc: '', since: 1, command: 'gone', host: 'h', token: 'deadbeef' }));
    const pools = await readPools(limits(1), dir);
    expect([pools[0]!.used, pools[0]!.stale]).toEqual([0, 1]);
    const lease = await take(1);
    expect(lease.slots[0]!.index).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'slots', 'heavy-0.slot'), 'utf8')).pid).toBe(process.pid);
  });

  it.skipIf(process.platform !== 'linux')('guards against pid reuse: a live pid with another start time is stale', async () => {
    expect(processIdentity(process.pid)).toMatch(/^[0-9a-f-]+:\d+$/);
    // The parent process is alive; only its recorded start identity differs.
    const live = process.ppid;
    const real = processIdentity(live);
    expect(isProcessAlive(live, real)).toBe(true);
    const [boot, start] = real.split(':');
    const reused = `${boot}:${Number(start) + 12345}`;
    expect(isProcessAlive(live, reused)).toBe(false);

    await take(1);
    await leases.pop()!.release();
    const slot = join(dir, 'slots', 'heavy-0.slot');
    writeFileSync(slot, JSON.stringify({ v: 1, pool: 'heavy', index: 0, pid: live, proc: real, since: 1, command: 'alive', host: 'h', token: 'aaaa' }));
    const err = await take(1).catch((e: unknown) => e);
    expect((err as BusyError).message).toBe('busy: 1/1 heavy jobs running; retry later');
    writeFileSync(slot, JSON.stringify({ v: 1, pool: 'heavy', index: 0, pid: live, proc: reused, since: 1, command: 'reused', host: 'h', token: 'bbbb' }));
    const lease = await take(1);
    expect(lease.slots[0]!.index).toBe(0);
  });
});

describe('real processes on one runtime dir', () => {
  beforeAll(() => assertBuilt('src/jobs/semaphore.ts', 'dist/jobs/semaphore.js'));

  it('never lets more than the limit hold at once, and every waiting process finishes', async () => {
    const procs = Array.from({ length: 6 }, (_, i) => spawnHolder({ runtimeDir: dir, limits: { heavy: 2 }, holdMs: 1500, tag: String(i) }));
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
    const intervals = procs.map((p) => {
      const a = p.lines.find((l) => l.event === 'acquired')!;
      const r = p.lines.find((l) => l.event === 'released')!;
      return [a.t!, r.t!] as const;
    });
    expect(maxOverlap(intervals)).toBeLessThanOrEqual(2);
    // Six jobs, two at a time: at least four had to wait, and said so. Each holds 1.5 s, longer than a Node start on
    // a loaded 2-core machine, so the later ones are sure to find both slots taken (400 ms flaked under load).
    const waited = procs.filter((p) => p.lines.some((l) => l.event === 'waiting' && l['message'] === 'waiting for a free slot (2/2 heavy jobs running)'));
    expect(waited.length).toBeGreaterThanOrEqual(4);
    expect(slotFiles()).toEqual([]);
  });

  it('a non-waiting process exits 75 with the busy message while the pool is full', async () => {
    const holders = [0, 1].map(() => spawnHolder({ runtimeDir: dir, limits: { heavy: 2 }, end: 'hang' }));
    await Promise.all(holders.map((h) => h.waitFor('acquired')));
    const busy = spawnHolder({ runtimeDir: dir, limits: { heavy: 2 }, wait: false });
    expect(await busy.exited).toBe(75);
    expect(busy.lines.at(-1)).toMatchObject({ event: 'error', code: 'E_BUSY', exitCode: 75, message: 'busy: 2/2 heavy jobs running; retry later' });
    for (const h of holders) h.child.kill('SIGKILL');
    await Promise.all(holders.map((h) => h.exited));
  });

  it('reclaims the slot of a process killed with SIGKILL', async () => {
    const victim = spawnHolder({ runtimeDir: dir, limits: { heavy: 1 }, end: 'hang' });
    await victim.waitFor('acquired');
    expect(slotFiles()).toEqual(['heavy-0.slot']);
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBe('SIGKILL');
    // The dead holder's file is still there; nobody cleaned up by hand.
    expect(slotFiles()).toEqual(['heavy-0.slot']);
    const next = spawnHolder({ runtimeDir: dir, limits: { heavy: 1 }, wait: false, holdMs: 10 });
    expect(await next.exited).toBe(0);
    expect(next.lines.find((l) => l.event === 'acquired')).toMatchObject({ slots: ['heavy-0'] });
  });

  it('many processes racing to reclaim one stale slot still respect the limit', async () => {
    const pid = await deadPid();
    await take(1);
    await leases.pop()!.release();
    writeFileSync(join(dir, 'slots', 'heavy-0.slot'), JSON.stringify({ v: 1, pool: 'heavy', index: 0, pid, proc: '', since: 1, command: 'gone', host: 'h', token: 'cafe' }));
    const procs = Array.from({ length: 5 }, () => spawnHolder({ runtimeDir: dir, limits: { heavy: 1 }, holdMs: 150 }));
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0, 0, 0]);
    const intervals = procs.map((p) => [p.lines.find((l) => l.event === 'acquired')!.t!, p.lines.find((l) => l.event === 'released')!.t!] as const);
    expect(maxOverlap(intervals)).toBe(1);
    expect(readdirSync(join(dir, 'slots'))).toEqual([]);
  });

  it('the exit handler removes the slot files of a process that exits without releasing', async () => {
    const p = spawnHolder({ runtimeDir: dir, limits: { heavy: 1 }, holdMs: 10, end: 'exit' });
    expect(await p.exited).toBe(0);
    expect(p.lines.some((l) => l.event === 'acquired')).toBe(true);
    expect(slotFiles()).toEqual([]);
  });

  it('a waiting process gives up after its timeout with exit 75', async () => {
    const holder = spawnHolder({ runtimeDir: dir, limits: { heavy: 1 }, end: 'hang' });
    await holder.waitFor('acquired');
    const waiter = spawnHolder({ runtimeDir: dir, limits: { heavy: 1 }, timeoutSec: 0.3 });
    expect(await waiter.exited).toBe(75);
    expect(waiter.lines.at(-1)).toMatchObject({ event: 'error', code: 'E_BUSY_TIMEOUT', exitCode: 75 });
    holder.child.kill('SIGKILL');
    await holder.exited;
  });
});
