// Test helper (a real process on a real terminal): drives the bar renderer through a two-file batch with
// fixed events, the way `stemkit separate` does, and waits for a line on stdin at each checkpoint so the
// test can read the screen while the bars are up. Usage: node test/helpers/tty-bars.mjs
import { createInterface } from 'node:readline';
import { createBarRenderer } from '../../dist/cli/render/bars.js';
import { createStyle } from '../../dist/cli/render/style.js';

const lines = createInterface({ input: process.stdin, terminal: true })[Symbol.asyncIterator]();
const checkpoint = async () => {
  await lines.next();
};
// readline in terminal mode without an output puts the tty in raw mode: the typed Enter is not echoed.

const r = createBarRenderer({ stderr: process.stderr, style: createStyle(false), verbose: false, stdoutIsTTY: true, cwd: '/music' });
const sec = 44100;
r.onLog({ level: 'info', message: 'model classic (drums, bass, other, vocals) on cpu ×2, loaded in 0.31s' });
r.onProgress({ stage: 'batch', status: 'start', done: 0, total: 2, unit: 'files' });
for (const [i, file] of ['/music/album/disc1/a-rather-long-track-name.wav', '/music/b.wav'].entries()) {
  r.onProgress({ stage: 'file', status: 'start', file, done: 0, total: 1 });
  r.onProgress({ stage: 'separate', status: 'start', file, done: 0, total: 200 * sec, unit: 'samples', sampleRate: sec });
  r.onProgress({ stage: 'separate', status: 'progress', file, done: 50 * sec, total: 200 * sec, unit: 'samples', sampleRate: sec });
  if (i === 0) r.onLog({ level: 'warn', file, message: 'vocals: peak 1.20 was rescaled by -1.7 dB to avoid clipping (--clip rescale)' });
  await checkpoint();
  r.onProgress({ stage: 'separate', status: 'done', file, done: 200 * sec, total: 200 * sec, unit: 'samples', sampleRate: sec });
  r.onProgress({ stage: 'file', status: 'done', file, done: 1, total: 1 });
  r.writeLine(process.stdout, `✓ ${file}`);
  r.writeLine(process.stdout, '  load 0.31s | decode 0.02s | infer 3.03s | write 0.43s | total 3.78s | RTF 0.19 | cpu ×2');
  r.onProgress({ stage: 'batch', status: 'progress', done: i + 1, total: 2, unit: 'files' });
}
r.onProgress({ stage: 'batch', status: 'done', done: 2, total: 2, unit: 'files' });
r.writeLine(process.stdout, '2 files: 2 ok, 0 skipped, 0 failed · 400.0s of audio in 7.6s (RTF 0.02)');
r.stop();
process.exit(0);
