import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listModels } from '../../src/models/registry.js';
import { withDownloadRates } from '../../src/cli/commands/models.js';
import type { ProgressEvent } from '../../src/progress.js';
import { runCli } from '../helpers/cli-run.js';
import { fixtureBytes, startTestServer, type TestServer } from '../helpers/models-server.js';
import { tempCacheDir } from '../helpers/models-config.js';

const VOICE = 'en_US-lessac-medium';
const ONNX_PATH = '/rhasspy/piper-voices/resolve/v1.0.0/en/en_US/lessac/medium/en_US-lessac-medium.onnx';
const onnxBody = fixtureBytes(150_000, 'cli-voice');

let server: TestServer;
let cache: string;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  cache = tempCacheDir();
  server.requests.length = 0;
  server.route(ONNX_PATH, { kind: 'file', body: onnxBody });
  server.route(`${ONNX_PATH}.json`, { kind: 'file', body: Buffer.from('{}') });
});
const env = (extra: Record<string, string> = {}) => ({ HOME: '/home/test', NO_COLOR: '1', STEMKIT_CACHE_DIR: cache, ...extra });

describe('stemkit models', () => {
  it('list --json: one record per model with install state, size and license', async () => {
    const r = await runCli(['models', 'list', '--json'], { env: env() });
    expect(r.code).toBe(0);
    const recs = r.json();
    expect(recs).toHaveLength(listModels().length);
    expect(recs.find((m) => m['id'] === 'gtcrn')).toMatchObject({
      type: 'model', task: 'separate', installed: [], sizeBytes: 535190, license: 'MIT', stems: ['speech', 'noise'], downloadable: true, dir: join(cache, 'gtcrn'),
    });
    expect(recs.find((m) => m['id'] === 'htdemucs')).toMatchObject({
      downloadable: true,
      sizeBytes: null,
      precisions: ['fp32', 'fp16'],
      files: [expect.objectContaining({ name: 'htdemucs.onnx', role: 'model' }), expect.objectContaining({ name: 'htdemucs_fp16weights.onnx', role: 'model' })],
    });
    expect((recs.find((m) => m['id'] === 'dtln')!['files'] as Array<{ url: string }>).map((f) => f.url)).toEqual([
      'https://raw.githubusercontent.com/breizhn/DTLN/1de1f15a8b5b7e1c44905618ff2ef70ca8277fbc/pretrained_model/model_1.onnx',
      'https://raw.githubusercontent.com/breizhn/DTLN/1de1f15a8b5b7e1c44905618ff2ef70ca8277fbc/pretrained_model/model_2.onnx',
    ]);
    expect(recs.find((m) => m['id'] === 'classic')).toMatchObject({ embedded: true, downloadable: true });
    expect(recs.find((m) => m['id'] === 'kokoro')).toMatchObject({ precisions: ['fp32', 'fp16', 'int8'], sizeBytes: 325532387 + 26124436 });
  });

  it('list --task tts prints a table of TTS models only', async () => {
    const r = await runCli(['models', 'list', '--task', 'tts'], { env: env() });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^model\s+task\s+installed\s+size\s+license\s+stems \/ voices$/);
    expect(lines.find((l) => l.startsWith('kokoro '))).toMatch(/^kokoro\s+tts\s+-\s+335 MB\s+Apache-2.0\s+54 voices$/);
    expect(r.stdout).not.toContain('gtcrn');
  });

  it('pull downloads through --mirror, then list, path, verify and rm see it', async () => {
    const pull = await runCli(['models', 'pull', VOICE, '--mirror', server.url, '--json'], { env: env() });
    expect(pull.code).toBe(0);
    expect(pull.json()).toEqual([
      {
        type: 'pull', id: VOICE, status: 'ok', precision: 'fp32', dir: join(cache, VOICE),
        paths: { model: join(cache, VOICE, `${VOICE}.onnx`), config: join(cache, VOICE, `${VOICE}.onnx.json`) },
      },
    ]);
    expect(pull.stderr).toContain('"stage":"download"');

    const list = await runCli(['models', 'list', '--installed'], { env: env() });
    expect(list.stdout.split('\n').filter((l) => l.startsWith(VOICE))).toHaveLength(1);
    expect(list.stdout).toMatch(new RegExp(`^${VOICE}\\s+tts\\s+fp32\\s`, 'm'));

    const path = await runCli(['models', 'path', 'lessac'], { env: env() });
    expect(path.stdout).toBe(`${join(cache, VOICE)}\n`);

    const ok = await runCli(['models', 'verify'], { env: env() });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`ok   ${VOICE} (2 files, recorded sha256)`);

    const file = join(cache, VOICE, `${VOICE}.onnx`);
    const b = readFileSync(file);
    b[5] = b[5]! ^ 1;
    writeFileSync(file, b);
    const bad = await runCli(['models', 'verify', VOICE], { env: env() });
    expect(bad.code).toBe(65);
    expect(bad.stdout).toContain(`FAIL ${VOICE}`);
    expect(bad.stderr).toContain(`stemkit: 1 model failed verification: ${VOICE}`);
    expect(bad.stderr).toContain(`hint: re-download with \`stemkit models pull --force ${VOICE}\``);

    const rm = await runCli(['models', 'rm', VOICE], { env: env() });
    expect(rm.code).toBe(0);
    // 150,000 + 2 bytes of files plus a manifest of well under 1 KB: 147.x KB, printed without decimals above 100.
    expect(rm.stdout).toBe(`removed ${VOICE} (147 KB)\n`);
    expect(existsSync(join(cache, VOICE))).toBe(false);
  });

  it('pull with STEMKIT_OFFLINE=1 exits 69 without a request', async () => {
    const r = await runCli(['models', 'pull', VOICE], { env: env({ STEMKIT_OFFLINE: '1', STEMKIT_MODEL_MIRROR: server.url }) });
    expect(r.code).toBe(69);
    expect(r.stderr).toContain(`stemkit: model ${VOICE} is not installed and offline mode is on`);
    expect(r.stderr).toContain(`stemkit models import ${VOICE} <dir>`);
    expect(server.requests).toHaveLength(0);
  });

  it('pull of an import-only model and of an unknown id', async () => {
    const r = await runCli(['models', 'pull', 'htdemucs'], { env: env() });
    expect(r.code).toBe(69);
    expect(r.stderr).toContain('stemkit models import htdemucs <file>');
    const u = await runCli(['models', 'pull', 'kokoroo'], { env: env() });
    expect(u.code).toBe(64);
    expect(u.stderr).toContain('stemkit: unknown model "kokoroo"; did you mean "kokoro"?');
  });

  it('pull of several ids reports each and exits with the first failure', async () => {
    const r = await runCli(['models', 'pull', 'htdemucs', VOICE, '--mirror', server.url, '--json'], { env: env() });
    expect(r.code).toBe(69);
    expect(r.json().map((x) => [x['id'], x['status']])).toEqual([
      ['htdemucs', 'failed'],
      [VOICE, 'ok'],
    ]);
  });
});

describe('stemkit models pull, interrupted', () => {
  it('Ctrl-C mid-download exits 130 and keeps a resumable part; the next pull resumes it', async () => {
    server.route(ONNX_PATH, { kind: 'stall', body: onnxBody, after: 40_000 });
    const ac = new AbortController();
    const run = runCli(['models', 'pull', VOICE, '--mirror', server.url], { env: env(), signal: ac.signal });
    const part = join(cache, VOICE, `${VOICE}.onnx.part`);
    // Abort once the first 40 kB have reached the part file.
    while (!existsSync(part) || readFileSync(part).length < 40_000) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    const r = await run;
    expect(r.code).toBe(130);
    expect(readFileSync(part).length).toBe(40_000);
    expect(existsSync(join(cache, VOICE, `${VOICE}.onnx`))).toBe(false);
    expect(existsSync(join(cache, VOICE, '.lock'))).toBe(false);

    server.route(ONNX_PATH, { kind: 'file', body: onnxBody });
    const again = await runCli(['models', 'pull', VOICE, '--mirror', server.url], { env: env() });
    expect(again.code).toBe(0);
    expect(server.requests.filter((q) => q.path === ONNX_PATH).map((q) => q.range)).toEqual([undefined, 'bytes=40000-']);
    expect(readFileSync(join(cache, VOICE, `${VOICE}.onnx`)).equals(onnxBody)).toBe(true);
  });
});

describe('withDownloadRates', () => {
  it('adds size, rate and ETA to download progress', () => {
    const out: ProgressEvent[] = [];
    let t = 0;
    const cb = withDownloadRates((e) => out.push(e), () => t);
    const base = { stage: 'download' as const, file: 'm/f', unit: 'bytes', total: 10 * 1048576 };
    cb({ ...base, status: 'start', done: 0 });
    t = 1000;
    cb({ ...base, status: 'progress', done: 1048576 });
    t = 2000;
    cb({ ...base, status: 'progress', done: 2 * 1048576 });
    // 1 MiB per second exactly, so the moving average is exact too; 8 MiB left → 8 s.
    expect(out.map((e) => e.message)).toEqual([undefined, '1.0 MB of 10.0 MB, 1.0 MB/s, ETA 9s', '2.0 MB of 10.0 MB, 1.0 MB/s, ETA 8s']);
  });
});
