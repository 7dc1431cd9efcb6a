import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createAudioSink } from '../../src/audio/open.js';
import { evaluate } from '../../src/eval/eval.js';
import { findReferenceTracks, parseStemMap } from '../../src/eval/layout.js';
import { runCli } from '../helpers/cli-run.js';
import { HAS_FFMPEG } from '../helpers/audio-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'stemkit-eval-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));


const RATE = 8000;
const N = 8000; // 1 s; 8000 Hz keeps files tiny
// Two whole-period sinusoids at different frequencies are exactly orthogonal over N samples.
const tone = (f: number, amp: number): Float32Array => Float32Array.from({ length: N }, (_, n) => amp * Math.sin((2 * Math.PI * f * n) / RATE));

async function write(path: string, channels: Float32Array[], rate = RATE, bits: 16 | 24 | 32 = 32): Promise<void> {
  mkdirSync(join(path, '..'), { recursive: true });
  const sink = await createAudioSink(path, { sampleRate: rate, channels: channels.length, bits });
  await sink.write({ channels, sampleRate: rate });
  await sink.finish();
}

/** A track whose mixture is a (100 Hz, 0.5) + b (300 Hz, 0.25) + a silent stem. */
async function makeTrack(dir: string, ext = 'wav'): Promise<{ a: Float32Array; b: Float32Array }> {
  const a = tone(100, 0.5);
  const b = tone(300, 0.25);
  const mix = a.map((x, i) => x + b[i]!);
  await write(join(dir, `mixture.${ext}`), [mix, mix]);
  await write(join(dir, `a.${ext}`), [a, a]);
  await write(join(dir, `b.${ext}`), [b, b]);
  await write(join(dir, `silent.${ext}`), [new Float32Array(N), new Float32Array(N)]);
  return { a, b };
}

describe('stemkit eval', () => {
  it('scores known estimates with their closed-form SDRs, and the mixture baseline', async () => {
    const refs = join(root, 'refs1');
    const ests = join(root, 'ests1');
    const { a, b } = await makeTrack(join(refs, 'song'));
    await write(join(ests, 'song', 'a.wav'), [a.map((x) => 0.5 * x), a.map((x) => 0.5 * x)]); // SDR 20·log10(2)
    await write(join(ests, 'song', 'b.wav'), [b, b]); // perfect
    await write(join(ests, 'song', 'silent.wav'), [new Float32Array(N), new Float32Array(N)]);
    const report = await evaluate({ referenceDir: refs, estimatesDir: ests, baselines: ['mixture'] });
    const get = (system: string, stem: string) => report.tracks[0]!.scores.find((s) => s.system === system && s.stem === stem)!;
    expect(get('estimates', 'a').sdr).toBeCloseTo(6.0206, 3);
    // Exact: the error is 0, so SDR = 10·log10((Σs² + ε)/ε) = 10·log10(500/1e-7) ≈ 97 dB for Σs² = 0.25²/2·2·8000.
    expect(get('estimates', 'b').sdr).toBeGreaterThan(90);
    // Mixture as the estimate of a: the error is b, orthogonal: SDR = 10·log10(0.5²/0.25²) = 6.0206 dB.
    expect(get('mixture', 'a').sdr).toBeCloseTo(6.0206, 3);
    expect(get('mixture', 'b').sdr).toBeCloseTo(-6.0206, 3);
    expect(get('estimates', 'a').sdrImprovement).toBeCloseTo(0, 3);
    expect(get('estimates', 'silent').silent).toBe(true);
    // Silent references are reported but excluded from the aggregates.
    expect(report.aggregate.find((r) => r.stem === 'silent')).toBeUndefined();
    expect(report.aggregate.find((r) => r.system === 'estimates' && r.stem === 'a')!.count).toBe(1);
    expect(report.missing).toEqual([]);
  });

  it('lists missing estimates, honours --map, and trims and reports a length mismatch', async () => {
    const refs = join(root, 'refs2');
    const ests = join(root, 'ests2');
    const { a } = await makeTrack(join(refs, 'song'));
    const longer = new Float32Array(N + 100);
    longer.set(a);
    await write(join(ests, 'song', 'vox.wav'), [longer, longer]);
    const report = await evaluate({ referenceDir: refs, estimatesDir: ests, map: parseStemMap(['a=vox']) });
    const t = report.tracks[0]!;
    expect(t.scores.map((s) => s.stem)).toEqual(['a']);
    expect(t.scores[0]!.sdr).toBeGreaterThan(90); // exact estimate: only ε bounds it
    expect(t.missing).toEqual(['b', 'silent']);
    expect(t.trimmed).toEqual([{ file: join(ests, 'song', 'vox.wav'), frames: 100 }]);
    expect(t.frames).toBe(N);
  });

  it('rejects a sample-rate mismatch with exit 65 and names the file', async () => {
    const refs = join(root, 'refs3');
    const ests = join(root, 'ests3');
    const { a } = await makeTrack(join(refs, 'song'));
    await write(join(ests, 'song', 'a.wav'), [a, a], 16000);
    await expect(evaluate({ referenceDir: refs, estimatesDir: ests })).rejects.toMatchObject({ exitCode: 65, message: expect.stringContaining('a.wav: sample rate 16000 Hz') });
  });

  it('reads FLAC references and a MUSDB test/ level', async () => {
    if (!HAS_FFMPEG) return; // FLAC needs ffmpeg; CI installs it
    const refs = join(root, 'refs4');
    const { a } = await makeTrack(join(refs, 'test', 'flac-song'), 'flac');
    expect(findReferenceTracks(refs).map((t) => t.name)).toEqual(['flac-song']);
    const ests = join(root, 'ests4');
    await write(join(ests, 'flac-song', 'a.wav'), [a, a]);
    const report = await evaluate({ referenceDir: refs, estimatesDir: ests, stems: ['a'] });
    // FLAC stores 16-bit samples: the reference is a quantised to 16 bits, so SDR is ~ 6.02·16 dB, not ∞.
    expect(report.tracks[0]!.scores[0]!.sdr).toBeGreaterThan(80);
    expect(report.missing).toEqual([]);
  });

  it('oracle IRM beats the mixture baseline on separable stems', async () => {
    const refs = join(root, 'refs5');
    await makeTrack(join(refs, 'song'));
    const report = await evaluate({ referenceDir: refs, baselines: ['mixture', 'oracle-irm'], stems: ['a', 'b'] });
    const t = report.tracks[0]!;
    for (const stem of ['a', 'b']) {
      const oracle = t.scores.find((s) => s.system === 'oracle-irm' && s.stem === stem)!;
      // 100 Hz and 300 Hz fall in different 4096-point bins (1.95 Hz apart at 8 kHz): the mask separates them almost perfectly.
      expect(oracle.sdrImprovement).toBeGreaterThan(15);
    }
  });

  it('CLI: missing estimates exit 66 with a list; no work requested exits 64', async () => {
    const refs = join(root, 'refs6');
    const ests = join(root, 'ests6');
    await makeTrack(join(refs, 'song'));
    mkdirSync(join(ests, 'song'), { recursive: true });
    const r = await runCli(['eval', refs, ests, '--json']);
    expect(r.code).toBe(66);
    expect(r.stdout + r.stderr).toContain('3 estimate file(s) missing: song/a, song/b, song/silent');
    const none = await runCli(['eval', refs]);
    expect(none.code).toBe(64);
    expect(none.stderr).toContain('nothing to score');
  });
});

describe('stemkit eval --model', () => {
  it('separates every mixture with the embedded classic model and scores only the stems it wrote', async () => {
    const refs = join(root, 'refs-model');
    const rate = 44100;
    const n = rate * 2;
    const mk = (f: number, amp: number): Float32Array => Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * f * i) / rate));
    const parts = { drums: mk(60, 0.2), bass: mk(80, 0.2), other: mk(600, 0.2), vocals: mk(300, 0.2), guitar: mk(900, 0.05) };
    const mix = new Float32Array(n);
    for (const k of ['drums', 'bass', 'other', 'vocals'] as const) parts[k].forEach((v, i) => (mix[i]! += v));
    const dir = join(refs, 'song');
    await write(join(dir, 'mixture.wav'), [mix, mix], rate);
    for (const [k, v] of Object.entries(parts)) await write(join(dir, `${k}.wav`), [v, v], rate);
    const keep = join(root, 'kept');
    const r = await runCli(['eval', refs, '--model', 'classic', '--keep', keep, '--json'], { env: { HOME: root, NO_COLOR: '1', STEMKIT_CACHE_DIR: join(root, 'cache'), STEMKIT_RUNTIME_DIR: join(root, 'rt') } });
    expect(r.code).toBe(0);
    const report = r.json().find((j) => j['type'] === 'eval') as { tracks: Array<{ scores: Array<{ system: string; stem: string }>; missing: string[] }> };
    // guitar is in the reference set but not a classic stem: not scored, not "missing".
    expect(report.tracks[0]!.scores.map((s) => `${s.system}:${s.stem}`).sort()).toEqual(['classic:bass', 'classic:drums', 'classic:other', 'classic:vocals']);
    expect(report.tracks[0]!.missing).toEqual([]);
    // --keep leaves the separated stems in the estimates layout.
    const { existsSync } = await import('node:fs');
    for (const s of ['drums', 'bass', 'other', 'vocals']) expect(existsSync(join(keep, 'song', `${s}.wav`))).toBe(true);
  });
});
