import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { loadConfigFile, userConfigDir } from '../../src/config/load.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { runCli } from '../helpers/cli-run.js';
import { ConfigError } from '../../src/errors.js';

const dirs: string[] = [];
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'stemkit-load-'));
  dirs.push(dir);
  // A package.json marks the project root, where the upward search stops.
  if (!('package.json' in files)) writeFileSync(join(dir, 'package.json'), '{"name":"x"}');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('loadConfigFile', () => {
  it.each([
    ['.stemrc', 'maxCpuThreads: 3\n'],
    ['.stemrc', '{"maxCpuThreads": 3}'],
    ['.stemrc.json', '{"maxCpuThreads": 3}'],
    ['.stemrc.yaml', 'maxCpuThreads: 3\n'],
    ['stemkit.config.mjs', 'export default { maxCpuThreads: 3 };\n'],
    ['stemkit.config.cjs', 'module.exports = { maxCpuThreads: 3 };\n'],
  ])('finds %s', async (name, text) => {
    const dir = project({ [name]: text });
    const r = await loadConfigFile({ cwd: dir });
    expect(r.path).toBe(join(dir, name));
    expect(r.config).toEqual({ maxCpuThreads: 3 });
  });

  it('reads package.json#stemkit', async () => {
    const dir = project({ 'package.json': '{"name":"x","stemkit":{"device":"cpu"}}' });
    const r = await loadConfigFile({ cwd: dir });
    expect(r).toEqual({ path: join(dir, 'package.json'), config: { device: 'cpu' } });
  });

  it('searches upwards from a subdirectory to the project root', async () => {
    const dir = project({ '.stemrc.json': '{"device":"cpu"}', 'a/b/keep': '' });
    const r = await loadConfigFile({ cwd: join(dir, 'a', 'b') });
    expect(r.path).toBe(join(dir, '.stemrc.json'));
  });

  it('finds nothing in a project without a config', async () => {
    const dir = project({});
    expect(await loadConfigFile({ cwd: dir })).toEqual({ path: undefined, config: undefined });
  });

  it('--config loads exactly that file', async () => {
    const dir = project({ '.stemrc.json': '{"device":"cpu"}', 'other.yaml': 'device: cuda\n' });
    const r = await loadConfigFile({ cwd: dir, configPath: 'other.yaml' });
    expect(r).toEqual({ path: join(dir, 'other.yaml'), config: { device: 'cuda' } });
  });

  it('--config with a missing file is a config error naming it', async () => {
    const dir = project({});
    const err = await loadConfigFile({ cwd: dir, configPath: 'nope.json' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe('config file not found: nope.json');
    expect((err as ConfigError).exitCode).toBe(78);
  });

  it('a syntax error is a config error with the file path', async () => {
    const dir = project({ '.stemrc.json': '{"device": ' });
    const err = await loadConfigFile({ cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('E_CONFIG_PARSE');
    expect((err as ConfigError).message).toContain(join(dir, '.stemrc.json'));
  });

  it.each([
    ['.stemrc.yaml', 'device: [cpu\n  threads: 2\n', 'missed comma between flow collection entries (line 2, column 10)'],
    ['.stemrc', 'device: cpu\n  threads: 2\n', 'bad indentation of a mapping entry (line 2, column 10)'],
    ['.stemrc.json', '{\n  "device": "cpu",\n  "threads": 2,,\n}\n', 'Expected double-quoted property name in JSON (line 3, column 16)'],
    ['stemkit.config.mjs', 'export default {\n  device: "cpu"\n', 'SyntaxError: Unexpected end of input (line 3)'],
  ])('a syntax error in %s names the parser\'s reason, line and column', async (name, text, reason) => {
    const dir = project({ [name]: text });
    const err = await loadConfigFile({ cwd: dir }).catch((e: unknown) => e);
    expect((err as ConfigError).message).toBe(`cannot read config file ${join(dir, name)}: ${reason}`);
  });
});

describe('loadConfigFile --config with any extension', () => {
  it('reads an unknown extension as YAML', async () => {
    const dir = project({ 'my.conf': 'device: cpu\n' });
    expect(await loadConfigFile({ cwd: dir, configPath: 'my.conf' })).toEqual({ path: join(dir, 'my.conf'), config: { device: 'cpu' } });
  });
});

describe('the user-level config ($XDG_CONFIG_HOME/stemkit)', () => {
  it('is a layer below the project config, with its own source labels', async () => {
    const home = project({ '.config/stemkit/config.yaml': 'device: cpu\nmaxConcurrentTts: 1\nprofiles:\n  big: { maxCpuThreads: 12 }\n' });
    const proj = project({ '.stemrc.yaml': 'maxConcurrentTts: 2\n' });
    const r = await runCli(['config', '--json'], { cwd: proj, env: { HOME: home, NO_COLOR: '1' } });
    const rec = r.json()[0] as { config: Record<string, unknown>; sources: Record<string, string>; userConfigFile: string };
    expect(rec.userConfigFile).toBe(join(home, '.config/stemkit/config.yaml'));
    expect(rec.config['device']).toBe('cpu');
    expect(rec.sources['device']).toBe(join(home, '.config/stemkit/config.yaml'));
    // The project's value wins over the user's.
    expect(rec.config['maxConcurrentTts']).toBe(2);
    expect(rec.sources['maxConcurrentTts']).toBe(join(proj, '.stemrc.yaml'));
    // The user's profiles can be selected from any project.
    const big = await runCli(['config', '--json', '--profile', 'big'], { cwd: proj, env: { HOME: home, NO_COLOR: '1' }, cores: 16 });
    expect((big.json()[0] as { config: { cpuThreads: number } }).config.cpuThreads).toBe(11); // min(12, floor(16 × 0.7))
  });

  it('XDG_CONFIG_HOME moves it; a relative XDG_CONFIG_HOME is ignored (XDG spec)', async () => {
    const xdg = project({ 'stemkit/.stemrc.json': '{"device": "cpu"}' });
    const proj = project({});
    const moved = await runCli(['config', '--json'], { cwd: proj, env: { HOME: '/nonexistent', XDG_CONFIG_HOME: xdg } });
    expect((moved.json()[0] as { sources: Record<string, string> }).sources['device']).toBe(join(xdg, 'stemkit/.stemrc.json'));
    expect(userConfigDir({ XDG_CONFIG_HOME: 'rel/dir' }, '/h')).toBe('/h/.config/stemkit');
    expect(userConfigDir({}, undefined)).toBeUndefined();
  });

  it('a syntax error in it is reported like the project file', async () => {
    const home = project({ '.config/stemkit/config.yaml': 'device: [cpu\n' });
    const r = await runCli(['config'], { cwd: project({}), env: { HOME: home } });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(new RegExp(`^stemkit: cannot read config file ${join(home, '.config/stemkit/config.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unexpected end of the stream within a flow collection \\(line 2, column 1\\)\\n`));
  });
});

describe('without HOME', () => {
  it('the cache is never a literal "~" folder', () => {
    const { config, sources } = resolveConfig({ env: {}, flags: {}, cores: 2 });
    expect(config.cacheDir.startsWith('/')).toBe(true);
    expect(config.cacheDir).not.toContain('~');
    expect(sources['cacheDir']).toMatch(/^default/);
  });

  it('a real process with HOME unset resolves an absolute cache folder', () => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '../../bin/stemkit.js'), 'config', '--json'], {
      env: { PATH: process.env['PATH'] ?? '' },
      cwd: project({}),
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const cacheDir = (JSON.parse(r.stdout) as { config: { cacheDir: string } }).config.cacheDir;
    expect(cacheDir).toMatch(/^\/.*stemkit/);
    expect(cacheDir).not.toContain('~');
  });
});
