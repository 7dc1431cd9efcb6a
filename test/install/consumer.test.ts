/**
 * `npm install stemkit` in another project, with no network: the packed tarball is installed into a scratch
 * project offline (every dependency from the npm cache `npm ci` filled, pinned by a lockfile derived from
 * stemkit's own), and the main job runs from there through `npx stemkit`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/audio-fixtures.js';
import { sines, writeWav } from '../helpers/separate-fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  [k: string]: unknown;
}

describe('a consumer install of the packed tarball', () => {
  const tmp = makeTempDir('stemkit-consumer-');
  afterAll(() => tmp.cleanup());
  const npmCache = spawnSync('npm', ['config', 'get', 'cache'], { cwd: tmp.dir, encoding: 'utf8' }).stdout.trim();
  const env = {
    PATH: process.env['PATH'] ?? '',
    HOME: tmp.dir,
    npm_config_cache: npmCache,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    STEMKIT_CACHE_DIR: join(tmp.dir, 'stemkit-cache'),
    STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'),
  };

  it('installs offline with the CPU runtime and separates with the embedded model', async () => {
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.dir], { cwd: ROOT, env, encoding: 'utf8' });
    expect(pack.status, pack.stderr).toBe(0);
    const tarball = (JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    // No source maps pointing at sources the package does not ship.
    expect(tarball.files.filter((f) => f.path.endsWith('.map'))).toEqual([]);
    expect(tarball.files.map((f) => f.path)).toContain('LICENSE');

    const project = join(tmp.dir, 'project');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; engines: Record<string, string> };
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
    const spec = `file:../${tarball.filename}`;
    const packages: Record<string, unknown> = {
      '': { name: 'consumer', dependencies: { stemkit: spec } },
      'node_modules/stemkit': { version: pkg.version, resolved: spec, dependencies: pkg.dependencies, bin: { stemkit: 'bin/stemkit.js' }, engines: pkg.engines },
    };
    // stemkit's production dependencies, at the paths its own lockfile pins them to.
    for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && !entry.dev && !entry.link) packages[path] = entry;
    spawnSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, dependencies: { stemkit: spec } }));
    writeFileSync(join(project, 'package-lock.json'), JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages }));

    // The README's CPU install: ONNXRUNTIME_NODE_INSTALL=skip keeps onnxruntime-node's install script from
    // fetching the CUDA provider from NuGet. --offline: the npm cache only.
    const install = spawnSync('npm', ['ci', '--offline'], { cwd: project, env: { ...env, ONNXRUNTIME_NODE_INSTALL: 'skip' }, encoding: 'utf8', timeout: 180_000 });
    expect(install.status, install.stderr).toBe(0);
    const installed = readdirSync(join(project, 'node_modules'));
    expect(installed).toContain('onnxruntime-node');
    // Build-time and test-only packages stay out of a consumer's install.
    for (const dev of ['onnx-proto', 'protobufjs', 'wavefile', 'vitest', 'typescript']) expect(installed).not.toContain(dev);

    await writeWav(join(project, 'song.wav'), sines(44100, 44100, 2, [220, 660]), 16);
    const run = spawnSync('npx', ['stemkit', 'separate', 'song.wav', '--threads', '1'], { cwd: project, env, encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/npm warn/i);
    expect(run.stdout).toContain('1 file: 1 ok, 0 skipped, 0 failed');
    for (const stem of ['drums', 'bass', 'other', 'vocals']) expect(existsSync(join(project, 'separated', 'song', `${stem}.wav`))).toBe(true);
  });
});
