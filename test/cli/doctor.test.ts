import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseNvidiaSmi, parseToolVersion } from '../../src/doctor/doctor.js';
import type { DoctorReport } from '../../src/cli/commands/doctor.js';
import { PROBE_MODEL_FILE, buildProbeModel } from '../../src/onnx/probe.js';
import { runCli } from '../helpers/cli-run.js';

describe('the probe model', () => {
  it('models/doctor-probe.onnx is what buildProbeModel() generates (rebuild: node scripts/build-probe-model.mjs)', () => {
    const committed = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../models', PROBE_MODEL_FILE));
    expect(Buffer.from(buildProbeModel()).equals(committed)).toBe(true);
  });
});

describe('doctor parsing', () => {
  it.each([
    ['ffmpeg', 'ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024 the FFmpeg developers\nbuilt with gcc', '5.1.6-0+deb12u1'],
    ['ffprobe', 'ffprobe version n7.0 Copyright (c) 2007-2024', 'n7.0'],
    ['espeak-ng', 'eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x86_64-linux-gnu/espeak-ng-data\n', '1.51'],
    ['ffmpeg', 'something else', undefined],
  ] as const)('%s: %j', (name, text, want) => {
    expect(parseToolVersion(name, text)).toBe(want);
  });

  it('reads nvidia-smi CSV rows and skips junk', () => {
    expect(parseNvidiaSmi('0, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n1, NVIDIA A10, 23028, 550.54.15\n\nNo devices were found\n')).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, driver: '550.54.15' },
      { index: 1, name: 'NVIDIA A10', memoryMiB: 23028, driver: '550.54.15' },
    ]);
  });
});

describe('stemkit doctor', () => {
  it('--json reports node, onnxruntime, a CPU session that really ran, tools and config; exit 0 with ffmpeg missing', async () => {
    const r = await runCli(['doctor', '--json'], { env: { HOME: '/h', FFMPEG_PATH: '/nonexistent/ffmpeg', STEMKIT_CACHE_DIR: '/nonexistent/cache' }, cores: 2 });
    expect(r.code).toBe(0);
    const recs = r.json();
    expect(recs).toHaveLength(1);
    const rep = recs[0] as unknown as DoctorReport;
    expect(rep.type).toBe('doctor');
    expect(rep.node).toBe(process.version);
    expect(rep.onnxruntime).toMatch(/^\d+\.\d+\.\d+/);
    const cpu = rep.providers.find((p) => p.provider === 'cpu');
    expect(cpu).toMatchObject({ present: true, initialises: true, status: 'ok' });
    expect(rep.providers.map((p) => p.provider)).toEqual(['cpu', 'cuda', 'webgpu']);
    expect(rep.tools[0]).toMatchObject({ name: 'ffmpeg', command: '/nonexistent/ffmpeg', status: 'missing', detail: 'not found (/nonexistent/ffmpeg)' });
    expect(rep.tools[0]!.affects).toContain('decoding anything but WAV');
    expect(rep.cache).toEqual({ dir: '/nonexistent/cache', exists: false, totalBytes: 0, entries: [] });
    expect(rep.config).toMatchObject({ file: null, profile: 'medium', cpuThreads: 1, cpu: 'CPU: 2 cores available, using 1 thread (auto, not a terminal: profile medium, limit: 4, usage limit 0.7)' });
  });
});

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// The built CLI probes GPU providers in a child process; needs the build (npm test builds first).
describe.skipIf(!existsSync(join(root, 'dist', 'cli', 'commands', 'doctor.js')))('stemkit doctor from the build', () => {
  it('probes webgpu in a child process and reports its answer, not a protocol failure; stdout stays one JSON object', () => {
    const out = execFileSync(process.execPath, [join(root, 'bin', 'stemkit.js'), 'doctor', '--json'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const rep = JSON.parse(lines[0]!) as DoctorReport;
    const webgpu = rep.providers.find((p) => p.provider === 'webgpu')!;
    if (webgpu.status === 'ok') expect(webgpu.detail).toMatch(/^a test model ran on webgpu in \d+\.\d\d s$/);
    else expect(webgpu.detail).not.toMatch(/probe process|no answer|onnxruntime_src/);
    expect(rep.providers.find((p) => p.provider === 'cpu')!.status).toBe('ok');
  });
});
