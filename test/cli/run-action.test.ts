import { Command } from 'commander';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultIO, runAction, setRunState, type CliContext, type RunState } from '../../src/cli/context.js';
import { reportError } from '../../src/cli/main.js';
import { InputError, InterruptedError, UnavailableError, throwIfAborted } from '../../src/errors.js';
import { tempPathFor, trackTemp } from '../../src/util/atomic.js';
import { captureStream, emptyProjectDir } from '../helpers/cli-run.js';

function harness(env: NodeJS.ProcessEnv = { HOME: '/h' }, signal?: AbortSignal) {
  const out = captureStream();
  const err = captureStream();
  const state: RunState = {
    io: defaultIO({ stdout: out.stream, stderr: err.stream, env, cwd: emptyProjectDir(), cores: 4, stdoutIsTTY: false, stderrIsTTY: false, signal }),
    exitCode: undefined,
  };
  const program = new Command('stemkit').exitOverride().option('--json').option('--quiet').option('--verbose').option('--no-color').option('--threads <n>').option('--device <d>');
  return { out, err, state, program };
}

let prev: RunState | undefined;
afterEach(() => {
  setRunState(prev);
});

async function run(h: ReturnType<typeof harness>, handler: (ctx: CliContext) => Promise<number | void>, args: string[]): Promise<unknown> {
  h.program.addCommand(new Command('x').exitOverride().action(runAction(async (ctx) => handler(ctx))));
  prev = setRunState(h.state);
  try {
    await h.program.parseAsync(args, { from: 'user' });
    return undefined;
  } catch (e) {
    return e;
  }
}

describe('runAction', () => {
  it('records the returned exit code (undefined → 0)', async () => {
    const h = harness();
    expect(await run(h, async () => 3, ['x'])).toBeUndefined();
    expect(h.state.exitCode).toBe(3);
    const h2 = harness();
    await run(h2, async () => undefined, ['x']);
    expect(h2.state.exitCode).toBe(0);
  });

  it('hands the handler the resolved config with typed flags only', async () => {
    const h = harness({ HOME: '/h', STEMKIT_DEVICE: 'cpu' });
    let seen: CliContext | undefined;
    await run(h, async (ctx) => void (seen = ctx), ['x', '--threads', '2']);
    expect(seen!.config.cpuThreads).toBe(2);
    expect(seen!.config.device).toBe('cpu');
    expect(seen!.sources['device']).toBe('env STEMKIT_DEVICE');
    expect(seen!.flags).toMatchObject({ json: false, quiet: false, verbose: false, color: true, threads: '2' });
  });

  it('print goes to stdout, emitJson only with --json, progress as plain lines on a non-TTY stderr', async () => {
    const h = harness();
    await run(h, async (ctx) => {
      ctx.print('hello');
      ctx.emitJson({ type: 'r' });
      ctx.onProgress({ stage: 'decode', status: 'start', file: 'a.wav', done: 0, total: 10 });
      ctx.onLog({ level: 'warn', message: 'careful' });
    }, ['x']);
    expect(h.out.text()).toBe('hello\n');
    expect(h.err.text()).toBe('decode a.wav ...\nwarning: careful\n');

    const j = harness();
    await run(j, async (ctx) => {
      ctx.print('hello');
      ctx.emitJson({ type: 'r', n: 1 });
      ctx.onProgress({ stage: 'decode', status: 'start', file: 'a.wav', done: 0, total: 10 });
    }, ['x', '--json']);
    expect(j.out.text()).toBe('{"type":"r","n":1}\n');
    expect(JSON.parse(j.err.text())).toEqual({ type: 'progress', stage: 'decode', status: 'start', file: 'a.wav', done: 0, total: 10 });
  });

  it('an abort (first Ctrl-C) aborts ctx.signal; a handler error becomes InterruptedError and temp files are removed', async () => {
    const ac = new AbortController();
    const h = harness({ HOME: '/h' }, ac.signal);
    const dir = mkdtempSync(join(tmpdir(), 'stemkit-int-'));
    const tmp = tempPathFor(join(dir, 'out.wav'));
    const e = await run(h, async (ctx) => {
      writeFileSync(tmp, 'partial');
      trackTemp(tmp);
      setTimeout(() => ac.abort(), 5);
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      expect(ctx.signal.reason).toBeInstanceOf(InterruptedError);
      throw new Error('ffmpeg was killed');
    }, ['x']);
    expect(e).toBeInstanceOf(InterruptedError);
    expect(existsSync(tmp)).toBe(false);
    expect(h.err.text()).toContain('interrupting... (press Ctrl-C again to stop immediately)');
    const io = h.state.io;
    expect(reportError(e, io, { json: false, verbose: false, color: false })).toBe(130);
  });

  it('--quiet: no progress, info hidden, warnings still shown, results still printed', async () => {
    const h = harness();
    await run(h, async (ctx) => {
      ctx.onProgress({ stage: 'decode', status: 'start', file: 'a.wav', done: 0, total: 10 });
      ctx.onLog({ level: 'info', message: 'using cpu' });
      ctx.onLog({ level: 'warn', message: 'careful' });
      ctx.print('result');
    }, ['x', '--quiet']);
    expect(h.err.text()).toBe('warning: careful\n');
    expect(h.out.text()).toBe('result\n');
  });

  it('with --json the interrupt notice is a JSON log line on stderr', async () => {
    const ac = new AbortController();
    const h = harness({ HOME: '/h' }, ac.signal);
    const e = await run(h, async (ctx) => {
      ac.abort();
      throwIfAborted(ctx.signal);
    }, ['x', '--json']);
    expect(e).toBeInstanceOf(InterruptedError);
    expect(h.err.text().trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
      { type: 'log', level: 'warn', message: 'interrupting... (press Ctrl-C again to stop immediately)' },
    ]);
  });

  it('SIGINT/SIGTERM listeners are removed after the run', async () => {
    const before = process.listenerCount('SIGINT');
    const h = harness();
    await run(h, async () => {
      expect(process.listenerCount('SIGINT')).toBe(before + 1);
      expect(process.listenerCount('SIGTERM')).toBeGreaterThanOrEqual(1);
    }, ['x']);
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});

describe('reportError', () => {
  const io = (): { out: ReturnType<typeof captureStream>; err: ReturnType<typeof captureStream>; io: ReturnType<typeof defaultIO> } => {
    const out = captureStream();
    const err = captureStream();
    return { out, err, io: defaultIO({ stdout: out.stream, stderr: err.stream, env: { NO_COLOR: '1' }, stdoutIsTTY: false, stderrIsTTY: false }) };
  };

  it.each([
    { error: new InputError('input not found: a.wav', { hint: 'Check the path.' }), code: 66 },
    { error: new UnavailableError('ffmpeg not found', { hint: 'Install ffmpeg.' }), code: 69 },
    { error: new InterruptedError(), code: 130 },
  ])('$error.code → $code, one line plus hint', ({ error, code }) => {
    const t = io();
    expect(reportError(error, t.io, { json: false, verbose: false, color: false })).toBe(code);
    const lines = t.err.text().split('\n');
    expect(lines[0]).toBe(`stemkit: ${error.message}`);
    expect(lines.length).toBe(error.hint ? 3 : 2); // message, hint, trailing newline
  });

  it('an unknown error → 70 "internal error", stack only with --verbose', async () => {
    const t = io();
    expect(reportError(new TypeError('x is undefined'), t.io, { json: false, verbose: false, color: false })).toBe(70);
    expect(t.err.text()).toBe('stemkit: internal error: x is undefined\nhint: This is a bug in stemkit. Re-run with --verbose for the stack trace and report it.\n');
    const v = io();
    reportError(new TypeError('x is undefined'), v.io, { json: true, verbose: true, color: false });
    expect(v.err.text()).toContain('TypeError: x is undefined\n    at ');
    expect(JSON.parse(v.out.text())).toMatchObject({ type: 'error', code: 'E_INTERNAL', exitCode: 70, message: 'internal error: x is undefined' });
  });
});
