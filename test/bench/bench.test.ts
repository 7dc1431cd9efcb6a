import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBench, type BenchOptions, type BenchReport } from '../../src/bench/bench.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { parseTargets } from '../../src/cli/commands/bench-run.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { runCli } from '../helpers/cli-run.js';

const dir = mkdtempSync(join(tmpdir(), 'stemkit-bench-test-'));
const env = { HOME: dir, NO_COLOR: '1', STEMKIT_CACHE_DIR: join(dir, 'cache'), STEMKIT_RUNTIME_DIR: join(dir, 'run') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A short input keeps the suite fast; 4 s is still several classic-model blocks.
const SHORT = ['--seconds', '4', '--runs', '2', '--modes', '2,4', '--no-tts'];

let report: BenchReport;
let code: number;

beforeAll(async () => {
  const out = join(dir, 'report.json');
  // Targets that any machine meets: the test checks structure, not speed.
  const r = await runCli(['bench', ...SHORT, '--target', '2=1000:0', '--target', '4=1000:0', '--out', out], { env });
  code = r.code;
  report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
}, 300_000);

describe('stemkit bench with the classic model', () => {
  it('passes generous targets with exit 0 and reports every phase', () => {
    expect(code).toBe(0);
    expect(report.version).toBe(1);
    expect(report.input.seconds).toBeCloseTo(4, 6);
    // 4 s × 44100 × 2 channels × 2 bytes
    expect(report.input.wavMB).toBeCloseTo(0.7056, 6);
    expect(report.modes.map((m) => [m.mode, m.model, m.status])).toEqual([
      [2, 'classic', 'ok'],
      [4, 'classic', 'ok'],
    ]);
    expect(report.pass).toBe(true);
  });

  it('has consistent numbers: phases within totals, RTF = total / duration, MB/s = WAV MB / total', () => {
    for (const m of report.modes) {
      const cold = m.cold!;
      const warm = m.warm!;
      expect(warm.runs).toBe(2);
      expect(cold.load).toBeGreaterThan(0);
      // The phases are disjoint parts of the run; the remainder is bookkeeping (slots, planning, renames).
      expect(cold.load + cold.decode + cold.infer + cold.write).toBeLessThanOrEqual(cold.total + 1e-9);
      expect(warm.decode + warm.infer + warm.write).toBeLessThanOrEqual(warm.total + 1e-9);
      expect(warm.load).toBe(0);
      for (const p of [cold, warm]) {
        expect(p.rtf).toBeCloseTo(p.total / report.input.seconds, 9);
        expect(p.mbps).toBeCloseTo(report.input.wavMB / p.total, 9);
      }
      expect(m.provider).toBe('cpu');
      expect(m.threads).toBeGreaterThanOrEqual(1);
      expect(m.peakRssMiB).toBeGreaterThan(10);
      expect(m.checks.map((c) => [c.name, c.pass])).toEqual([
        ['total seconds', true],
        ['throughput MB/s', true],
      ]);
    }
  });

  it('exits 1 when a target fails, naming the check', async () => {
    const r = await runCli(['bench', '--seconds', '2', '--runs', '1', '--modes', '4', '--no-tts', '--target', '4=0.001'], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/4-stem: total seconds [0-9.]+ > 0\.00/);
  });

  it('fails a regression against a faster baseline and passes against itself', async () => {
    const faster = structuredClone(report);
    for (const m of faster.modes) {
      // A baseline 10× faster: the current run is a >10% regression on time and throughput.
      m.warm!.total /= 10;
      m.warm!.mbps *= 10;
    }
    const fasterFile = join(dir, 'faster.json');
    writeFileSync(fasterFile, JSON.stringify(faster));
    const args = ['bench', ...SHORT, '--runs', '1', '--modes', '4', '--target', '4=1000:0', '--json'];
    const worse = await runCli([...args, '--baseline', fasterFile], { env });
    expect(worse.code).toBe(1);
    const rep = worse.json().find((j) => j['type'] === 'bench') as unknown as BenchReport;
    const failed = rep.modes[0]!.checks.filter((c) => !c.pass).map((c) => c.name);
    expect(failed).toEqual(['total vs baseline', 'mbps vs baseline']);

    const slower = structuredClone(report);
    for (const m of slower.modes) {
      m.warm!.total *= 100;
      m.warm!.mbps /= 100;
    }
    const slowerFile = join(dir, 'slower.json');
    writeFileSync(slowerFile, JSON.stringify(slower));
    expect((await runCli([...args, '--baseline', slowerFile], { env })).code).toBe(0);
  });

  it('rejects bad flags with exit 64 and a missing baseline with 66', async () => {
    expect((await runCli(['bench', '--modes', '3'], { env })).code).toBe(64);
    expect((await runCli(['bench', '--target', '2=fast'], { env })).code).toBe(64);
    expect((await runCli(['bench', '--tolerance', 'lots'], { env })).code).toBe(64);
    expect((await runCli(['bench', '--baseline', join(dir, 'nope.json')], { env })).code).toBe(66);
  });
});

describe('targets per device, --runs 0, TTS without --pull', () => {
  const input = { config: undefined as never, modes: [4] as const, seconds: 2, runs: 1, ttsModel: false as const, targets: { '2': { maxSeconds: 0.001, minMBps: 1e6 }, '4': { maxSeconds: 0.001, minMBps: 1e6 }, '6': { maxSeconds: 0.001, minMBps: 1e6 } } };
  let config: BenchOptions['config'];
  beforeAll(() => {
    config = resolveConfig({ env: {}, flags: { device: 'cpu', threads: '1', cacheDir: join(dir, 'cache') }, cores: 2, homeDir: dir }).config;
  });

  it('on a CPU the built-in (GPU) targets are reported but do not fail the run; --targets seed or targets you set do', async () => {
    const reported = await runBench({ ...input, config });
    expect(reported.modes[0]!.targetsEnforced).toBe(false);
    expect(reported.modes[0]!.checks.map((c) => [c.name, c.pass, c.enforced])).toEqual([
      ['total seconds', false, false],
      ['throughput MB/s', false, false],
    ]);
    expect(reported.pass).toBe(true);
    // 0.001 s per 180 s track, for a 2 s input.
    expect(reported.modes[0]!.checks[0]!.limit).toBeCloseTo(0.001 / 90, 12);
    expect(reported.targets).toEqual({ policy: 'auto', scale: 2 / 180 });
    expect((await runBench({ ...input, config, targetPolicy: 'seed' })).pass).toBe(false);
    expect((await runBench({ ...input, config, targetsSet: true })).pass).toBe(false);
  });

  it('--runs 0 checks no target against the cold run, and says so', async () => {
    const r = await runCli(['bench', '--seconds', '2', '--runs', '0', '--modes', '4', '--no-tts', '--targets', 'seed', '--json'], { env });
    const rep = r.json().find((j) => j['type'] === 'bench') as unknown as BenchReport;
    expect(rep.modes[0]!.checks).toEqual([]);
    expect(rep.modes[0]!.cold!.total).toBeGreaterThan(0);
    expect(rep.targets!.note).toBe('targets are checked on warm runs; with --runs 0 only the cold run was timed, so they were not checked');
    expect(r.code).toBe(0);
  });

  it('--tts-model kokoro is not downloaded without --pull', async () => {
    const cache = join(dir, 'empty-cache');
    const r = await runCli(['bench', '--seconds', '1', '--runs', '0', '--modes', '4', '--tts-model', 'kokoro'], { env: { ...env, STEMKIT_CACHE_DIR: cache, STEMKIT_MODEL_MIRROR: 'http://127.0.0.1:9' } });
    expect(r.stdout).toContain('tts kokoro: kokoro is not installed (run `stemkit models pull kokoro`, or bench --pull)\n');
    expect(r.code).toBe(0);
    expect(existsSync(join(cache, 'kokoro'))).toBe(false);
  });
});

describe('target parsing', () => {
  it('overrides seconds and optionally MB/s, keeping the rest', () => {
    const t = parseTargets(['2=10', '6=40:0.5'], structuredClone(DEFAULTS.bench.targets) as never);
    expect(t).toEqual({ '2': { maxSeconds: 10, minMBps: 2 }, '4': { maxSeconds: 30, minMBps: 1 }, '6': { maxSeconds: 40, minMBps: 0.5 } });
  });
});
