/**
 * doctor's checks as data, without the CLI (src/doctor/doctor.ts): a tool that is not there is `missing`
 * with what it affects, the CPU provider really runs the probe model, an uninstalled CUDA provider is
 * `missing` with the install command, an absent cache is reported as such. Nothing throws.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { collectDoctorReport } from '../../src/doctor/doctor.js';
import { cudaProviderInstalled } from '../../src/runtime/onnx.js';
import { HAS_ESPEAK } from '../helpers/tts-fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stemkit-doctor-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('collectDoctorReport', () => {
  it('returns every check as typed data: missing ffmpeg, a CPU provider that runs, the cache and config', async () => {
    const missing = join(dir, 'no-such-ffmpeg');
    const cache = join(dir, 'cache');
    const { config } = resolveConfig({ env: {}, flags: { device: 'cpu', threads: '1', cacheDir: cache, profile: 'small' }, file: { path: join(dir, 'x.json'), config: { ffmpegPath: missing } }, cores: 2, homeDir: dir });
    const r = await collectDoctorReport({ config, configFile: join(dir, 'x.json'), providers: ['cpu', 'cuda'] });
    expect(r.type).toBe('doctor');
    expect(r.node).toBe(process.version);
    expect(r.platform).toBe(`${process.platform}-${process.arch}`);
    const ffmpeg = r.tools.find((t) => t.name === 'ffmpeg')!;
    expect(ffmpeg).toEqual({
      name: 'ffmpeg',
      command: missing,
      status: 'missing',
      detail: `not found (${missing})`,
      affects: 'decoding anything but WAV (mp3, flac, m4a, video), writing flac/mp3/opus/ogg/m4a, and video remux',
    });
    const espeak = r.tools.find((t) => t.name === 'espeak-ng')!;
    expect(espeak.status).toBe(HAS_ESPEAK ? 'ok' : 'missing');
    if (HAS_ESPEAK) expect(espeak.version).toBe(/text-to-speech:\s*(\S+)/.exec(spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' }).stdout)?.[1]);
    expect(r.providers.map((p) => p.provider)).toEqual(['cpu', 'cuda']);
    expect(r.providers[0]).toMatchObject({ provider: 'cpu', present: true, initialises: true, status: 'ok' });
    expect(r.providers[0]!.detail).toMatch(/^a test model ran on cpu in \d+\.\d\d s$/);
    if (!cudaProviderInstalled()) {
      expect(r.providers[1]).toMatchObject({ provider: 'cuda', present: false, initialises: false, status: 'missing' });
      expect(r.providers[1]!.hint).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    }
    expect(r.cache).toEqual({ dir: cache, exists: false, totalBytes: 0, entries: [] });
    // The library reports the config in use; the CPU sentence is the CLI's.
    expect(r.config).toEqual({ file: join(dir, 'x.json'), profile: 'small', device: 'cpu', cpuThreads: 1 });
  });
});
