/**
 * In-process `stemkit tts` runs with a binary-safe stdout (test/helpers/cli-run.ts decodes stdout as
 * UTF-8, which would corrupt streamed PCM).
 */
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';
import { emptyProjectDir } from './cli-run.js';

export interface TtsCliRun {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** stdout parsed as JSON lines (with --json). */
  json(): Array<Record<string, unknown>>;
}

export async function runTtsCli(args: string[], env: NodeJS.ProcessEnv): Promise<TtsCliRun> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]): Writable =>
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        into.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
        cb();
      },
    });
  const code = await main(['node', 'stemkit', 'tts', ...args], {
    stdout: sink(out),
    stderr: sink(err),
    env: { HOME: '/home/test', NO_COLOR: '1', ...env },
    cwd: emptyProjectDir(),
    cores: 2,
    stdoutIsTTY: false,
    stderrIsTTY: false,
  });
  const stdout = Buffer.concat(out);
  return {
    code,
    stdout,
    stderr: Buffer.concat(err).toString('utf8'),
    json: () =>
      stdout
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
