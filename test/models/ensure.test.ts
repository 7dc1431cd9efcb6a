import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BusyError, DataError, UnavailableError, UsageError } from '../../src/errors.js';
import type { LogEvent, ProgressEvent } from '../../src/progress.js';
import { isInstalled, listCache, readManifest, removeModel, verifyModel } from '../../src/models/cache.js';
import { ensureModel, importModel, resolvePrecision } from '../../src/models/ensure.js';
import { getModel, packageModelsDir } from '../../src/models/registry.js';
import { fixtureBytes, sha256, startTestServer, type TestServer } from '../helpers/models-server.js';
import { modelsConfig, tempCacheDir } from '../helpers/models-config.js';
import { buildKokoroModel, buildPiperModel } from '../helpers/tts-fixtures.js';
import { htdemucsContractD } from '../helpers/separate-models.js';

// en_US-lessac-medium has two files and no pinned size/checksum: the trust-on-first-use path.
const VOICE = 'en_US-lessac-medium';
const ONNX_PATH = '/rhasspy/piper-voices/resolve/v1.0.0/en/en_US/lessac/medium/en_US-lessac-medium.onnx';
const onnxBody = fixtureBytes(200_000, 'voice');
// Imports are checked against the model's tensor contract, so they use models built with the real contracts.
const piperBody = Buffer.from(buildPiperModel({ multiSpeaker: false }));
const kokoroBody = Buffer.from(buildKokoroModel({ ids: 'tokens', speed: 'float32' }));
const jsonBody = Buffer.from(JSON.stringify({ audio: { sample_rate: 22050 } }));
const download = { connectTimeoutMs: 2000, idleTimeoutMs: 2000, retries: 0, retryDelayMs: 1 };

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
  server.route(`${ONNX_PATH}.json`, { kind: 'file', body: jsonBody });
});

const cfg = (models: Parameters<typeof modelsConfig>[1] = {}) => modelsConfig(cache, { mirror: server.url, ...models });

async function failure(p: Promise<unknown>): Promise<Error & { code?: string; exitCode?: number; hint?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

function sleepingChild(): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  return new Promise((resolve) => {
    child.on('spawn', () =>
      resolve({
        pid: child.pid!,
        kill: () =>
          new Promise<void>((done) => {
            child.on('exit', () => done());
            child.kill('SIGKILL');
          }),
      }),
    );
  });
}

describe('ensureModel', () => {
  it('downloads a missing model through the mirror, records checksums, then serves it from the cache', async () => {
    const events: ProgressEvent[] = [];
    const m = await ensureModel(VOICE, { config: cfg(), download, onProgress: (e) => events.push(e) });
    const dir = join(cache, VOICE);
    expect(m).toEqual({
      entry: getModel(VOICE),
      dir,
      precision: 'fp32',
      paths: { model: join(dir, 'en_US-lessac-medium.onnx'), config: join(dir, 'en_US-lessac-medium.onnx.json') },
    });
    expect(readFileSync(m.paths['model']!).equals(onnxBody)).toBe(true);
    expect(server.requests.map((r) => r.path)).toEqual([ONNX_PATH, `${ONNX_PATH}.json`]);
    expect(events.filter((e) => e.status === 'done').map((e) => [e.file, e.done])).toEqual([
      [`${VOICE}/en_US-lessac-medium.onnx`, onnxBody.length],
      [`${VOICE}/en_US-lessac-medium.onnx.json`, jsonBody.length],
    ]);
    const manifest = await readManifest(dir, VOICE);
    expect(manifest.files['en_US-lessac-medium.onnx']).toMatchObject({ size: onnxBody.length, sha256: sha256(onnxBody), checksum: 'recorded', from: `${server.url}${ONNX_PATH}` });
    expect(await isInstalled(getModel(VOICE), cfg())).toBe(true);

    const again = await ensureModel(VOICE, { config: cfg(), download });
    expect(again.paths).toEqual(m.paths);
    expect(server.requests).toHaveLength(2);
  });

  it('detects a cached file changed after its checksum was recorded', async () => {
    await ensureModel(VOICE, { config: cfg(), download });
    const path = join(cache, VOICE, 'en_US-lessac-medium.onnx');
    const bytes = readFileSync(path);
    bytes[1000] = bytes[1000]! ^ 0xff;
    writeFileSync(path, bytes);
    const v = await verifyModel(getModel(VOICE), cfg());
    expect(v.ok).toBe(false);
    expect(v.files.find((f) => f.name === 'en_US-lessac-medium.onnx')).toMatchObject({
      status: 'checksum-mismatch',
      checksum: 'recorded',
      expectedSha256: sha256(onnxBody),
      actualSha256: sha256(bytes),
    });
  });

  it('re-downloads with force and warns when the upstream file changed', async () => {
    await ensureModel(VOICE, { config: cfg(), download });
    const changed = fixtureBytes(200_000, 'voice-v2');
    server.route(ONNX_PATH, { kind: 'file', body: changed });
    const logs: LogEvent[] = [];
    await ensureModel(VOICE, { config: cfg(), download, force: true, onLog: (l) => logs.push(l) });
    expect(server.requests).toHaveLength(4);
    expect(logs.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(logs.find((l) => l.level === 'warn')!.message).toMatch(/^en_US-lessac-medium\.onnx differs from the copy recorded on /);
    expect((await verifyModel(getModel(VOICE), cfg())).ok).toBe(true);
  });

  it('serialises concurrent pulls of the same model: one download, both get the files', async () => {
    // The model file is held back until one call reports that it waits for the other, so that the second call
    // cannot find the model already installed, however the two calls are scheduled on a loaded machine.
    const waits: ProgressEvent[] = [];
    let release!: () => void;
    server.route(ONNX_PATH, { kind: 'gate', body: onnxBody, after: 16, release: new Promise<void>((r) => (release = r)) });
    const onProgress = (e: ProgressEvent): void => {
      if (e.stage !== 'wait') return;
      waits.push(e);
      release();
    };
    const [a, b] = await Promise.all([
      ensureModel(VOICE, { config: cfg(), download, onProgress }),
      ensureModel(VOICE, { config: cfg(), download, onProgress }),
    ]);
    expect(a.paths).toEqual(b.paths);
    expect(server.requests.map((r) => r.path)).toEqual([ONNX_PATH, `${ONNX_PATH}.json`]);
    expect(waits[0]).toMatchObject({ status: 'start', message: `waiting for pid ${process.pid} to finish installing ${VOICE}` });
    expect((await verifyModel(getModel(VOICE), cfg())).ok).toBe(true);
    expect(existsSync(join(cache, VOICE, '.lock'))).toBe(false);
  });

  it('waits for another live process holding the lock, then reclaims it when that process dies', async () => {
    const child = await sleepingChild();
    const dir = join(cache, VOICE);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), since: new Date().toISOString() }));
    const logs: LogEvent[] = [];
    let waiting!: () => void;
    const sawWait = new Promise<void>((r) => (waiting = r));
    const p = ensureModel(VOICE, {
      config: cfg(),
      download,
      onLog: (l) => logs.push(l),
      onProgress: (e) => e.stage === 'wait' && e.status === 'start' && waiting(),
    });
    await sawWait;
    expect(server.requests).toHaveLength(0);
    await child.kill();
    const m = await p;
    expect(readFileSync(m.paths['model']!).equals(onnxBody)).toBe(true);
    expect(logs.map((l) => l.message)).toContain(`removed a stale download lock left by pid ${child.pid}`);
  });

  it('gives up waiting with BusyError (75) after the lock timeout', async () => {
    const child = await sleepingChild();
    try {
      const dir = join(cache, VOICE);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), since: '' }));
      const e = await failure(ensureModel(VOICE, { config: cfg(), download, lockTimeoutMs: 300 }));
      expect(e).toBeInstanceOf(BusyError);
      expect(e.exitCode).toBe(75);
      expect(e.hint).toBe(`retry later, or delete ${join(dir, '.lock')} if no stemkit process is running`);
    } finally {
      await child.kill();
    }
  });

  it('offline: never touches the network and names the import command', async () => {
    const e = await failure(ensureModel(VOICE, { config: cfg({ offline: true }), download }));
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.code).toBe('E_OFFLINE');
    expect(e.exitCode).toBe(69);
    expect(e.message).toBe(`model ${VOICE} is not installed and offline mode is on`);
    expect(e.hint).toContain(`fetch ${server.url}${ONNX_PATH} and ${server.url}${ONNX_PATH}.json`);
    expect(e.hint).toContain(`\`stemkit models import ${VOICE} <dir>\``);
    expect(server.requests).toHaveLength(0);
    expect(existsSync(join(cache, VOICE))).toBe(false);

    await ensureModel(VOICE, { config: cfg(), download });
    const before = server.requests.length;
    const m = await ensureModel(VOICE, { config: cfg({ offline: true }), download });
    expect(m.paths['model']).toBe(join(cache, VOICE, 'en_US-lessac-medium.onnx'));
    expect(server.requests).toHaveLength(before);
  });

  it('reports a failed download with the URL, the cache and the import command', async () => {
    server.route(`${ONNX_PATH}.json`, { kind: 'status', code: 404 });
    const e = await failure(ensureModel(VOICE, { config: cfg(), download }));
    expect(e.exitCode).toBe(69);
    expect(e.message).toBe(`cannot download en_US-lessac-medium.onnx.json: HTTP 404 Not Found (${server.url}${ONNX_PATH}.json)`);
    expect(e.hint).toContain(`cache: ${join(cache, VOICE)}/`);
    expect(e.hint).toContain(`\`stemkit models import ${VOICE} <dir>\``);
    // The file that did arrive is kept and verified; the model is not installed.
    expect(await isInstalled(getModel(VOICE), cfg())).toBe(false);
    expect(existsSync(join(cache, VOICE, 'en_US-lessac-medium.onnx.json'))).toBe(false);
    server.route(`${ONNX_PATH}.json`, { kind: 'file', body: jsonBody });
    await ensureModel(VOICE, { config: cfg(), download });
    expect(server.requests.filter((r) => r.path === ONNX_PATH)).toHaveLength(1);
  });

  it('resolves the embedded classic model to the package file', async () => {
    const path = join(packageModelsDir(), 'classic.onnx');
    if (existsSync(path)) {
      const m = await ensureModel('classic', { config: cfg({ offline: true }) });
      expect(m.paths).toEqual({ model: path });
      expect(m.dir).toBe(packageModelsDir());
    } else {
      // Before the classic model is generated the error must say so.
      const e = await failure(ensureModel('classic', { config: cfg() }));
      expect(e.code).toBe('E_MODEL_MISSING');
    }
    expect(existsSync(join(cache, 'classic'))).toBe(false);
  });
});

describe('resolvePrecision', () => {
  const kokoro = getModel('kokoro');
  const gtcrn = getModel('gtcrn');
  it('auto: fp32 on CPU, fp16 on CUDA where a variant exists', () => {
    expect(resolvePrecision(kokoro, { config: modelsConfig(cache) })).toEqual({ precision: 'fp32' });
    expect(resolvePrecision(kokoro, { config: modelsConfig(cache, {}, 'cuda') })).toEqual({ precision: 'fp16' });
    expect(resolvePrecision(gtcrn, { config: modelsConfig(cache, {}, 'cuda') })).toEqual({ precision: 'fp32' });
  });
  it('explicit requests must exist; a configured default falls back', () => {
    expect(resolvePrecision(kokoro, { requested: 'int8', config: modelsConfig(cache) })).toEqual({ precision: 'int8' });
    expect(resolvePrecision(kokoro, { suffix: 'int8', config: modelsConfig(cache) })).toEqual({ precision: 'int8' });
    expect(() => resolvePrecision(gtcrn, { requested: 'fp16', config: modelsConfig(cache) })).toThrow(UsageError);
    expect(() => resolvePrecision(kokoro, { requested: 'fp16', suffix: 'int8', config: modelsConfig(cache) })).toThrow(
      'model id asks for int8 but precision says fp16',
    );
    expect(() => resolvePrecision(kokoro, { requested: 'fp8', config: modelsConfig(cache) })).toThrow('unknown precision "fp8"');
    expect(resolvePrecision(gtcrn, { config: modelsConfig(cache, { precision: 'int8' }) })).toEqual({
      precision: 'fp32',
      fallback: 'gtcrn has no int8 variant; using fp32',
    });
  });
});

describe('importModel', () => {
  it('imports a folder, recording checksums for unpinned files', async () => {
    const src = tempCacheDir('stemkit-import-');
    writeFileSync(join(src, 'en_US-lessac-medium.onnx'), piperBody);
    writeFileSync(join(src, 'en_US-lessac-medium.onnx.json'), jsonBody);
    writeFileSync(join(src, 'unrelated.txt'), 'x');
    const r = await importModel(VOICE, [src], { config: cfg() });
    expect(r.files.map((f) => [f.name, f.checksum, f.sha256])).toEqual([
      ['en_US-lessac-medium.onnx', 'recorded', sha256(piperBody)],
      ['en_US-lessac-medium.onnx.json', 'recorded', sha256(jsonBody)],
    ]);
    expect(r.installed).toEqual(['fp32']);
    expect(r.missing).toEqual([]);
    const m = await ensureModel(VOICE, { config: cfg({ offline: true }) });
    expect(m.paths['config']).toBe(join(cache, VOICE, 'en_US-lessac-medium.onnx.json'));
  });

  it('maps a single unnamed file to the model file, and reports what is still missing', async () => {
    const src = join(tempCacheDir('stemkit-import-'), 'my-export.onnx');
    htdemucsContractD(src, [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]);
    const r = await importModel('htdemucs', [src], { config: cfg() });
    expect(r.files).toEqual([expect.objectContaining({ name: 'htdemucs.onnx', role: 'model', size: readFileSync(src).length })]);
    expect(r.installed).toEqual(['fp32']);
    expect((await ensureModel('htdemucs', { config: cfg({ offline: true }) })).paths).toEqual({ model: join(cache, 'htdemucs', 'htdemucs.onnx') });

    const half = await importModel(VOICE, [(() => {
      const p = join(tempCacheDir('stemkit-import-'), 'voice.onnx');
      writeFileSync(p, piperBody);
      return p;
    })()], { config: cfg() });
    expect(half.files.map((f) => f.name)).toEqual(['en_US-lessac-medium.onnx']);
    expect(half.missing).toEqual(['en_US-lessac-medium.onnx.json']);
    expect(half.installed).toEqual([]);
  });

  it('rejects files whose size or checksum differs from the registry (exit 65) without touching the cache', async () => {
    const src = join(tempCacheDir('stemkit-import-'), 'gtcrn_simple.onnx');
    writeFileSync(src, fixtureBytes(1000));
    const e = await failure(importModel('gtcrn', [src], { config: cfg() }));
    expect(e).toBeInstanceOf(DataError);
    expect(e.exitCode).toBe(65);
    expect(e.message).toBe(`${src} has 1000 bytes; gtcrn's gtcrn_simple.onnx has 535190`);
    // Same size, wrong bytes: caught by the pinned sha256.
    writeFileSync(src, fixtureBytes(535190));
    const e2 = await failure(importModel('gtcrn', [src], { config: cfg() }));
    expect(e2.code).toBe('E_CHECKSUM');
    expect(e2.message).toContain('expected b4718df6228e7bdf1a8a435cf98f838636eb2fd331acabf86ba87c5192ebcb87');
    const listing = await listCache(cfg());
    expect(listing.models.find((m) => m.id === 'gtcrn')).toMatchObject({ installed: [], bytes: 0, partial: [] });
  });

  it('installs only files with the model\'s contract: a Kokoro, a Piper, an MDX or random file is not htdemucs (exit 65)', async () => {
    const dir = tempCacheDir('stemkit-import-');
    const mdx = join(dir, 'mdx.onnx');
    const { mdxModel } = await import('../helpers/separate-models.js');
    mdxModel(mdx, 3072, 256, 1);
    const wrong: Array<[string, string, Buffer | string]> = [
      ['htdemucs', 'kokoro.onnx', kokoroBody],
      ['htdemucs', 'piper.onnx', piperBody],
      ['htdemucs', 'random.onnx', fixtureBytes(5000, 'junk')],
      ['htdemucs', 'page.onnx', '<!DOCTYPE html><html><body>Not found</body></html>'],
      ['htdemucs_6s', 'four.onnx', ''], // a 4-stem HTDemucs is not the 6-stem model
      [VOICE, 'kokoro-as-piper.onnx', kokoroBody],
      ['kokoro', 'kokoro-v1.0.int8.onnx', piperBody],
      ['UVR-MDX-NET-Voc_FT', 'voc.onnx', kokoroBody],
    ];
    for (const [id, name, body] of wrong) {
      const src = join(dir, name);
      if (name === 'four.onnx') htdemucsContractD(src, [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]);
      else writeFileSync(src, body);
      const e = await failure(importModel(id, [src], { config: cfg() }));
      expect(e.exitCode, `${id} ← ${name}`).toBe(65);
      expect(e.code).toBe('E_MODEL_CONTRACT');
      expect(e.message).toMatch(new RegExp(`^${name.replace('.', '\\.')} is not ${id}'s `));
      expect(await isInstalled(getModel(id), cfg())).toBe(false);
    }
    // A right one still goes in: an MDX-Net file for an MDX-Net entry with its dim_f.
    const ok = await importModel('UVR-MDX-NET-Voc_FT', [mdx], { config: cfg() });
    expect(ok.installed).toEqual(['fp32']);
    // A Piper config that is an HTML page, or not JSON.
    writeFileSync(join(dir, 'en_US-lessac-medium.onnx.json'), '<html><body>login</body></html>');
    const e = await failure(importModel(VOICE, [join(dir, 'en_US-lessac-medium.onnx.json')], { config: cfg() }));
    expect(e.message).toContain('it is an HTML page');
  });

  it('rejects an embedded model, a missing source and files that belong to nothing', async () => {
    await expect(importModel('classic', ['/x'], { config: cfg() })).rejects.toThrow('classic is embedded in stemkit; there is nothing to import');
    const missing = await failure(importModel(VOICE, ['/nonexistent/file.onnx'], { config: cfg() }));
    expect(missing.exitCode).toBe(66);
    const dir = tempCacheDir('stemkit-import-');
    writeFileSync(join(dir, 'a.bin'), 'x');
    const e = await failure(importModel('kokoro', [join(dir, 'a.bin'), join(dir, 'a.bin')], { config: cfg() }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('a.bin is not a file of model kokoro');
  });
});

describe('cache listing and removal', () => {
  it('lists installed models, partial downloads and unknown folders, and removes a model', async () => {
    await ensureModel(VOICE, { config: cfg(), download });
    mkdirSync(join(cache, 'not-a-model'));
    writeFileSync(join(cache, 'gtcrn.part-holder'), '');
    mkdirSync(join(cache, 'dtln'));
    writeFileSync(join(cache, 'dtln', 'model_1.onnx.part'), Buffer.alloc(10));
    const l = await listCache(cfg());
    expect(l.exists).toBe(true);
    expect(l.models.map((m) => [m.id, m.known, m.installed, m.partial])).toEqual([
      ['dtln', true, [], ['model_1.onnx.part']],
      [VOICE, true, ['fp32'], []],
      ['not-a-model', false, [], []],
    ]);
    const voice = l.models.find((m) => m.id === VOICE)!;
    const manifestBytes = readFileSync(join(cache, VOICE, '.manifest.json')).length;
    expect(voice.bytes).toBe(onnxBody.length + jsonBody.length + manifestBytes);
    expect(await removeModel(getModel(VOICE), cfg())).toBe(voice.bytes);
    expect(existsSync(join(cache, VOICE))).toBe(false);
    expect((await listCache(modelsConfig(join(cache, 'nope')))).exists).toBe(false);
  });
});

describe('cache write problems', () => {
  it('rm refuses (75) while another live process installs the model', async () => {
    const child = await sleepingChild();
    try {
      const dir = join(cache, VOICE);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'x.onnx.part'), 'partial');
      writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), since: '' }));
      const e = await failure(removeModel(getModel(VOICE), cfg()));
      expect(e).toBeInstanceOf(BusyError);
      expect(e.exitCode).toBe(75);
      expect(existsSync(join(dir, 'x.onnx.part'))).toBe(true);
    } finally {
      await child.kill();
    }
  });
});

describe('importModel precision variants', () => {
  it('judges what is missing for the variant whose file was imported', async () => {
    const src = tempCacheDir('stemkit-import-');
    // Kokoro's variant files have no pinned size, so a small model with Kokoro's contract is accepted and recorded.
    writeFileSync(join(src, 'kokoro-v1.0.int8.onnx'), kokoroBody);
    const r = await importModel('kokoro', [src], { config: cfg() });
    expect(r.files.map((f) => f.name)).toEqual(['kokoro-v1.0.int8.onnx']);
    expect(r.missing).toEqual(['voices-v1.0.bin']);
    expect(r.installed).toEqual([]);
    const e = await failure(ensureModel('kokoro-int8', { config: cfg({ offline: true }) }));
    expect(e.code).toBe('E_OFFLINE');
  });
});
