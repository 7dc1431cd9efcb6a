import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-run.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

function projectWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'stemkit-main-'));
  writeFileSync(join(dir, 'package.json'), '{"name":"t"}');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('stemkit help and version', () => {
  it('--help lists every command and the global options, exit 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: stemkit [options] [command]');
    for (const c of ['separate', 'tts', 'bench', 'models', 'eval', 'status', 'config', 'doctor']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    for (const o of ['--profile <name>', '--config <file>', '--device <device>', '--threads <n>', '--json', '--quiet', '--verbose', '--no-color', '--version']) {
      expect(r.stdout).toContain(o);
    }
    expect(r.stderr).toBe('');
  });

  it('a subcommand --help shows the global options too', async () => {
    const r = await runCli(['config', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: stemkit config');
    expect(r.stdout).toContain('Global Options:');
  });

  it('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('no command is a usage error (64) with the help on stderr', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('Usage: stemkit');
    expect(r.stderr).toContain('stemkit: no command given');
  });
});

describe('usage errors', () => {
  it('unknown command → 64 with a suggestion', async () => {
    const r = await runCli(['sepratae', 'x.wav']);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("stemkit: unknown command 'sepratae'\nhint: did you mean separate? Run `stemkit --help` for the commands and options.\n");
    expect(r.stdout).toBe('');
  });

  it('unknown option → 64 with a suggestion, global options included', async () => {
    const r = await runCli(['config', '--jsn']);
    expect(r.code).toBe(64);
    expect(r.stderr.split('\n')[0]).toBe("stemkit: unknown option '--jsn'");
    expect(r.stderr).toContain('hint: did you mean --json?');
  });

  it('a usage error inside a command points at that command\'s help', async () => {
    const r = await runCli(['config', 'extra']);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("stemkit: too many arguments for 'config'. Expected 0 arguments but got 1.\nhint: Run `stemkit config --help` for its arguments and options.\n");
  });

  it('nested commands: an unknown or missing subcommand points at the parent command\'s help', async () => {
    const typo = await runCli(['models', 'lst']);
    expect(typo.code).toBe(64);
    expect(typo.stderr).toBe("stemkit: unknown command 'lst'\nhint: did you mean list? Run `stemkit models --help` for its commands.\n");
    const none = await runCli(['models']);
    expect(none.code).toBe(64);
    expect(none.stderr).toContain("stemkit: no command given for 'models'\nhint: Run `stemkit models --help` for its commands.\n");
  });

  it('an invalid --device is a config problem (78), reported together with the others', async () => {
    const r = await runCli(['config', '--device', 'gpu', '--threads', '0']);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('  - device = "gpu" (from flag --device): expected one of: auto, cpu, cuda, webgpu\n');
    expect(r.stderr).toContain('  - threads = 0 (from flag --threads): expected an integer >= 1\n');
  });

  it('--json adds one JSON error record on stdout', async () => {
    const r = await runCli(['--json', 'sepratae']);
    expect(r.code).toBe(64);
    expect(r.json()).toEqual([
      {
        type: 'error',
        code: 'E_UNKNOWN_COMMAND',
        exitCode: 64,
        message: "unknown command 'sepratae'",
        hint: 'did you mean separate? Run `stemkit --help` for the commands and options.',
      },
    ]);
  });
});

describe('stemkit config', () => {
  it('prints every value with its source and the CPU line', async () => {
    const r = await runCli(['config'], { cores: 2 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('CPU: 2 cores available, using 1 thread (auto, not a terminal: profile medium, limit: 4, usage limit 0.7)\n');
    expect(r.stdout).toMatch(/^threadsPolicy\s+auto-server\s+computed \(not a terminal, no CPU limit set\)$/m);
    expect(r.stdout).toMatch(/^maxCpuThreads\s+4\s+default \(profile medium\)$/m);
    expect(r.stdout).toMatch(/^cacheDir\s+\/home\/test\/\.cache\/stemkit\s+default$/m);
    expect(r.stdout).toMatch(/^gpu\.memoryFraction\s+0\.9\s+default$/m);
    expect(r.stdout).toContain('config file: (none found)');
  });

  it.each([
    { cores: 1, args: [], line: 'CPU: 1 core available, using 1 thread (auto, not a terminal: profile medium, limit: 4, usage limit 0.7)' },
    { cores: 2, args: [], interactive: true, line: 'CPU: 2 cores available, using 2 threads (auto: all cores at a terminal; --profile or --threads to cap)' },
    { cores: 16, args: [], interactive: true, line: 'CPU: 16 cores available, using 16 threads (auto: all cores at a terminal; --profile or --threads to cap)' },
    { cores: 16, args: [], interactive: true, env: { CI: 'true' }, line: 'CPU: 16 cores available, using 4 threads (auto, not a terminal: profile medium, limit: 4, usage limit 0.7)' },
    { cores: 16, args: [], interactive: true, env: { MAX_CPU_THREADS: '8' }, line: 'CPU: 16 cores available, using 8 threads (limit: 8, usage limit 0.7)' },
    { cores: 16, args: ['--profile', 'medium'], interactive: true, line: 'CPU: 16 cores available, using 4 threads (limit: 4, usage limit 0.7)' },
    { cores: 16, args: ['--profile', 'large'], line: 'CPU: 16 cores available, using 6 threads (limit: 6, usage limit 0.8)' },
    { cores: 16, args: ['--profile', 'small'], line: 'CPU: 16 cores available, using 2 threads (limit: 2, usage limit 0.5)' },
  ])('CPU line on $cores cores $args interactive=$interactive $env', async ({ cores, args, line, interactive, env }) => {
    const r = await runCli(['config', ...args], { cores, interactive: interactive ?? false, env: { HOME: '/home/test', NO_COLOR: '1', ...env } });
    expect(r.stdout).toContain(`${line}\n`);
  });

  it('an explicit --threads says so in the CPU line', async () => {
    const r = await runCli(['config', '--threads', '3'], { cores: 4 });
    expect(r.stdout).toContain('CPU: 4 cores available, using 3 threads (set explicitly; profile limit: 4, usage limit 0.7)\n');
  });

  // 10000 threads hung ORT's pool start-up and 1e20 was blamed on the model file: more threads than cores only
  // oversubscribe them, so the value is capped with a warning (before anything loads).
  for (const value of ['10000', '1e20', '3']) {
    it(`--threads ${value} on 2 cores is capped at 2 with a warning`, async () => {
      const r = await runCli(['config', '--json', '--threads', value], { cores: 2 });
      expect(r.code).toBe(0);
      expect(r.json()[0]).toMatchObject({ config: { cpuThreads: 2, threads: 2 } });
      expect(r.stderr).toContain(`threads = ${Number(value)} (from flag --threads) is more than the 2 logical cores of this machine; using 2`);
    });
  }

  it('global options work after the subcommand and before it', async () => {
    const after = await runCli(['config', '--json', '--profile', 'large']);
    const before = await runCli(['--json', '--profile', 'large', 'config']);
    for (const r of [after, before]) {
      expect(r.code).toBe(0);
      const [rec] = r.json();
      expect((rec!['config'] as { profile: string }).profile).toBe('large');
      expect((rec!['sources'] as Record<string, string>)['maxCpuThreads']).toBe('profile large');
    }
  });

  it('--json emits one record with config, sources and the CPU line', async () => {
    const r = await runCli(['config', '--json', '--threads', '3'], { cores: 4 });
    const recs = r.json();
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ type: 'config', configFile: null, config: { cpuThreads: 3, threads: 3 } });
    expect((recs[0]!['sources'] as Record<string, string>)['threads']).toBe('flag --threads');
  });

  it('a flag the user did not type does not override env or file (no commander defaults)', async () => {
    const dir = projectWith({ '.stemrc.json': '{"threads": 2, "gpu": {"tf32": false}}' });
    const r = await runCli(['config', '--json'], { cwd: dir, env: { HOME: '/h', STEMKIT_DEVICE: 'cpu' } });
    const rec = r.json()[0]!;
    expect(rec['configFile']).toBe(join(dir, '.stemrc.json'));
    expect(rec['config']).toMatchObject({ device: 'cpu', threads: 2, gpu: { tf32: false } });
    expect((rec['sources'] as Record<string, string>)['device']).toBe('env STEMKIT_DEVICE');
  });

  it('profile selection from the file, env and flag', async () => {
    const dir = projectWith({ '.stemrc.yaml': 'defaultProfile: small\n' });
    const profileOf = async (args: string[], env: NodeJS.ProcessEnv = { HOME: '/h' }): Promise<string> =>
      ((await runCli(['config', '--json', ...args], { cwd: dir, env })).json()[0]!['config'] as { profile: string }).profile;
    expect(await profileOf([])).toBe('small');
    expect(await profileOf([], { HOME: '/h', STEMKIT_PROFILE: 'large' })).toBe('large');
    expect(await profileOf(['--profile', 'medium'], { HOME: '/h', STEMKIT_PROFILE: 'large' })).toBe('medium');
  });

  it('--config <file> is used instead of the search', async () => {
    const dir = projectWith({ '.stemrc.json': '{"device":"cpu"}', 'alt.json': '{"device":"webgpu"}' });
    const r = await runCli(['config', '--json', '--config', 'alt.json'], { cwd: dir });
    expect(r.json()[0]).toMatchObject({ configFile: join(dir, 'alt.json'), config: { device: 'webgpu' } });
  });

  it('invalid configuration → 78 with every problem listed', async () => {
    const dir = projectWith({ '.stemrc.json': '{"maxCpuThreads": 0, "gpu": {"memoryFraction": 2}}' });
    const r = await runCli(['config', '--threads', 'many'], { cwd: dir, env: { HOME: '/h', CPU_USAGE_LIMIT: '1.5' } });
    expect(r.code).toBe(78);
    const file = join(dir, '.stemrc.json');
    expect(r.stderr).toBe(
      [
        'stemkit: invalid configuration: 4 problems',
        `  - maxCpuThreads = 0 (from ${file}): expected an integer >= 1`,
        `  - gpu.memoryFraction = 2 (from ${file}): expected a number in (0, 1]`,
        '  - cpuUsageLimit = 1.5 (from env CPU_USAGE_LIMIT): expected a number in (0, 1]',
        '  - threads = "many" (from flag --threads): expected an integer >= 1',
        `hint: Fix the values listed above (config file: ${file}); \`stemkit config\` shows where each value comes from.`,
        '',
      ].join('\n'),
    );
    expect(r.stdout).toBe('');
  });

  it('invalid configuration with --json → the problems in the error record', async () => {
    const r = await runCli(['config', '--json', '--profile', 'huge']);
    expect(r.code).toBe(78);
    const [rec] = r.json();
    expect(rec).toMatchObject({ type: 'error', code: 'E_CONFIG_INVALID', exitCode: 78, message: 'invalid configuration: 1 problem' });
    expect((rec!['details'] as { problems: unknown[] }).problems).toEqual([
      { key: 'profile', value: 'huge', expected: 'one of: small, medium, large', source: 'flag --profile' },
    ]);
  });

  it('--config pointing at a missing file → 78', async () => {
    const r = await runCli(['config', '--config', 'missing.json']);
    expect(r.code).toBe(78);
    expect(r.stderr.split('\n')[0]).toBe('stemkit: config file not found: missing.json');
  });
});

describe('cache directory default', () => {
  it('without HOME in the environment the OS home directory is used, never a literal "~"', async () => {
    const { homedir } = await import('node:os');
    const r = await runCli(['config', '--json'], { env: {} });
    expect((r.json()[0]!['config'] as { cacheDir: string }).cacheDir).toBe(join(homedir(), '.cache', 'stemkit'));
  });
});
