/**
 * What a user sees on a real terminal: bar lines that fit, and result lines that survive the bars' redraws.
 * The screens are read from a tmux pane (a real pseudo-terminal), not from a stream pretending to be one.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBarLine } from '../../src/cli/render/bars.js';
import { makeTempDir } from '../helpers/audio-fixtures.js';
import { sines, writeWav } from '../helpers/separate-fixtures.js';
import { HAS_TMUX, openPane } from '../helpers/tty.js';

const ROOT = resolve(import.meta.dirname, '../..');
const maskEta = (rows: string[]): string[] => rows.map((r) => r.replace(/ETA (\d+:\d\d|-:--)/, 'ETA m:ss'));

describe('formatBarLine', () => {
  it('shows seconds of audio with the ETA, and fits the terminal', () => {
    const line = { stage: 'separate', name: 'song.wav', value: 44100 * 90, total: 44100 * 180, unit: 'samples', sampleRate: 44100, etaSec: 75 };
    expect(formatBarLine(line, 80)).toBe('separate  song.wav ███████████████░░░░░░░░░░░░░░░  50% 90.0/180.0 s ETA 1:15');
    expect(formatBarLine({ ...line, etaSec: 3725 }, 80)).toBe('separate  song.wav ███████████████░░░░░░░░░░░░░░░  50% 90.0/180.0 s ETA 1:02:05');
    expect(formatBarLine({ stage: 'download', name: 'htdemucs', value: 12.5e6, total: 50e6, unit: 'bytes' }, 60)).toBe(
      'download  htdemucs ███░░░░░░░░░░  25% 12.5/50.0 MB ETA -:--',
    );
    expect(formatBarLine({ stage: 'wait', name: 'b.wav', value: 0, total: 0, message: 'waiting for a free slot' }, 60)).toBe(
      'wait      b.wav ░░░░░░░░░░░░░░░░░░░ waiting for a free slot',
    );
    // Long names keep their end; narrow terminals drop the bar before cutting anything else.
    expect(formatBarLine({ ...line, name: '/music/album/disc1/a-rather-long-track-name.wav', etaSec: 5 }, 100)).toBe(
      'separate  /music/album/disc1/a-rather-long-track-name.wav ███████░░░░░░░  50% 90.0/180.0 s ETA 0:05',
    );
    expect(formatBarLine({ ...line, name: '/music/album/disc1/a-rather-long-track-name.wav', etaSec: 5 }, 80)).toBe(
      'separate  a-rather-long-track-name.wav ███████░░░░░░  50% 90.0/180.0 s ETA 0:05',
    );
    expect(formatBarLine({ ...line, name: '/music/album/disc1/a-rather-long-track-name.wav', etaSec: 5 }, 60)).toBe('separate  …-long-track-name.wav  50% 90.0/180.0 s ETA 0:05');
    expect(formatBarLine({ ...line, etaSec: 5 }, 40)).toBe('separate   50% 90.0/180.0 s ETA 0:05');
    expect(formatBarLine({ ...line, etaSec: 5 }, 50)).toBe('separate  song.wav  50% 90.0/180.0 s ETA 0:05');
    for (let cols = 10; cols <= 200; cols++) {
      for (const name of ['', 'a.wav', '/x/'.repeat(40)]) expect(formatBarLine({ ...line, name }, cols).length).toBeLessThanOrEqual(cols - 1);
    }
  });
});

describe.skipIf(!HAS_TMUX)('on a real terminal (tmux)', () => {
  it('result and warning lines stay on screen above the bars; the bars are gone at the end', async () => {
    const pane = openPane(['node', 'test/helpers/tty-bars.mjs'], { cols: 60, rows: 24, env: { PATH: process.env['PATH'] ?? '' }, cwd: ROOT });
    try {
      const header = [
        'model classic (drums, bass, other, vocals) on cpu ×2, loaded',
        ' in 0.31s',
        'warning: /music/album/disc1/a-rather-long-track-name.wav: vo',
        'cals: peak 1.20 was rescaled by -1.7 dB to avoid clipping (-',
        '-clip rescale)',
      ];
      const result1 = ['✓ /music/album/disc1/a-rather-long-track-name.wav', '  load 0.31s | decode 0.02s | infer 3.03s | write 0.43s | to', 'tal 3.78s | RTF 0.19 | cpu ×2'];
      expect(maskEta(await pane.waitFor((r) => r.some((l) => l.startsWith('separate'))))).toEqual([
        ...header,
        'batch     ░░░░░░░░░░░░░░░░░░░░░░░░░   0% 0/2 files ETA m:ss',
        'separate  …-long-track-name.wav  25% 50.0/200.0 s ETA m:ss',
      ]);
      pane.sendLine('');
      expect(maskEta(await pane.waitFor((r) => r.some((l) => l.includes('b.wav'))))).toEqual([
        ...header,
        ...result1,
        'batch     █████████████░░░░░░░░░░░░  50% 1/2 files ETA m:ss',
        'separate  b.wav ████░░░░░░░░░░░░  25% 50.0/200.0 s ETA m:ss',
      ]);
      pane.sendLine('');
      expect(await pane.waitFor((r) => r.includes('[exit 0]'))).toEqual([
        ...header,
        ...result1,
        '✓ /music/b.wav',
        ...result1.slice(1),
        '2 files: 2 ok, 0 skipped, 0 failed · 400.0s of audio in 7.6s',
        ' (RTF 0.02)',
        '[exit 0]',
      ]);
    } finally {
      pane.close();
    }
  });

  describe('stemkit separate, two files', () => {
    let tmp: { dir: string; cleanup: () => void };
    beforeAll(async () => {
      tmp = makeTempDir('stemkit-tty-');
      mkdirSync(join(tmp.dir, 'album'));
      for (const [i, f] of [220, 330].entries()) await writeWav(join(tmp.dir, 'album', `track0${i + 1}.wav`), sines(44100, 44100, 2, [f]), 16);
    });
    afterAll(() => tmp.cleanup());

    it('every result line, warning and the summary survive; no bar is left behind', async () => {
      const env = {
        PATH: process.env['PATH'] ?? '',
        HOME: tmp.dir,
        STEMKIT_CACHE_DIR: join(tmp.dir, 'cache'),
        STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'),
      };
      const pane = openPane(['node', join(ROOT, 'bin/stemkit.js'), 'separate', 'album/track01.wav', 'album/track02.wav', '-o', 'out', '--threads', '1'], {
        cols: 100,
        rows: 30,
        env,
        cwd: tmp.dir,
      });
      try {
        const rows = await pane.waitFor((r) => r.some((l) => l.startsWith('[exit')), 90_000);
        const masked = rows.map((r) => r.replace(/\d+\.\d+s/g, 'N.NNs').replace(/RTF \d+\.\d+/g, 'RTF N.NN'));
        const out = (n: number): string[] => [
          `✓ ${tmp.dir}/album/track0${n}.wav`,
          ...['drums', 'bass', 'other', 'vocals'].map((s) => `  ${s}: ${tmp.dir}/out/track0${n}/${s}.wav`),
          '  load N.NNs | decode N.NNs | infer N.NNs | write N.NNs | total N.NNs | RTF N.NN | cpu ×1',
        ];
        expect(masked).toEqual([
          'model classic (drums, bass, other, vocals) on cpu ×1, loaded in N.NNs',
          ...out(1),
          ...out(2),
          '2 files: 2 ok, 0 skipped, 0 failed · N.NNs of audio in N.NNs (RTF N.NN)',
          '[exit 0]',
        ]);
      } finally {
        pane.close();
        rmSync(join(tmp.dir, 'out'), { recursive: true, force: true });
      }
    });

    it('on a 70-column terminal the timing line breaks between its fields, not mid-word', async () => {
      const env = { PATH: process.env['PATH'] ?? '', HOME: tmp.dir, STEMKIT_CACHE_DIR: join(tmp.dir, 'cache'), STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run') };
      const pane = openPane(['node', join(ROOT, 'bin/stemkit.js'), 'separate', 'album/track01.wav', '-o', 'out-70', '--threads', '1'], { cols: 70, rows: 30, env, cwd: tmp.dir });
      try {
        const rows = await pane.waitFor((r) => r.some((l) => l.startsWith('[exit')), 90_000);
        const masked = rows.map((r) => r.replace(/\d+\.\d+s/g, 'N.NNs').replace(/RTF \d+\.\d+/g, 'RTF N.NN'));
        const at = masked.indexOf('  load N.NNs | decode N.NNs | infer N.NNs | write N.NNs |');
        expect(at).toBeGreaterThan(0);
        expect(masked[at + 1]).toBe('  total N.NNs | RTF N.NN | cpu ×1');
        expect(rows).toContain('[exit 0]');
      } finally {
        pane.close();
        rmSync(join(tmp.dir, 'out-70'), { recursive: true, force: true });
      }
    });

    it('CI=true on a terminal: plain progress lines and no colour; FORCE_COLOR=1 colours even a pipe', async () => {
      const env = { PATH: process.env['PATH'] ?? '', HOME: tmp.dir, STEMKIT_CACHE_DIR: join(tmp.dir, 'cache'), STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run') };
      const argv = ['node', join(ROOT, 'bin/stemkit.js'), 'separate', 'album/track01.wav', '-o', 'out-ci', '--threads', '1'];
      const pane = openPane(argv, { cols: 100, rows: 30, env: { ...env, CI: 'true' }, cwd: tmp.dir });
      try {
        await pane.waitFor((r) => r.some((l) => l.startsWith('[exit')), 90_000);
        const rows = pane.screen(true);
        expect(rows.join('\n')).not.toContain('\u001b[');
        expect(rows).toContain(`separate ${tmp.dir}/album/track01.wav ...`);
        expect(rows).toContain('[exit 0]');
        expect(rows.some((r) => /[█░]/.test(r))).toBe(false);
      } finally {
        pane.close();
      }
      // --quiet: no progress, but the warnings (here: the clip rescale of a too-loud input) stay.
      await writeWav(join(tmp.dir, 'loud.wav'), sines(44100, 44100, 2, [100], 2), 32);
      const quiet = spawnSync(argv[0]!, [argv[1]!, '--quiet', 'separate', 'loud.wav', '-o', 'out-ci', '--threads', '1'], { cwd: tmp.dir, env, encoding: 'utf8' });
      expect(quiet.status).toBe(0);
      expect(quiet.stderr).toMatch(/^warning: .*loud\.wav: bass: peak \d\.\d\d was rescaled by -\d\.\d dB to avoid clipping \(--clip rescale\)\n$/);
      const piped = spawnSync(argv[0]!, [...argv.slice(1), '--force'], { cwd: tmp.dir, env: { ...env, FORCE_COLOR: '1' }, encoding: 'utf8' });
      expect(piped.status).toBe(0);
      expect(piped.stdout).toContain(`\u001b[32m✓\u001b[39m ${tmp.dir}/album/track01.wav`);
    });
  });
});

