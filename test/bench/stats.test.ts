import { describe, expect, it } from 'vitest';
import { benchSignalBlock, wavBytes } from '../../src/bench/signal.js';
import { checkTarget, compareToBaseline, medianOf } from '../../src/bench/stats.js';

describe('bench signal', () => {
  it('is deterministic and identical whether generated in one block or many', () => {
    const whole = benchSignalBlock(0, 44100, 44100);
    const a = benchSignalBlock(0, 20000, 44100);
    const b = benchSignalBlock(20000, 24100, 44100);
    for (let c = 0; c < 2; c++) {
      expect(Array.from(a.channels[c]!)).toEqual(Array.from(whole.channels[c]!.subarray(0, 20000)));
      expect(Array.from(b.channels[c]!)).toEqual(Array.from(whole.channels[c]!.subarray(20000)));
    }
  });

  it('stays inside full scale and is stereo with distinct channels', () => {
    const s = benchSignalBlock(0, 44100 * 8, 44100);
    let peak = 0;
    let diff = 0;
    for (let i = 0; i < s.channels[0]!.length; i++) {
      peak = Math.max(peak, Math.abs(s.channels[0]![i]!), Math.abs(s.channels[1]![i]!));
      diff += Math.abs(s.channels[0]![i]! - s.channels[1]![i]!);
    }
    expect(peak).toBeLessThan(1);
    expect(peak).toBeGreaterThan(0.3);
    expect(diff).toBeGreaterThan(0);
  });

  it('counts MB of 16-bit WAV data', () => {
    expect(wavBytes(44100 * 180, 2)).toBe(31_752_000);
  });
});

describe('bench pass/fail', () => {
  it('median', () => {
    expect(medianOf([3, 1, 2])).toBe(2);
    expect(medianOf([4, 1, 2, 3])).toBe(2.5);
  });

  it('targets: time is an upper bound and throughput a lower bound', () => {
    const [t, m] = checkTarget(14.9, 2.1, { maxSeconds: 15, minMBps: 2 });
    expect(t!.pass).toBe(true);
    expect(m!.pass).toBe(true);
    const [t2, m2] = checkTarget(15.1, 1.9, { maxSeconds: 15, minMBps: 2 });
    expect(t2!.pass).toBe(false);
    expect(m2!.pass).toBe(false);
  });

  it('targets: seconds are per 180 s track and scale with the input length; MB/s does not', () => {
    expect(checkTarget(4.9, 1, { maxSeconds: 30, minMBps: 1 }, 30)).toEqual([
      { name: 'total seconds', value: 4.9, limit: 5, kind: 'max', pass: true, enforced: true },
      { name: 'throughput MB/s', value: 1, limit: 1, kind: 'min', pass: true, enforced: true },
    ]);
    expect(checkTarget(5.1, 1, { maxSeconds: 30, minMBps: 1 }, 30, false)[0]).toEqual({ name: 'total seconds', value: 5.1, limit: 5, kind: 'max', pass: false, enforced: false });
    expect(checkTarget(59, 1, { maxSeconds: 30, minMBps: 1 }, 360)[0]!.limit).toBe(60);
  });

  it('baseline: 10% tolerance on times and throughput, 1 dB on SDR', () => {
    expect(compareToBaseline('total', 10.9, 10, 0.1).pass).toBe(true);
    expect(compareToBaseline('total', 11.1, 10, 0.1).pass).toBe(false);
    expect(compareToBaseline('mbps', 1.81, 2, 0.1).pass).toBe(true);
    expect(compareToBaseline('mbps', 1.79, 2, 0.1).pass).toBe(false);
    expect(compareToBaseline('sdr:vocals', 5.1, 6, 0.1).pass).toBe(true);
    expect(compareToBaseline('sdr:vocals', 4.9, 6, 0.1).pass).toBe(false);
  });
});
