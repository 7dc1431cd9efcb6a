import { describe, expect, it } from 'vitest';
import { createBarRenderer } from '../../src/cli/render/bars.js';
import { createJsonRenderer, createPlainRenderer, createRenderer } from '../../src/cli/render/renderer.js';
import { selectRenderer } from '../../src/cli/render/select.js';
import { createStyle, useColor } from '../../src/cli/render/style.js';
import { captureStream } from '../helpers/cli-run.js';

const plainStyle = createStyle(false);

describe('selectRenderer', () => {
  it.each([
    { flags: { quiet: true, json: true }, env: {}, tty: true, want: 'silent' },
    { flags: { quiet: false, json: true }, env: {}, tty: true, want: 'json' },
    { flags: { quiet: false, json: false }, env: {}, tty: false, want: 'plain' },
    { flags: { quiet: false, json: false }, env: { CI: 'true' }, tty: true, want: 'plain' },
    { flags: { quiet: false, json: false }, env: { CI: '1' }, tty: true, want: 'plain' },
    { flags: { quiet: false, json: false }, env: { CI: 'false' }, tty: true, want: 'bars' },
    { flags: { quiet: false, json: false }, env: { CI: '' }, tty: true, want: 'bars' },
    { flags: { quiet: false, json: false }, env: {}, tty: true, want: 'bars' },
  ])('$flags $env tty=$tty → $want', ({ flags, env, tty, want }) => {
    expect(selectRenderer(flags, env, tty)).toBe(want);
  });
});

describe('colour', () => {
  it.each([
    { color: true, env: {}, tty: true, want: true },
    { color: false, env: {}, tty: true, want: false },
    { color: true, env: { NO_COLOR: '1' }, tty: true, want: false },
    { color: true, env: { NO_COLOR: '' }, tty: true, want: true }, // no-color.org: only a non-empty value disables
    { color: true, env: { FORCE_COLOR: '0' }, tty: true, want: false },
    { color: true, env: {}, tty: false, want: false },
    { color: true, env: { FORCE_COLOR: 'false' }, tty: true, want: false },
    { color: true, env: { CI: 'true' }, tty: true, want: false }, // CI logs are plain, even on a terminal
    { color: true, env: { FORCE_COLOR: '1' }, tty: false, want: true },
    { color: true, env: { FORCE_COLOR: '1', CI: 'true' }, tty: false, want: true },
    { color: true, env: { FORCE_COLOR: '' }, tty: false, want: true },
    { color: true, env: { FORCE_COLOR: '1', NO_COLOR: '1' }, tty: true, want: false },
    { color: false, env: { FORCE_COLOR: '1' }, tty: true, want: false },
  ])('color=$color $env tty=$tty → $want', ({ color, env, tty, want }) => {
    expect(useColor({ color }, env, tty)).toBe(want);
  });

  it('styles add ANSI codes only when enabled', () => {
    expect(createStyle(false).fail('x')).toBe('x');
    expect(createStyle(true).fail('x')).toBe('\u001b[31mx\u001b[39m');
  });
});

describe('plain renderer', () => {
  it('one line per stage start and done, progress throttled to one line per interval', () => {
    const err = captureStream();
    let t = 0;
    const r = createPlainRenderer({ stderr: err.stream, style: plainStyle, verbose: false, now: () => t, plainIntervalMs: 5000 });
    r.onProgress({ stage: 'separate', status: 'start', file: 'a.wav', done: 0, total: 10, unit: 'chunks' });
    for (let i = 1; i < 10; i++) {
      t = i * 1000;
      r.onProgress({ stage: 'separate', status: 'progress', file: 'a.wav', done: i, total: 10, unit: 'chunks' });
    }
    t = 12_300;
    r.onProgress({ stage: 'separate', status: 'done', file: 'a.wav', done: 10, total: 10, unit: 'chunks' });
    r.onLog({ level: 'debug', message: 'hidden without --verbose' });
    r.onLog({ level: 'warn', message: 'clipped 3 samples', file: 'a.wav' });
    expect(err.text()).toBe(
      [
        'separate a.wav ...',
        'separate a.wav 50% (5/10 chunks)', // t = 5 s: first line allowed 5 s after the start line
        'separate a.wav done in 12.3s',
        'warning: a.wav: clipped 3 samples',
        '',
      ].join('\n'),
    );
  });
});

describe('json renderer', () => {
  it('progress events as JSON lines on stderr, throttled except start/done/complete', () => {
    const err = captureStream();
    let t = 0;
    const r = createJsonRenderer({ stderr: err.stream, style: plainStyle, verbose: false, now: () => t, jsonIntervalMs: 250 });
    r.onProgress({ stage: 'decode', status: 'start', file: 'a.wav', done: 0, total: 4 });
    t = 10;
    r.onProgress({ stage: 'decode', status: 'progress', file: 'a.wav', done: 1, total: 4 });
    t = 20;
    r.onProgress({ stage: 'decode', status: 'progress', file: 'a.wav', done: 2, total: 4 }); // dropped: 10 ms after the last
    t = 30;
    r.onProgress({ stage: 'decode', status: 'progress', file: 'a.wav', done: 4, total: 4 }); // kept: complete
    r.onProgress({ stage: 'decode', status: 'done', file: 'a.wav', done: 4, total: 4 });
    r.onLog({ level: 'info', message: 'using cpu' });
    const lines = err.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['type'], l['status'] ?? l['level'], l['done'] ?? null])).toEqual([
      ['progress', 'start', 0],
      ['progress', 'progress', 1],
      ['progress', 'progress', 4],
      ['progress', 'done', 4],
      ['log', 'info', null],
    ]);
  });
});

describe('bar renderer', () => {
  function ttyStream(): ReturnType<typeof captureStream> {
    const c = captureStream();
    Object.assign(c.stream, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, clearScreenDown: () => true });
    return c;
  }

  it('draws the current file in seconds of audio, and a batch bar only for batches of several files', () => {
    const err = ttyStream();
    const r = createBarRenderer({ stderr: err.stream, style: plainStyle, verbose: false, cwd: '/music' });
    r.onProgress({ stage: 'batch', status: 'start', done: 0, total: 1, unit: 'files' });
    r.onProgress({ stage: 'separate', status: 'start', file: '/music/song.wav', done: 0, total: 441000, unit: 'samples', sampleRate: 44100 });
    r.onProgress({ stage: 'separate', status: 'progress', file: '/music/song.wav', done: 220500, total: 441000, unit: 'samples', sampleRate: 44100 });
    r.stop();
    const text = err.text();
    expect(text).toMatch(/separate {2}song\.wav [█░]{30} {2}50% 5\.0\/10\.0 s/);
    expect(text).not.toContain('batch');
  });

  it('log and result lines are written through the bars and flushed before stop() returns', () => {
    const err = ttyStream();
    const out = captureStream();
    const r = createBarRenderer({ stderr: err.stream, style: plainStyle, verbose: false, stdoutIsTTY: false });
    r.onProgress({ stage: 'separate', status: 'start', file: 'song.wav', done: 0, total: 8 });
    r.onLog({ level: 'warn', message: 'clipped', file: 'song.wav' });
    r.writeLine(out.stream, 'result line');
    r.onProgress({ stage: 'file', status: 'done', file: 'song.wav', done: 1, total: 1 });
    r.stop();
    expect(err.text()).toContain('warning: song.wav: clipped\n');
    // stdout redirected away from the terminal: written as is, never into the bars' stream.
    expect(out.text()).toBe('result line\n');
    expect(err.text()).not.toContain('result line');
  });

  it('createRenderer builds each kind', async () => {
    const err = captureStream();
    for (const kind of ['silent', 'json', 'plain', 'bars'] as const) {
      const r = await createRenderer(kind, { stderr: err.stream, style: plainStyle, verbose: false });
      r.stop();
    }
  });
});
