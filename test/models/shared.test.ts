/**
 * End to end with the real pretrained GTCRN and DTLN files from the shared folder: import, offline use,
 * verification against the registry's pinned checksums, and a download of the real bytes through a loopback mirror.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureModel } from '../../src/models/ensure.js';
import { readManifest } from '../../src/models/cache.js';
import { runCli } from '../helpers/cli-run.js';
import { sha256, startTestServer, type TestServer } from '../helpers/models-server.js';
import { modelsConfig, tempCacheDir } from '../helpers/models-config.js';

const shared = process.env['STEMKIT_SHARED_DIR'];

describe.skipIf(!shared)('real GTCRN / DTLN files', () => {
  const models = join(shared ?? '', 'models');
  let cache: string;
  const env = (extra: Record<string, string> = {}) => ({ HOME: '/home/test', NO_COLOR: '1', STEMKIT_CACHE_DIR: cache, ...extra });
  beforeEach(() => {
    cache = tempCacheDir();
  });

  it('the shared files carry the checksums the registry pins (shared/models/README.md)', () => {
    expect(sha256(readFileSync(join(models, 'gtcrn', 'gtcrn_simple.onnx')))).toBe('b4718df6228e7bdf1a8a435cf98f838636eb2fd331acabf86ba87c5192ebcb87');
    expect(sha256(readFileSync(join(models, 'dtln', 'model_1.onnx')))).toBe('22b91cae3855e5a0620e66a917ca6c82c58db0e842c770f58d86751c5e8d4ae3');
    expect(sha256(readFileSync(join(models, 'dtln', 'model_2.onnx')))).toBe('e20c92f9233fccf29cddf86970d0d0161a03aebccc26d6f4d5639c4d5ec2e639');
  });

  it('models import (file and folder), then --offline pull, verify and ensureModel work without a network', async () => {
    const a = await runCli(['models', 'import', 'gtcrn', join(models, 'gtcrn', 'gtcrn_simple.onnx')], { env: env() });
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(`ok   gtcrn/gtcrn_simple.onnx (523 KB, sha256 matches the registry)\ngtcrn is installed in ${join(cache, 'gtcrn')}\n`);
    const b = await runCli(['models', 'import', 'dtln', join(models, 'dtln'), '--json'], { env: env() });
    expect(b.code).toBe(0);
    expect(b.json()[0]).toMatchObject({
      type: 'import', id: 'dtln', installed: ['fp32'], missing: [],
      files: [expect.objectContaining({ name: 'model_1.onnx', size: 1458237, checksum: 'registry' }), expect.objectContaining({ name: 'model_2.onnx', size: 2510010, checksum: 'registry' })],
    });

    // --offline: no network, and both models are there. A mirror that does not exist proves nothing was fetched.
    const pull = await runCli(['models', 'pull', 'gtcrn', 'dtln', '--offline', '--json'], { env: env({ STEMKIT_MODEL_MIRROR: 'http://127.0.0.1:9' }) });
    expect(pull.code).toBe(0);
    expect(pull.json().map((r) => [r['id'], r['status']])).toEqual([['gtcrn', 'ok'], ['dtln', 'ok']]);
    const kokoro = await runCli(['models', 'pull', 'kokoro', '--offline'], { env: env() });
    expect(kokoro.code).toBe(69);
    expect(kokoro.stderr).toContain('https://github.com/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0/kokoro-v1.0.onnx');

    const verify = await runCli(['models', 'verify'], { env: env() });
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('ok   dtln (2 files, pinned sha256)');
    expect(verify.stdout).toContain('ok   gtcrn (1 file, pinned sha256)');

    const m = await ensureModel('dtln', { config: modelsConfig(cache, { offline: true }) });
    expect(m.paths).toEqual({ stage1: join(cache, 'dtln', 'model_1.onnx'), stage2: join(cache, 'dtln', 'model_2.onnx') });
    const manifest = await readManifest(join(cache, 'dtln'), 'dtln');
    expect(manifest.files['model_2.onnx']).toMatchObject({ checksum: 'registry', from: `import:${join(models, 'dtln', 'model_2.onnx')}` });
  });

  it('refuses the unsimplified gtcrn.onnx as gtcrn (size differs from the pinned file)', async () => {
    const r = await runCli(['models', 'import', 'gtcrn', join(models, 'gtcrn', 'gtcrn.onnx')], { env: env() });
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(`stemkit: ${join(models, 'gtcrn', 'gtcrn.onnx')} has 352084 bytes; gtcrn's gtcrn_simple.onnx has 535190`);
  });

  describe('download of the real bytes through a loopback mirror', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer();
    });
    afterAll(async () => {
      await server.close();
    });
    it('verifies the pinned sha256 of a real model on download', async () => {
      const path = '/breizhn/DTLN/1de1f15a8b5b7e1c44905618ff2ef70ca8277fbc/pretrained_model';
      server.route(`${path}/model_1.onnx`, { kind: 'cut', body: readFileSync(join(models, 'dtln', 'model_1.onnx')), after: 700_000, times: 1 });
      server.route(`${path}/model_2.onnx`, { kind: 'file', body: readFileSync(join(models, 'dtln', 'model_2.onnx')) });
      const r = await runCli(['models', 'pull', 'dtln', '--json'], { env: env({ STEMKIT_MODEL_MIRROR: server.url }) });
      expect(r.code).toBe(0);
      // The first transfer of model_1 was cut at 700,000 bytes and resumed from there by the automatic retry.
      expect(server.requests.map((q) => [q.path.split('/').pop(), q.range])).toEqual([
        ['model_1.onnx', undefined],
        ['model_1.onnx', 'bytes=700000-'],
        ['model_2.onnx', undefined],
      ]);
      const verify = await runCli(['models', 'verify', 'dtln'], { env: env() });
      expect(verify.code).toBe(0);
    });
  });
});
