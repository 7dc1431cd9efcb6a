import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Timestamps } from '../../src/tts/timing.js';
import { buildKokoroTimingModel, npz, voiceTable } from '../helpers/tts-fixtures.js';
import { runTtsCli } from '../helpers/tts-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'stemkit-ts-cli-'));
const env = { STEMKIT_RUNTIME_DIR: join(dir, 'run'), STEMKIT_CACHE_DIR: join(dir, 'cache') };
const exact = join(dir, 'kokoro-duration.onnx');
const plain = join(dir, 'kokoro-plain.onnx');
const voices = join(dir, 'voices.npz');
const TEXT = 'Hello world, this is a test of the subtitles. It costs $5.50, friend.';

interface ParsedCue {
  start: number;
  end: number;
  lines: string[];
}

/** An independent SRT/VTT reader: blocks separated by blank lines, `HH:MM:SS,mmm --> HH:MM:SS,mmm` (`.` in VTT). */
function parseSubtitles(text: string, format: 'srt' | 'vtt'): { cues: ParsedCue[]; notes: string[] } {
  const blocks = text.replace(/\r\n/g, '\n').trim().split(/\n{2,}/);
  const notes: string[] = [];
  if (format === 'vtt') {
    expect(blocks.shift()).toBe('WEBVTT');
    while (blocks[0]?.startsWith('NOTE')) notes.push(blocks.shift()!);
  }
  const t = (s: string): number => {
    const m = (format === 'srt' ? /^(\d\d):(\d\d):(\d\d),(\d\d\d)$/ : /^(\d\d):(\d\d):(\d\d)\.(\d\d\d)$/).exec(s);
    expect(m, s).not.toBeNull();
    return Number(m![1]) * 3600 + Number(m![2]) * 60 + Number(m![3]) + Number(m![4]) / 1000;
  };
  const cues = blocks.map((b, i) => {
    const lines = b.split('\n');
    if (format === 'srt') expect(lines.shift()).toBe(String(i + 1));
    const [a, arrow, z] = lines.shift()!.split(' ');
    expect(arrow).toBe('-->');
    return { start: t(a!), end: t(z!), lines };
  });
  return { cues, notes };
}

beforeAll(() => {
  writeFileSync(exact, buildKokoroTimingModel({ duration: true }));
  writeFileSync(plain, buildKokoroTimingModel({ duration: false }));
  writeFileSync(voices, npz({ af_heart: voiceTable(0) }, 0));
});

describe('stemkit tts --timestamps / --subtitles', () => {
  it('writes the timestamps document and SRT cues of ≤ N characters on ≤ 2 lines, cut at phrase ends', async () => {
    const ts = join(dir, 'a.json');
    const srt = join(dir, 'a.srt');
    const r = await runTtsCli([TEXT, '-m', exact, '--voices', voices, '-o', join(dir, 'a.wav'), '--timestamps', ts, '--subtitles', srt, '--max-cue-chars', '24'], env);
    expect(r.stderr).not.toMatch(/stemkit:|estimated/);
    expect(r.code).toBe(0);
    const doc = JSON.parse(readFileSync(ts, 'utf8')) as Timestamps;
    expect(doc.estimated).toBe(false);
    const words = doc.sentences.flatMap((s) => s.words);
    // espeak-ng reads "of the" as one phoneme word (ʌvðə): it is reported as the two words it joined.
    expect(words.map((w) => w.text)).toEqual(['Hello', 'world', 'this', 'is', 'a', 'test', 'of the', 'subtitles', 'It', 'costs', '$5.50', 'friend']);
    for (const w of words) expect(TEXT.slice(w.start, w.end)).toBe(w.text);
    const { cues } = parseSubtitles(readFileSync(srt, 'utf8'), 'srt');
    expect(cues.map((c) => c.lines.join(' '))).toEqual(['Hello world,', 'this is a test of the', 'subtitles.', 'It costs $5.50, friend.']);
    for (const c of cues) {
      expect(c.lines.length).toBeLessThanOrEqual(2);
      expect(c.lines.join(' ').length).toBeLessThanOrEqual(24);
    }
    // Cue times are the words' times (to the millisecond SRT keeps).
    const byFirst = [words[0]!, words[2]!, words[7]!, words[8]!];
    const byLast = [words[1]!, words[6]!, words[7]!, words[11]!];
    cues.forEach((c, i) => {
      expect(Math.abs(c.start - byFirst[i]!.startSec)).toBeLessThanOrEqual(0.0006);
      expect(Math.abs(c.end - byLast[i]!.endSec)).toBeLessThanOrEqual(0.0006);
    });
  });

  it('VTT of a model without durations says the times are estimated; --json carries timestamps inline', async () => {
    const vtt = join(dir, 'b.vtt');
    const r = await runTtsCli([TEXT, '-m', plain, '--voices', voices, '-o', join(dir, 'b.wav'), '--subtitles', vtt, '--json'], env);
    expect(r.code).toBe(0);
    const { cues, notes } = parseSubtitles(readFileSync(vtt, 'utf8'), 'vtt');
    expect(notes.length).toBe(1);
    expect(notes[0]).toMatch(/^NOTE estimated: true/);
    expect(cues.length).toBe(2); // one per sentence at the default 84 characters
    const rec = r.json().find((j) => j['type'] === 'tts')!;
    expect(rec['estimated']).toBe(true);
    expect(rec['subtitles']).toEqual({ path: vtt, format: 'vtt', cues: 2 });
    const doc = rec['timestamps'] as Timestamps;
    expect(doc.sentences.length).toBe(2);
    expect(doc.sentences.every((s) => s.estimated && s.words.every((w) => w.estimated))).toBe(true);
  });

  it('--jsonl lines take timestamps/subtitles/maxCueChars and their records report them', async () => {
    const jobs = join(dir, 'jobs.jsonl');
    const lines = [
      { text: 'Hello world. Bye.', output: join(dir, 'j1.wav'), timestamps: join(dir, 'j1.json'), subtitles: join(dir, 'j1.srt') },
      { text: 'Hello.', output: join(dir, 'j2.wav'), subtitles: join(dir, 'j2.txt') },
    ];
    writeFileSync(jobs, lines.map((l) => JSON.stringify(l)).join('\n'));
    const r = await runTtsCli(['--jsonl', jobs, '-m', exact, '--voices', voices, '--json'], env);
    expect(r.code).toBe(1); // line 2 fails
    const recs = r.json().filter((j) => j['type'] === 'tts');
    const ok = recs.find((j) => j['line'] === 1)!;
    expect(ok['timestampsFile']).toBe(join(dir, 'j1.json'));
    expect(ok['subtitles']).toEqual({ path: join(dir, 'j1.srt'), format: 'srt', cues: 2 });
    expect(existsSync(join(dir, 'j1.json'))).toBe(true);
    const bad = recs.find((j) => j['line'] === 2)!;
    expect((bad['error'] as { message: string }).message).toMatch(/"subtitles" must name an \.srt or \.vtt file/);
  });

  it('a subtitles path that is not .srt/.vtt is a usage error (64) and nothing is written', async () => {
    const out = join(dir, 'c.wav');
    const r = await runTtsCli(['Hi.', '-m', exact, '--voices', voices, '-o', out, '--subtitles', join(dir, 'c.txt')], env);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--subtitles must name an \.srt or \.vtt file/);
    expect(existsSync(out)).toBe(false);
  });

  it('--stdout --timestamps-fd 3: audio on stdout, one JSON line per sentence on fd 3, then an end line', () => {
    const bin = join(process.cwd(), 'bin', 'stemkit.js');
    const r = spawnSync(process.execPath, [bin, 'tts', 'Hello world. It costs $5.50.', '-m', exact, '--voices', voices, '--stdout', '--timestamps-fd', '3'], {
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
    expect(r.status, String(r.stderr)).toBe(0);
    const fd3 = String((r.output as Array<Buffer | null>)[3]);
    const recs = fd3.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((x) => x['type'])).toEqual(['sentence', 'sentence', 'end']);
    const audioSec = (r.stdout as Buffer).length / 2 / 24000;
    expect(recs[2]!['durationSec']).toBeCloseTo(audioSec, 3);
    expect((recs[1]!['words'] as Array<{ text: string }>).map((w) => w.text)).toEqual(['It', 'costs', '$5.50']);
    expect(recs[1]!['endSec'] as number).toBeLessThanOrEqual(audioSec);
  });
});
