/**
 * Exit codes that tell the truth, names, and leftovers: a full disk is 73 on every write path (a real 2 MiB
 * tmpfs), an unreadable subfolder fails alone (66) while the batch goes on (run as an unprivileged user), a FIFO,
 * a device and a symlink loop are named, "" is never "this folder", empty folders and unsearched subfolders are
 * warnings, symlinked files are followed, control characters never reach the terminal raw, a config module
 * that never resolves is 78, spools of a `kill -9`ed run are swept by the next one, and a FIFO in the runtime
 * folder does not hang a job. Real files, real processes (node bin/stemkit.js), real mounts.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, OutputError, InputError, fromSystemError } from '../../src/errors.js';
import { mdxModel, mdxSidecar } from '../helpers/separate-models.js';
import { sines, tempDir, whiteNoise, writeWav } from '../helpers/separate-fixtures.js';
import { runCli } from '../helpers/cli-run.js';

const tmp = tempDir('stemkit-exit-');
const env = { HOME: tmp.dir, NO_COLOR: '1', STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'), STEMKIT_CACHE_DIR: join(tmp.dir, 'cache') };
const A = (name: string): string => join(tmp.dir, name);
const ident = A('ident.onnx');
const SIDE = { compensate: 1.0, mdx_dim_f_set: 1024, mdx_dim_t_set: 5, mdx_n_fft_scale_set: 2048, primary_stem: 'Vocals' };
const sep = (args: string[]) => runCli(['separate', '--model', ident, ...args], { env, cwd: tmp.dir });
const BIN = join(process.cwd(), 'bin/stemkit.js');
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  mdxModel(ident, 1024, 32, 1);
  mdxSidecar(ident, SIDE);
  await writeWav(A('song.wav'), sines(22050, 44100, 2, [440]));
});
afterAll(() => tmp.cleanup());

describe('fromSystemError (the error layer)', () => {
  const err = (code: string, syscall: string, path = '/x/y'): NodeJS.ErrnoException => Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
  it('maps full disks to 73, unreadable inputs to 66, and leaves other values alone', () => {
    for (const code of ['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS']) {
      const e = fromSystemError(err(code, 'write'));
      expect(e, code).toBeInstanceOf(OutputError);
      expect((e as OutputError).exitCode).toBe(ExitCode.cantCreate);
    }
    expect(fromSystemError(err('EACCES', 'scandir'))).toBeInstanceOf(InputError);
    expect(fromSystemError(err('EACCES', 'open'), { role: 'input' })).toBeInstanceOf(InputError);
    expect((fromSystemError(err('EACCES', 'mkdir')) as OutputError).message).toBe('cannot write /x/y: permission denied');
    const plain = new Error('boom');
    expect(fromSystemError(plain)).toBe(plain);
  });
});

describe.skipIf(!isRoot)('a full disk is 73 on every write path (2 MiB tmpfs)', () => {
  const mnt = A('full');
  let mounted = false;
  beforeAll(async () => {
    mkdirSync(mnt, { recursive: true });
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status === 0;
    // 6 s of stereo noise: each stem is ~2 MB as 16-bit WAV and ~4 MB as a float spool, so every path overflows.
    await writeWav(A('big.wav'), { sampleRate: 44100, channels: [whiteNoise(264600, 0.1, 1), whiteNoise(264600, 0.1, 2)] }, 16);
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [mnt]);
  });
  for (const args of [['--clip', 'rescale'], ['--clip', 'none'], ['--clip', 'clamp', '--bits', '24'], ['--format', 'flac']]) {
    it(args.join(' '), async (ctx) => {
      if (!mounted) ctx.skip();
      const out = join(mnt, args.join('_'));
      const r = await sep([A('big.wav'), '-o', out, ...args, '--json']);
      expect(r.code).toBe(73);
      const rec = r.json().find((x) => x['type'] === 'file')!;
      expect((rec['error'] as { exitCode: number; message: string }).message).toMatch(/no space left|write failed \(ENOSPC\)|could not encode/);
      // Nothing under a final name, no temp file left behind.
      const left = existsSync(out) ? readdirSync(out, { recursive: true }).map(String) : [];
      expect(left.filter((f) => /\.(wav|flac)$|\.tmp\./.test(f))).toEqual([]);
      spawnSync('rm', ['-rf', out]);
    });
  }
});

describe.skipIf(!isRoot)('an unreadable subfolder fails alone (66); the rest of the -r batch runs (as user nobody)', () => {
  it('album/locked (mode 000) and album/readable.wav', async () => {
    const base = A('perm');
    mkdirSync(join(base, 'album/locked'), { recursive: true });
    await writeWav(join(base, 'album/readable.wav'), sines(11025, 44100, 2, [440]));
    await writeWav(join(base, 'album/locked/hidden.wav'), sines(11025, 44100, 2, [440]));
    execFileSync('cp', [ident, ident.replace('.onnx', '.json'), base]);
    execFileSync('chown', ['-R', 'nobody:nogroup', base]);
    chmodSync(join(base, 'album/locked'), 0o000);
    chmodSync(tmp.dir, 0o755);
    const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, 'separate', '--model', join(base, 'ident.onnx'), '-r', join(base, 'album'), '-o', join(base, 'out')], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'], HOME: base, NO_COLOR: '1', STEMKIT_RUNTIME_DIR: join(base, 'run'), STEMKIT_CACHE_DIR: join(base, 'cache') },
      cwd: base,
    });
    expect(r.stdout).toContain(`✗ ${join(base, 'album/locked')}: cannot read this folder (permission denied)`);
    expect(r.stdout).toContain(`✓ ${join(base, 'album/readable.wav')}`);
    expect(r.stdout).toContain('2 files: 1 ok, 0 skipped, 1 failed');
    expect(r.status).toBe(66);
    // The other side: an output folder the user may not write is 73 naming it, not 70.
    mkdirSync(join(base, 'ro'), { mode: 0o755 });
    chownSync(join(base, 'ro'), 0, 0);
    const w = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, 'separate', '--model', join(base, 'ident.onnx'), join(base, 'album/readable.wav'), '-o', join(base, 'ro/out')], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'], HOME: base, NO_COLOR: '1', STEMKIT_RUNTIME_DIR: join(base, 'run'), STEMKIT_CACHE_DIR: join(base, 'cache') },
      cwd: base,
    });
    expect(w.status).toBe(73);
    expect(w.stdout).toMatch(new RegExp(`✗ .*readable\\.wav: .*${join(base, 'ro/out')}.*permission denied`));
    chmodSync(join(base, 'album/locked'), 0o755);
  });
});

describe('inputs that are not files, and "" ', () => {
  it('a FIFO, a character device and a symlink loop each get their own message (66), not "not found"', async () => {
    execFileSync('mkfifo', [A('pipe.wav')]);
    symlinkSync(A('loop-b.wav'), A('loop-a.wav'));
    symlinkSync(A('loop-a.wav'), A('loop-b.wav'));
    const cases: Array<[string, string]> = [
      [A('pipe.wav'), 'is a named pipe (FIFO), not an audio file'],
      ['/dev/null', 'is a character device, not an audio file'],
      [A('loop-a.wav'), 'is a symbolic link loop (it never reaches a file)'],
    ];
    for (const [input, text] of cases) {
      const r = await sep([input, '-o', A('out-odd')]);
      expect(r.code, input).toBe(66);
      expect(r.stdout, input).toContain(`✗ ${input}: ${text}`);
      expect(r.stdout + r.stderr, input).not.toContain('not found');
    }
  });

  it('"" is refused (64) alone or among other inputs, and so is -o ""', async () => {
    for (const args of [[''], [A('song.wav'), ' '], [A('song.wav'), '-o', '']]) {
      const r = await sep(args);
      expect(r.code, JSON.stringify(args)).toBe(64);
      expect(r.stderr).toMatch(/is an empty path \(""\)/);
    }
    expect(existsSync(join(tmp.dir, 'separated'))).toBe(false);
  });
});

describe('folders', () => {
  beforeAll(async () => {
    mkdirSync(A('empty'), { recursive: true });
    mkdirSync(A('nested/sub1'), { recursive: true });
    await writeWav(A('nested/sub1/x.wav'), sines(11025, 44100, 2, [440]));
    mkdirSync(A('links'), { recursive: true });
    symlinkSync(A('song.wav'), A('links/linked.wav'));
    symlinkSync(A('nowhere.wav'), A('links/broken.wav'));
  });

  it('an empty folder alone is a warning and exit 0; among files, a warning and the files run', async () => {
    const alone = await sep([A('empty'), '-o', A('out-e')]);
    expect(alone.code).toBe(0);
    expect(alone.stderr).toContain(`warning: ${A('empty')}: no audio or video files in this folder`);
    expect(alone.stdout).toContain('0 files: nothing to separate');
    const mixed = await sep([A('empty'), A('song.wav'), '-o', A('out-e')]);
    expect(mixed.code).toBe(0);
    expect(mixed.stderr).toContain('no audio or video files in this folder');
    expect(mixed.stdout).toContain('1 file: 1 ok');
  });

  it('a folder with subfolders but no -r says so', async () => {
    const r = await sep([A('nested'), '-o', A('out-n')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: ${A('nested')}: 1 subfolder not searched (sub1); add -r (--recursive) to include it`);
    expect((await sep([A('nested'), '-r', '-o', A('out-n')])).stdout).toContain('1 file: 1 ok');
  });

  it('symlinked files inside a folder are followed; a broken link is a warning', async () => {
    const r = await sep([A('links'), '-o', A('out-l')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`✓ ${A('links/linked.wav')}`);
    expect(r.stderr).toContain(`warning: ${A('links/broken.wav')}: skipped, a broken symbolic link`);
  });
});

describe('control characters in names never reach the terminal raw', () => {
  it('ESC, CR, BEL and a bidi override in a file name are printed as escapes (stdout and stderr)', async () => {
    const name = 'evil\u001b]0;pwned\u0007\u001b[2J\rname\u202e.wav';
    await writeWav(A(name), sines(11025, 44100, 2, [440]));
    const ok = await sep([A(name), '-o', A('out-c')]);
    const missing = await sep([A(`gone-${name}`), '-o', A('out-c')]);
    for (const r of [ok, missing]) {
      expect(r.stdout + r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u202e]/);
    }
    expect(ok.stdout).toContain('evil\\x1b]0;pwned\\x07\\x1b[2J\\rname\\u202e.wav');
    expect(missing.stdout + missing.stderr).toContain('gone-evil\\x1b]0;pwned');
  });
});

describe('processes (node bin/stemkit.js)', () => {
  it('a config module whose top-level await never resolves is 78, not a silent 0', () => {
    const dir = A('hang');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"name":"h"}');
    writeFileSync(join(dir, 'stemkit.config.mjs'), 'await new Promise(() => {});\nexport default {};\n');
    const r = spawnSync(process.execPath, [BIN, 'config'], { cwd: dir, encoding: 'utf8', env: { ...env, PATH: process.env['PATH'] }, timeout: 30_000 });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain(`stemkit: cannot read config file ${join(dir, 'stemkit.config.mjs')}: it never finished loading`);
  });

  it('spools of a run killed with SIGKILL are swept by the next run into that folder', async () => {
    // 60 s of stereo noise: long enough to kill the run while its --clip rescale spools exist.
    await writeWav(A('long.wav'), { sampleRate: 44100, channels: [whiteNoise(44100 * 60, 0.1, 3), whiteNoise(44100 * 60, 0.1, 4)] }, 16);
    const out = A('out-k');
    const child = spawn(process.execPath, [BIN, 'separate', '--model', ident, A('long.wav'), '-o', out], { env: { ...env, PATH: process.env['PATH'] }, stdio: 'ignore' });
    const spools = (): string[] => (existsSync(join(out, 'long')) ? readdirSync(join(out, 'long')).filter((f) => /\.tmp\.\d+\.\d+\.f32$/.test(f)) : []);
    const t0 = Date.now();
    while (spools().length === 0 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const left = spools();
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((f) => f.includes(`.tmp.${child.pid}.`))).toBe(true);
    const again = await sep([A('long.wav'), '-o', out]);
    expect(again.code).toBe(0);
    expect(readdirSync(join(out, 'long')).filter((f) => f.includes('.tmp.'))).toEqual([]);
  }, 120_000);

  it('a FIFO, a folder and junk under slot names in the runtime folder do not hang a job', async () => {
    const run = A('run-junk');
    mkdirSync(join(run, 'slots'), { recursive: true });
    execFileSync('mkfifo', [join(run, 'slots/heavy-0.slot')]);
    mkdirSync(join(run, 'slots/heavy-1.slot'));
    writeFileSync(join(run, 'slots/heavy-2.slot'), Buffer.alloc(200_000, 7));
    const r = await runCli(['--profile', 'small', 'separate', '--model', ident, A('song.wav'), '-o', A('out-rj')], { env: { ...env, STEMKIT_RUNTIME_DIR: run }, cwd: tmp.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 file: 1 ok');
  }, 30_000);
});

// Keep ownership changes from leaking into the cleanup of other tests' files.
afterAll(() => {
  if (isRoot && existsSync(A('perm'))) chownSync(A('perm'), 0, 0);
});
