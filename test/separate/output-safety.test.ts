/**
 * An output never replaces an input, and two writers never share an output: separate (files, folders, links,
 * --filename), tts (-f/-o, JSONL lines) and eval --keep refuse with 64 naming both paths before anything is
 * written. Also the {dir}/{trackext} template fields, the suggested template, byte-based name truncation and
 * the output manifest that keeps one model from calling another model's stems its own.
 */
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_COMPONENT_BYTES, inputFields, outputPath } from '../../src/separate/paths.js';
import { MANIFEST_NAME } from '../../src/separate/manifest.js';
import { fileKey, findOutputConflicts } from '../../src/util/output-safety.js';
import { mdxModel, mdxSidecar } from '../helpers/separate-models.js';
import { sines, tempDir, writeWav, outputFiles } from '../helpers/separate-fixtures.js';
import { runCli } from '../helpers/cli-run.js';

const tmp = tempDir('stemkit-outsafe-');
const env = { HOME: tmp.dir, NO_COLOR: '1', STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'), STEMKIT_CACHE_DIR: join(tmp.dir, 'cache') };
const A = (name: string): string => join(tmp.dir, name);
const ident = A('ident.onnx');
const gain3 = A('gain3.onnx');
const SIDE = { compensate: 1.0, mdx_dim_f_set: 1024, mdx_dim_t_set: 5, mdx_n_fft_scale_set: 2048, primary_stem: 'Vocals' };
const sep = (args: string[], model = ident) => runCli(['separate', '--model', model, '--bits', '32', '--clip', 'none', ...args], { env, cwd: tmp.dir });
const md5 = (p: string): string => createHash('md5').update(readFileSync(p)).digest('hex');

const files = outputFiles;

beforeAll(async () => {
  for (const [p, g] of [[ident, 1], [gain3, 3]] as const) {
    mdxModel(p, 1024, 32, g);
    mdxSidecar(p, SIDE);
  }
  await writeWav(A('song.wav'), sines(22050, 44100, 2, [440]));
});
afterAll(() => tmp.cleanup());

describe('an output never replaces an input (exit 64, both paths named, nothing written)', () => {
  it('a second input lying where the first one’s stems go', async () => {
    expect((await sep([A('song.wav'), '-o', A('o1')])).code).toBe(0);
    const before = md5(A('o1/song/vocals.wav'));
    const r = await sep([A('song.wav'), A('o1/song/vocals.wav'), '-o', A('o1'), '--force']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`stemkit: the output ${A('o1/song/vocals.wav')} (of ${A('song.wav')}) is an input of this run; refusing to overwrite it`);
    expect(md5(A('o1/song/vocals.wav'))).toBe(before);
  });

  it('a --filename that names the input itself', async () => {
    mkdirSync(A('d2'), { recursive: true });
    await writeWav(A('d2/vocals.wav'), sines(22050, 44100, 2, [300]));
    const before = md5(A('d2/vocals.wav'));
    const r = await sep([A('d2/vocals.wav'), '-o', A('d2'), '--filename', '{stem}.{ext}', '--force']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/the output .*d2\/vocals\.wav \(of .*d2\/vocals\.wav\) is an input of this run/);
    expect(md5(A('d2/vocals.wav'))).toBe(before);
    expect(readdirSync(A('d2'))).toEqual(['vocals.wav']);
  });

  it('through a symlink (input is a link to an output path) and through a symlinked output folder', async () => {
    expect((await sep([A('song.wav'), '-o', A('o3')])).code).toBe(0);
    symlinkSync(A('o3/song/vocals.wav'), A('lnk.wav'));
    const r1 = await sep([A('lnk.wav'), '-o', A('o3'), '--filename', 'song/{stem}.{ext}', '--force']);
    expect(r1.code).toBe(64);
    expect(r1.stderr).toContain(`the output ${A('o3/song/vocals.wav')} (of ${A('lnk.wav')}) is the input ${A('lnk.wav')} (the same file)`);
    // -o is a link to the input's folder: song/vocals.wav there is the real input.
    mkdirSync(A('real/song'), { recursive: true });
    await writeWav(A('real/song/vocals.wav'), sines(22050, 44100, 2, [500]));
    symlinkSync(A('real'), A('outlink'));
    const r2 = await sep([A('real/song/vocals.wav'), '-o', A('outlink'), '--filename', 'song/{stem}.{ext}', '--force']);
    expect(r2.code).toBe(64);
    expect(r2.stderr).toContain('is the input');
  });

  it('through a hard link', async () => {
    expect((await sep([A('song.wav'), '-o', A('o4')])).code).toBe(0);
    linkSync(A('o4/song/instrumental.wav'), A('hard.wav'));
    const r = await sep([A('hard.wav'), '-o', A('o4'), '--filename', 'song/{stem}.{ext}', '--force']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`the output ${A('o4/song/instrumental.wav')} (of ${A('hard.wav')}) is the input ${A('hard.wav')} (the same file)`);
  });

  it('a --model file is an input too', async () => {
    mkdirSync(A('m5'), { recursive: true });
    mdxModel(A('m5/vocals.onnx'), 1024, 32, 1);
    mdxSidecar(A('m5/vocals.onnx'), SIDE);
    const r = await sep([A('song.wav'), '-o', A('m5'), '--filename', '{stem}.{ext}', '--format', 'wav'], A('m5/vocals.onnx'));
    // vocals.wav ≠ vocals.onnx: no conflict; the same name with the model's extension is one.
    expect(r.code).toBe(0);
    const c = findOutputConflicts([A('m5/vocals.onnx')], [{ output: A('m5/vocals.onnx'), owner: 'x' }]);
    expect(c).toHaveLength(1);
  });

  it('case-insensitive file systems: names differing in case are one file (folding seam; this kernel has no casefold fs)', () => {
    // Existing files are compared by inode, which a case-insensitive file system resolves by itself; paths that do
    // not exist yet are folded when their folder is case-insensitive.
    const always = (): boolean => true;
    const never = (): boolean => false;
    const w = [{ output: A('ci/Song/Vocals.wav'), owner: 'a' }, { output: A('ci/song/vocals.wav'), owner: 'b' }];
    expect(findOutputConflicts([], w, always)).toHaveLength(1);
    expect(findOutputConflicts([], w, never)).toHaveLength(0);
    expect(fileKey(A('ci/X.wav'), always)).toBe(fileKey(A('ci/x.wav'), always));
  });
});

describe('two writers of one output are caught before either runs', () => {
  it('same track name in two folders (-r): 64, nothing written, and the suggested --filename works', async () => {
    for (const d of ['album/disc1', 'album/disc2']) {
      mkdirSync(A(d), { recursive: true });
      await writeWav(A(`${d}/track01.wav`), sines(11025, 44100, 2, [d.endsWith('1') ? 440 : 660]));
    }
    const r = await sep(['-r', A('album'), '-o', A('o6')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`${A('album/disc1/track01.wav')} and ${A('album/disc2/track01.wav')} would both write ${A('o6/track01/vocals.wav')}`);
    expect(r.stderr).toContain('hint: add --filename "{dir}/{track}/{stem}.{ext}"');
    expect(files(A('o6'))).toEqual([]);
    const ok = await sep(['-r', A('album'), '-o', A('o6'), '--filename', '{dir}/{track}/{stem}.{ext}']);
    expect(ok.code).toBe(0);
    expect(files(A('o6'))).toEqual(['disc1/track01/instrumental.wav', 'disc1/track01/vocals.wav', 'disc2/track01/instrumental.wav', 'disc2/track01/vocals.wav']);
  });

  it('MUSDB-style */mixture.wav through a glob: {dir} is relative to the pattern’s fixed part', async () => {
    for (const t of ['musdb/A', 'musdb/B']) {
      mkdirSync(A(t), { recursive: true });
      await writeWav(A(`${t}/mixture.wav`), sines(11025, 44100, 2, [330]));
    }
    const r = await sep([A('musdb/*/mixture.wav'), '-o', A('o7')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('hint: add --filename "{dir}/{track}/{stem}.{ext}"');
    const ok = await sep([A('musdb/*/mixture.wav'), '-o', A('o7'), '--filename', '{dir}/{stem}.{ext}']);
    expect(ok.code).toBe(0);
    expect(files(A('o7'))).toEqual(['A/instrumental.wav', 'A/vocals.wav', 'B/instrumental.wav', 'B/vocals.wav']);
  });

  it('same name, different extension: the suggestion adds {trackext}', async () => {
    mkdirSync(A('ext'), { recursive: true });
    await writeWav(A('ext/take.wav'), sines(11025, 44100, 2, [330]));
    await writeWav(A('ext/take.wave'), sines(11025, 44100, 2, [550]));
    const r = await sep([A('ext'), '-o', A('o8')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('hint: add --filename "{track}.{trackext}/{stem}.{ext}"');
    const ok = await sep([A('ext'), '-o', A('o8'), '--filename', '{track}.{trackext}/{stem}.{ext}']);
    expect(ok.code).toBe(0);
    expect(files(A('o8'))).toEqual(['take.wav/instrumental.wav', 'take.wav/vocals.wav', 'take.wave/instrumental.wav', 'take.wave/vocals.wav']);
  });
});

describe('tts and JSONL batches (checked before any model loads: kokoro is not installed here)', () => {
  const tts = (args: string[]) => runCli(['tts', '--offline', ...args], { env, cwd: tmp.dir });

  it('-f X -o X, also spelled differently or through a symlink or a hard link', async () => {
    writeFileSync(A('t.txt'), 'Hello there.');
    // -o needs an audio extension (checked first), so the text file itself carries one here.
    writeFileSync(A('say.wav'), 'Hello there.');
    for (const out of [A('say.wav'), `${tmp.dir}/sub/../say.wav`]) {
      const r = await tts(['-f', A('say.wav'), '-o', out]);
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(/stemkit: the output .*say\.wav \(of the text\) is (an input of this run|the input .*say\.wav \(the same file\)); refusing to overwrite it/);
    }
    symlinkSync(A('t.txt'), A('t-link.wav'));
    linkSync(A('t.txt'), A('t-hard.flac'));
    for (const out of [A('t-link.wav'), A('t-hard.flac')]) {
      const r = await tts(['-f', A('t.txt'), '-o', out]);
      expect(r.code).toBe(64);
      expect(r.stderr).toContain(`is the input ${A('t.txt')} (the same file)`);
    }
    expect(readFileSync(A('t.txt'), 'utf8')).toBe('Hello there.');
    expect(readFileSync(A('say.wav'), 'utf8')).toBe('Hello there.');
    // The other files a run writes (subtitles) and reads (a --video clip) count too.
    writeFileSync(A('notes.srt'), '1\n00:00:00,000 --> 00:00:01,000\nHi\n');
    const subs = await tts(['-f', A('notes.srt'), '-o', A('n.wav'), '--subtitles', A('notes.srt')]);
    expect(subs.code).toBe(64);
    expect(subs.stderr).toContain(`the output ${A('notes.srt')} (of the text) is an input of this run`);
    writeFileSync(A('clip.mp4'), 'not really a video');
    const video = await tts(['Hello.', '--video', A('clip.mp4'), '-o', A('clip.mp4')]);
    expect(video.code).toBe(64);
    expect(readFileSync(A('clip.mp4'), 'utf8')).toBe('not really a video');
  });

  it('JSONL: two lines with one output, a line writing another line’s text file, a line writing the batch file', async () => {
    const cases: Array<{ name: string; lines: (jsonl: string) => object[]; msg: RegExp }> = [
      { name: 'dup', lines: () => [{ text: 'a', output: A('same.wav') }, { text: 'b', output: `${tmp.dir}/./same.wav` }], msg: /dup\.jsonl:1 and .*dup\.jsonl:2 would both write .*same\.wav/ },
      { name: 'over', lines: () => [{ file: A('t.txt'), output: A('x.wav') }, { text: 'b', output: A('t.txt') }], msg: /the output .*t\.txt \(of .*over\.jsonl:2\) is an input of this run/ },
      { name: 'self', lines: (j) => [{ text: 'a', output: j }], msg: /self\.jsonl \(of .*self\.jsonl:1\) is an input of this run/ },
    ];
    for (const c of cases) {
      const jsonl = A(`${c.name}.jsonl`);
      writeFileSync(jsonl, c.lines(jsonl).map((l) => JSON.stringify(l)).join('\n'));
      const before = readFileSync(jsonl, 'utf8');
      const r = await tts(['--jsonl', jsonl]);
      expect(r.code, c.name).toBe(64);
      expect(r.stderr, c.name).toMatch(c.msg);
      expect(readFileSync(jsonl, 'utf8')).toBe(before);
    }
    expect(readFileSync(A('t.txt'), 'utf8')).toBe('Hello there.');
  });
});

describe('eval --keep', () => {
  it('--keep naming the reference folder is refused before any separation; the references stay', async () => {
    mkdirSync(A('refs/track1'), { recursive: true });
    await writeWav(A('refs/track1/mixture.wav'), sines(11025, 44100, 2, [220, 880]));
    await writeWav(A('refs/track1/vocals.wav'), sines(11025, 44100, 2, [880]));
    const before = md5(A('refs/track1/vocals.wav'));
    const r = await runCli(['eval', A('refs'), '--model', ident, '--keep', A('refs')], { env, cwd: tmp.dir });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`the output ${A('refs/track1/vocals.wav')} (of ${A('refs/track1/mixture.wav')}) is an input of this run`);
    expect(md5(A('refs/track1/vocals.wav'))).toBe(before);
    expect(readdirSync(A('refs/track1')).sort()).toEqual(['mixture.wav', 'vocals.wav']);
  });
});

describe('template fields and names', () => {
  it('{dir} is the folder relative to the root (empty at the root), {trackext} the extension', () => {
    expect(inputFields('/m/album/disc1/t.flac', '/m/album')).toEqual({ track: 't', trackext: 'flac', dir: 'disc1' });
    expect(inputFields('/m/album/t.flac', '/m/album')).toEqual({ track: 't', trackext: 'flac', dir: '' });
    expect(inputFields('/m/album/a/b/t', '/m/album')).toEqual({ track: 't', trackext: '', dir: 'a/b' });
    const f = { track: 't', stem: 'vocals', ext: 'wav', model: 'm' };
    expect(outputPath('/o', '{dir}/{track}/{stem}.{ext}', { ...f, dir: '' })).toBe('/o/t/vocals.wav');
    expect(outputPath('/o', '{dir}/{track}/{stem}.{ext}', { ...f, dir: 'a/..x/.h' })).toBe('/o/a/x/h/t/vocals.wav');
    expect(outputPath('/o', '{track}.{trackext}_{stem}.{ext}', { ...f, trackext: 'mp3' })).toBe('/o/t.mp3_vocals.wav');
  });

  it('long non-ASCII names are cut by bytes (never ENAMETOOLONG), whole characters only', async () => {
    // 80 characters = 240 bytes: a valid file name (≤ 255 bytes), but "<name>_vocals.wav" plus a temp suffix is
    // not; cutting at 200 characters (as before) kept all 240 bytes and failed with ENAMETOOLONG (exit 70).
    const name = '日本語の曲名歌詞'.repeat(10);
    mkdirSync(A('long'), { recursive: true });
    await writeWav(A('long/short.wav'), sines(11025, 44100, 2, [440]));
    renameSync(A('long/short.wav'), A(`long/${name}.wav`));
    const r = await sep([A(`long/${name}.wav`), '-o', A('o9'), '--filename', '{track}_{stem}.{ext}']);
    expect(r.code).toBe(0);
    const [out] = readdirSync(A('o9')).filter((n) => n.endsWith('vocals.wav'));
    expect(Buffer.byteLength(out!, 'utf8')).toBeLessThanOrEqual(MAX_COMPONENT_BYTES);
    expect(out!.startsWith('日本語の曲名')).toBe(true);
    expect(out!.endsWith('.wav')).toBe(true);
    // A cut never leaves half a character (U+FFFD would show one).
    expect(out).not.toContain('\uFFFD');
  });
});

describe('output manifest: a model switch never counts another model’s outputs as its own', () => {
  it('same model → skipped; other model or options → redone with a warning; unrecorded outputs → left with a warning', async () => {
    const out = A('o10');
    const vocals = join(out, 'song/vocals.wav');
    expect((await sep([A('song.wav'), '-o', out])).code).toBe(0);
    const again = await sep([A('song.wav'), '-o', out, '--json']);
    expect(again.json().find((x) => x['type'] === 'file')).toMatchObject({ status: 'skipped', skipReason: 'done' });
    const identSum = md5(vocals);

    const other = await sep([A('song.wav'), '-o', out, '--json'], gain3);
    expect(other.json().find((x) => x['type'] === 'file')).toMatchObject({ status: 'ok' });
    expect(other.stderr).toContain('replacing outputs written by ident (this run: gain3)');
    expect(md5(vocals)).not.toBe(identSum);

    const overlap = await sep([A('song.wav'), '-o', out, '--overlap', '0.5'], gain3);
    expect(overlap.stderr).toContain('replacing outputs written by gain3 with other options (this run: gain3)');
    expect(overlap.stdout).toContain('1 ok, 0 skipped');

    // An older stemkit (no manifest) or a hand-edited file: not claimed, not overwritten, said so.
    unlinkSync(join(out, 'song', MANIFEST_NAME));
    const stamp = statSync(vocals).mtimeMs;
    const legacy = await sep([A('song.wav'), '-o', out, '--json'], gain3);
    expect(legacy.json().find((x) => x['type'] === 'file')).toMatchObject({ status: 'skipped', skipReason: 'unverified' });
    expect(legacy.stderr).toMatch(/outputs exist but nothing records which model wrote them \(vocals\.wav, instrumental\.wav|instrumental\.wav, vocals\.wav/);
    expect(statSync(vocals).mtimeMs).toBe(stamp);
    const forced = await sep([A('song.wav'), '-o', out, '--force'], gain3);
    expect(forced.code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'song', MANIFEST_NAME), 'utf8')).files['vocals.wav'].model).toBe('gain3');
    rmSync(out, { recursive: true });
    expect(basename(vocals)).toBe('vocals.wav');
  });
});
