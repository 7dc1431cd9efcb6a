/**
 * `stemkit completion bash|zsh|fish`: the generated scripts are loaded into the real shells and asked for
 * completions, as a user's Tab would (bash: the completion function with COMP_WORDS; fish: `complete -C`;
 * zsh: a syntax check). Shells that are not installed are skipped.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/audio-fixtures.js';
import { runCli } from '../helpers/cli-run.js';

const has = (shell: string): boolean => spawnSync(shell, ['-c', 'true'], { stdio: 'ignore' }).status === 0;
const tmp = makeTempDir('stemkit-completion-');
afterAll(() => tmp.cleanup());

async function script(shell: string): Promise<string> {
  const r = await runCli(['completion', shell]);
  expect(r.code).toBe(0);
  const file = join(tmp.dir, `stemkit.${shell}`);
  writeFileSync(file, r.stdout);
  return file;
}

describe('stemkit completion', () => {
  it('rejects an unknown shell with 64', async () => {
    const r = await runCli(['completion', 'tcsh']);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe('stemkit: unknown shell "tcsh"\nhint: Use one of: bash, zsh, fish.\n');
  });

  it.skipIf(!has('bash'))('bash: commands, subcommands, options of the command typed, option values, model ids', async () => {
    const file = await script('bash');
    const cases: Array<[string[], string]> = [
      [['stemkit', 'se'], 'separate serve'],
      [['stemkit', 'models', 'p'], 'pull path'],
      [['stemkit', 'separate', '--dev'], '--device'],
      [['stemkit', 'separate', '--device', ''], 'auto cpu cuda webgpu'],
      [['stemkit', '--json', 'models', 'list', '--ta'], '--task'],
      [['stemkit', 'separate', 'song.wav', '--format', 'f'], 'flac'],
      [['stemkit', 'tts', '--model', 'kok'], 'kokoro'],
      [['stemkit', 'bench', '--targets', ''], 'auto seed off'],
      [['stemkit', 'completion', 'z'], ''],
    ];
    const body = cases
      .map(([words]) => `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); _stemkit; echo "\${COMPREPLY[*]}"`)
      .join('\n');
    const r = spawnSync('bash', ['-c', `cd ${JSON.stringify(tmp.dir)}; source ${JSON.stringify(file)}\n${body}`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').slice(0, cases.length)).toEqual(cases.map(([, want]) => want));
  });

  it.skipIf(!has('fish'))('fish: the same answers through complete -C', async () => {
    const file = await script('fish');
    const ask = (line: string): string[] =>
      spawnSync('fish', ['-c', `source ${file}; complete -C '${line}'`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]!);
    expect(ask('stemkit se')).toEqual(['separate', 'serve']);
    expect(ask('stemkit models p').sort()).toEqual(['path', 'pull']);
    expect(ask('stemkit separate --device ')).toEqual(['auto', 'cpu', 'cuda', 'webgpu']);
    expect(ask('stemkit bench --tar')).toEqual(['--target', '--targets']);
  });

  it.skipIf(!has('zsh'))('zsh: the script parses', async () => {
    const file = await script('zsh');
    const r = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
