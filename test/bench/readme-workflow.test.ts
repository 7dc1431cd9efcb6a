/**
 * The README's GitHub Actions bench workflow must pass as written on a 2-core CPU runner with the embedded
 * model: its bench step is taken from README.md and run by bash in a scratch project that has stemkit in
 * node_modules (as `npm ci` leaves it), with the `npx stemkit` it names.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../src/bench/bench.js';
import { makeTempDir } from '../helpers/audio-fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** The `run: |` step of the README's bench workflow that calls `stemkit bench`, as a shell script. */
function benchStep(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Bench in CI'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const lines = yaml.split('\n');
  const start = lines.findIndex((l, i) => /^\s*- run: \|$/.test(l) && lines.slice(i + 1, i + 5).some((n) => n.includes('stemkit bench')));
  expect(start).toBeGreaterThan(-1);
  const indent = /^(\s*)-/.exec(lines[start]!)![1]!.length + 2;
  const body: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.trim() !== '' && l.length - l.trimStart().length < indent + 2) break;
    body.push(l.slice(indent + 2));
  }
  return body.join('\n');
}

describe("the README's bench workflow", () => {
  const tmp = makeTempDir('stemkit-readme-bench-');
  afterAll(() => tmp.cleanup());

  it('passes on this 2-core CPU with the embedded model, against a baseline from main', () => {
    const script = benchStep();
    expect(script).toContain('npx stemkit bench $args');
    const project = join(tmp.dir, 'project');
    mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(project, 'package.json'), '{"name":"ci-project","private":true}\n');
    symlinkSync(ROOT, join(project, 'node_modules', 'stemkit'));
    symlinkSync('../stemkit/bin/stemkit.js', join(project, 'node_modules', '.bin', 'stemkit'));
    // The baseline a previous run on main left: a much slower machine, so only the workflow itself is tested.
    const baseline = {
      version: 1,
      modes: [4].map((mode) => ({ mode, model: 'classic', status: 'ok', warm: { total: 1e6, mbps: 1e-6 }, cold: { total: 1e6, mbps: 1e-6 }, checks: [], pass: true })),
    };
    writeFileSync(join(project, 'bench-baseline.json'), JSON.stringify(baseline));
    const r = spawnSync('bash', ['-e', '-c', script], {
      cwd: project,
      env: {
        PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
        HOME: tmp.dir,
        CI: 'true',
        STEMKIT_CACHE_DIR: join(tmp.dir, 'cache'),
        STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'),
        npm_config_cache: join(tmp.dir, 'npm-cache'),
        npm_config_offline: 'true',
      },
      encoding: 'utf8',
      timeout: 240_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).not.toMatch(/npm warn/i);
    const report = JSON.parse(readFileSync(join(project, 'bench.json'), 'utf8')) as BenchReport;
    expect(report.modes.map((m) => [m.mode, m.model, m.status, m.provider, m.pass])).toEqual([[4, 'classic', 'ok', 'cpu', true]]);
    expect(report.baseline).toEqual({ file: 'bench-baseline.json', tolerance: 0.25 });
    expect(report.config.profile).toBe('small');
    expect(report.input.seconds).toBe(10);
    expect(report.runs).toBe(3);
    expect(report.modes.every((m) => m.checks.some((c) => c.name === 'total vs baseline' && c.pass))).toBe(true);
  });
});
