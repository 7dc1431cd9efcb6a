import { describe, expect, it } from 'vitest';
import { InterruptedError, UsageError } from '../../src/errors.js';
import { batchWorkers, runBounded, summarizeBatch, threadsPerWorker } from '../../src/jobs/batch.js';
import { Command } from 'commander';
import { addJobOptions, jobOptionsFrom } from '../../src/cli/job-options.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('runBounded', () => {
  it('keeps at most `limit` calls in flight and returns results in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const items = [5, 1, 4, 2, 3, 0, 6];
    const out = await runBounded(items, 3, async (x, i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      // Finish in an order unrelated to the input order.
      for (let k = 0; k < x; k++) await tick();
      inFlight--;
      return `${i}:${x}`;
    });
    expect(out).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3', '5:0', '6:6']);
    expect(peak).toBe(3);
  });

  it('handles an empty list and a limit above the item count', async () => {
    expect(await runBounded([], 4, async () => 1)).toEqual([]);
    expect(await runBounded([1, 2], 8, async (x) => x * 2)).toEqual([2, 4]);
  });

  it('starts nothing new after an abort, waits for running calls, then throws InterruptedError', async () => {
    const ac = new AbortController();
    const started: number[] = [];
    let finished = 0;
    const p = runBounded([0, 1, 2, 3, 4, 5], 2, async (x) => {
      started.push(x);
      if (x === 1) ac.abort();
      for (let k = 0; k < 3; k++) await tick();
      finished++;
      return x;
    }, ac.signal);
    await expect(p).rejects.toBeInstanceOf(InterruptedError);
    expect(started).toEqual([0, 1]);
    expect(finished).toBe(2);
  });

  it('stops starting new items after a failure and rethrows it', async () => {
    const started: number[] = [];
    const p = runBounded([0, 1, 2, 3], 1, async (x) => {
      started.push(x);
      if (x === 1) throw new Error('boom');
      return x;
    });
    await expect(p).rejects.toThrow('boom');
    expect(started).toEqual([0, 1]);
  });
});

describe('threadsPerWorker / batchWorkers', () => {
  it.each([
    [4, 1, 4],
    [4, 2, 2],
    [4, 3, 1],
    [6, 4, 1],
    [2, 3, 1],
    [8, 3, 2],
    [1, 0, 1],
  ])('threadsPerWorker(%i, %i) = %i', (cpu, workers, expected) => {
    expect(threadsPerWorker(cpu, workers)).toBe(expected);
  });

  const small = { maxConcurrentHeavyTasks: 2, maxConcurrentTts: 1, maxConcurrentVideo: 1 };
  it('uses the tightest pool limit and never more workers than files', () => {
    expect(batchWorkers(small, 10)).toBe(2);
    expect(batchWorkers(small, 1)).toBe(1);
    expect(batchWorkers(small, 10, ['heavy', 'tts'])).toBe(1);
    expect(batchWorkers({ ...small, maxConcurrentHeavyTasks: 4, maxConcurrentVideo: 2 }, 10, ['heavy', 'video'])).toBe(2);
    expect(batchWorkers(small, 0)).toBe(1);
  });
});

describe('summarizeBatch', () => {
  it('counts statuses and computes RTFs from successes only', () => {
    const s = summarizeBatch(
      [
        { status: 'ok', durationSec: 10, times: { total: 2 } },
        { status: 'ok', durationSec: 30, times: { total: 12 } },
        { status: 'skipped', durationSec: 99, times: { total: 0 } },
        { status: 'failed', durationSec: 5, times: { total: 1 } },
      ],
      15.5,
    );
    expect(s).toEqual({ files: 4, ok: 2, failed: 1, skipped: 1, wallSec: 15.5, audioSec: 40, computeSec: 14, rtf: 14 / 40, maxRtf: 12 / 30 });
  });

  it('has null RTFs when nothing was processed', () => {
    expect(summarizeBatch([{ status: 'skipped', durationSec: 3, times: { total: 0 } }], 0.1)).toMatchObject({ ok: 0, skipped: 1, rtf: null, maxRtf: null });
  });
});

describe('addJobOptions + jobOptionsFrom', () => {
  const parse = (argv: string[]) => {
    const cmd = addJobOptions(new Command('separate').exitOverride().argument('[files...]'));
    cmd.parse(argv, { from: 'user' });
    return jobOptionsFrom(cmd.opts());
  };
  it('parses the flags from a real command line', () => {
    expect(parse(['a.wav'])).toEqual({ wait: true });
    expect(parse(['--no-wait', 'a.wav'])).toEqual({ wait: false });
    expect(parse(['--wait-timeout', '30', 'a.wav'])).toEqual({ wait: true, timeoutSec: 30 });
  });


  it('maps --no-wait and --wait-timeout', () => {
    expect(jobOptionsFrom({})).toEqual({ wait: true });
    expect(jobOptionsFrom({ wait: true })).toEqual({ wait: true });
    expect(jobOptionsFrom({ wait: false })).toEqual({ wait: false });
    expect(jobOptionsFrom({ waitTimeout: '90' })).toEqual({ wait: true, timeoutSec: 90 });
    expect(jobOptionsFrom({ waitTimeout: '0.5', wait: false })).toEqual({ wait: false, timeoutSec: 0.5 });
  });

  it.each(['', 'soon', '-1', 'NaN'])('rejects --wait-timeout %j with UsageError 64', (v) => {
    const err = (() => {
      try {
        jobOptionsFrom({ waitTimeout: v });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(64);
  });
});
