/**
 * onnxruntime-node 1.30 ships a telemetry client (events in ~/.cache/Microsoft/DeveloperTools/.onnxruntime,
 * uploads to Microsoft). A stemkit run must open no network socket and write nothing there. The syscalls are
 * watched with strace (Debian's `strace` package); the test skips without it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/audio-fixtures.js';
import { sines, writeWav } from '../helpers/separate-fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');
const HAS_STRACE = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
const TELEMETRY_DIR = ['.cache', 'Microsoft', 'DeveloperTools', '.onnxruntime'];

/** Runs `argv` under strace in a fresh HOME; returns the network syscalls it made and what the HOME holds after. */
function traced(dir: string, name: string, argv: string[], env: Record<string, string> = {}): { status: number | null; calls: string[]; home: string; stderr: string } {
  const home = join(dir, `home-${name}`);
  mkdirSync(home);
  const log = join(dir, `${name}.strace`);
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=socket,connect,sendto,sendmsg', '-o', log, ...argv], {
    cwd: dir,
    env: { PATH: process.env['PATH'] ?? '', HOME: home, STEMKIT_CACHE_DIR: join(dir, 'cache'), STEMKIT_RUNTIME_DIR: join(dir, 'run'), ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const calls = readFileSync(log, 'utf8').split('\n').filter((l) => /\b(socket|connect|sendto|sendmsg)\(/.test(l));
  return { status: r.status, calls, home, stderr: r.stderr };
}

describe.skipIf(!HAS_STRACE)('no telemetry, no network', () => {
  let tmp: { dir: string; cleanup: () => void };
  beforeAll(async () => {
    tmp = makeTempDir('stemkit-telemetry-');
    await writeWav(join(tmp.dir, 'a.wav'), sines(44100, 44100, 2, [220]), 16);
  });
  afterAll(() => tmp.cleanup());

  it('the watch sees a socket and the telemetry folder when they happen (controls)', () => {
    const net = traced(tmp.dir, 'net', [process.execPath, '-e', "require('net').connect(9, '127.0.0.1').on('error', () => {})"]);
    expect(net.calls.some((c) => c.includes('AF_INET'))).toBe(true);
    // onnxruntime-node loaded directly, without stemkit: its telemetry writes its database into HOME.
    const script = `const ort = require('onnxruntime-node'); ort.InferenceSession.create(${JSON.stringify(join(ROOT, 'models/classic.onnx'))}).then((s) => s.release())`;
    const raw = traced(tmp.dir, 'raw', [process.execPath, '-e', script], { NODE_PATH: join(ROOT, 'node_modules') });
    expect(raw.status).toBe(0);
    expect(existsSync(join(raw.home, ...TELEMETRY_DIR))).toBe(true);
  });

  it('stemkit separate --offline opens no socket and writes nothing under ~/.cache/Microsoft', () => {
    const run = traced(tmp.dir, 'stemkit', [process.execPath, join(ROOT, 'bin/stemkit.js'), '--quiet', 'separate', 'a.wav', '-o', 'out', '--offline', '--threads', '1']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.calls).toEqual([]);
    expect(readdirSync(run.home)).toEqual([]);
  });
});
