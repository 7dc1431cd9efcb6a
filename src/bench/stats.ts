/**
 * Pure pass/fail logic of `stemkit bench`: targets and baseline regressions.
 */
import type { BenchTarget } from '../config/schema.js';

export function medianOf(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Check {
  name: string;
  /** Measured value. */
  value: number;
  /** The bound it was checked against. */
  limit: number;
  /** 'max': value must be ≤ limit; 'min': value must be ≥ limit. */
  kind: 'max' | 'min';
  pass: boolean;
  /**
   * Whether the check counts towards pass/fail. Targets are reported but not enforced where they were
   * not meant for the device (see BenchOptions.targetPolicy); baseline checks are always enforced.
   */
  enforced: boolean;
}

/** The track length the targets' `maxSeconds` are given for. */
export const TARGET_TRACK_SECONDS = 180;

/**
 * Checks a run against a target. `maxSeconds` is per track of TARGET_TRACK_SECONDS, so it is scaled to the
 * measured track's length (a 30 s quick check gets a sixth of it); MB/s does not depend on the length.
 */
export function checkTarget(totalSeconds: number, mbps: number, target: BenchTarget, trackSeconds: number = TARGET_TRACK_SECONDS, enforced = true): Check[] {
  const maxSeconds = (target.maxSeconds * trackSeconds) / TARGET_TRACK_SECONDS;
  return [
    { name: 'total seconds', value: totalSeconds, limit: maxSeconds, kind: 'max', pass: totalSeconds <= maxSeconds, enforced },
    { name: 'throughput MB/s', value: mbps, limit: target.minMBps, kind: 'min', pass: mbps >= target.minMBps, enforced },
  ];
}

/** Which direction is better for a metric compared against a baseline. */
export const METRIC_DIRECTION: Readonly<Record<string, 'lower' | 'higher'>> = {
  total: 'lower',
  infer: 'lower',
  rtf: 'lower',
  mbps: 'higher',
  sdr: 'higher',
};

/**
 * Fails a metric that is worse than the baseline by more than `tolerance` (a fraction, 0.1 = 10%).
 * For SDR (dB, can be ≤ 0) the tolerance is absolute: `tolerance × 10` dB (10% → 1 dB), since a
 * relative change of a log quantity near zero is meaningless.
 */
export function compareToBaseline(metric: string, value: number, baseline: number, tolerance: number): Check {
  const dir = METRIC_DIRECTION[metric.startsWith('sdr') ? 'sdr' : metric] ?? 'lower';
  if (metric.startsWith('sdr')) {
    const limit = baseline - tolerance * 10;
    return { name: `${metric} vs baseline`, value, limit, kind: 'min', pass: value >= limit, enforced: true };
  }
  if (dir === 'lower') {
    const limit = baseline * (1 + tolerance);
    return { name: `${metric} vs baseline`, value, limit, kind: 'max', pass: value <= limit, enforced: true };
  }
  const limit = baseline * (1 - tolerance);
  return { name: `${metric} vs baseline`, value, limit, kind: 'min', pass: value >= limit, enforced: true };
}
