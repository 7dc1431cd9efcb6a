/**
 * Runs the CLI in-process with captured streams: `await runCli(['config', '--json'])`.
 * The environment is explicit (not process.env) so the host's variables cannot leak into results.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout split into parsed JSON lines (only meaningful with --json). */
  json(): Array<Record<string, unknown>>;
}

export function captureStream(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

let emptyDir: string | undefined;
/** A directory with a package.json and no config file: the default cwd, so no .stemrc is found. */
export function emptyProjectDir(): string {
  if (!emptyDir) {
    emptyDir = mkdtempSync(join(tmpdir(), 'stemkit-cli-'));
    // The config search stops at the nearest package.json; without one it would walk up into /tmp.
    writeFileSync(join(emptyDir, 'package.json'), '{"name":"t"}');
  }
  return emptyDir;
}

export async function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; cores?: number; signal?: AbortSignal; stderrIsTTY?: boolean; interactive?: boolean } = {},
): Promise<CliRun> {
  const out = captureStream();
  const err = captureStream();
  const code = await main(['node', 'stemkit', ...args], {
    stdout: out.stream,
    stderr: err.stream,
    env: opts.env ?? { HOME: '/home/test', NO_COLOR: '1' },
    cwd: opts.cwd ?? emptyProjectDir(),
    cores: opts.cores ?? 2,
    stdoutIsTTY: false,
    stderrIsTTY: opts.stderrIsTTY ?? false,
    interactive: opts.interactive ?? false,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return {
    code,
    stdout: out.text(),
    stderr: err.text(),
    json: () =>
      out
        .text()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
