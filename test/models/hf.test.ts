/**
 * HTDemucs from Hugging Face, end to end through the CLI, against a real HTTP server on 127.0.0.1 that answers the
 * way huggingface.co does for an LFS file: `/<org>/<repo>/resolve/main/<file>` → 302 to a CDN URL, with the file's
 * sha256 in `X-Linked-Etag` (quoted) and its size in `X-Linked-Size` on the redirect; the CDN answers 200 without
 * them. The "model" is a contract-D file built in code (the published exports' layout), so `separate` runs it.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/models/cache.js';
import { runCli } from '../helpers/cli-run.js';
import { sha256, startTestServer, type TestServer } from '../helpers/models-server.js';
import { tempCacheDir } from '../helpers/models-config.js';
import { htdemucsContractD } from '../helpers/separate-models.js';
import { maxAbsDiff, readAudio, sines, tempDir, writeWav } from '../helpers/separate-fixtures.js';

const HT_PATH = '/StemSplitio/htdemucs-onnx/resolve/main/htdemucs_fp16weights.onnx';
const FT_VOCALS = '/StemSplitio/htdemucs-ft-vocals-onnx/resolve/main/htdemucs_ft_vocals_fp16weights.onnx';
const FT_DRUMS = '/StemSplitio/htdemucs-ft-drums-onnx/resolve/main/htdemucs_ft_drums_fp16weights.onnx';

const tmp = tempDir('stemkit-hf-');
let server: TestServer;
let cache: string;
let model: Buffer;
let song: string;

/** Routes `path` like huggingface.co: a 302 carrying the linked headers, then the bytes from a CDN path. */
function hfRoute(path: string, body: Buffer, linked: { sha256?: string; size?: number } = {}, cdnHeaders: Record<string, string> = {}): void {
  const cdn = `/cdn-lfs/${sha256(body).slice(0, 16)}${path.replace(/\//g, '_')}`;
  const headers: Record<string, string> = { etag: `"${linked.sha256 ?? sha256(body)}"` };
  headers['x-linked-etag'] = `"${linked.sha256 ?? sha256(body)}"`;
  headers['x-linked-size'] = String(linked.size ?? body.length);
  server.route(path, { kind: 'redirect', to: cdn, headers });
  server.route(cdn, { kind: 'file', body, headers: cdnHeaders });
}

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  HOME: tmp.dir,
  NO_COLOR: '1',
  STEMKIT_CACHE_DIR: cache,
  STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'),
  ...extra,
});
const pull = (args: string[], extra: Record<string, string> = {}) => runCli(['models', 'pull', ...args, '--mirror', server.url, '--json'], { env: env(extra), cwd: tmp.dir });
const cacheFiles = (id: string): string[] => (existsSync(join(cache, id)) ? readdirSync(join(cache, id)).filter((f) => !f.startsWith('.lock')) : []);

beforeAll(async () => {
  server = await startTestServer();
  const p = join(tmp.dir, 'model.onnx');
  htdemucsContractD(p, [0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], [0, 0, 0, 0]);
  model = readFileSync(p);
  song = join(tmp.dir, 'song.wav');
  await writeWav(song, sines(3 * 44100, 44100, 2, [220, 660], 0.3));
});
afterAll(async () => {
  await server.close();
  tmp.cleanup();
});
beforeEach(() => {
  cache = tempCacheDir();
  server.requests.length = 0;
});

describe('HTDemucs from Hugging Face (X-Linked-Etag / X-Linked-Size)', () => {
  it('models pull htdemucs --mirror installs the fp16-weights file, verified against the linked sha256; separate runs it; verify catches a change', async () => {
    hfRoute(HT_PATH, model);
    const r = await pull(['htdemucs']);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual([expect.objectContaining({ type: 'pull', id: 'htdemucs', status: 'ok', precision: 'fp16' })]);
    expect(readFileSync(join(cache, 'htdemucs', 'htdemucs_fp16weights.onnx')).equals(model)).toBe(true);
    const manifest = await readManifest(join(cache, 'htdemucs'), 'htdemucs');
    expect(manifest.files['htdemucs_fp16weights.onnx']).toMatchObject({ sha256: sha256(model), size: model.length, checksum: 'server' });

    // separate --model htdemucs uses the installed file, offline (no request reaches the server).
    server.requests.length = 0;
    const s = await runCli(['separate', '--model', 'htdemucs', song, '-o', join(tmp.dir, 'out'), '--bits', '32', '--clip', 'none', '--offline', '--json'], { env: env(), cwd: tmp.dir });
    expect(s.code).toBe(0);
    expect(server.requests).toEqual([]);
    const mix = await readAudio(song);
    const vocals = await readAudio(join(tmp.dir, 'out', 'song', 'vocals.wav'));
    // Row 3 of the fixture is 0.4·x (after the track normalisation and its inverse): float32 rounding only.
    expect(maxAbsDiff(vocals.channels[0]!, mix.channels[0]!.map((v) => 0.4 * v))).toBeLessThan(1e-5);

    const v = await runCli(['models', 'verify', 'htdemucs', '--json'], { env: env(), cwd: tmp.dir });
    expect(v.code).toBe(0);
    // Changed after install (same size, one byte flipped): verify fails and names the server-declared checksum.
    const installed = join(cache, 'htdemucs', 'htdemucs_fp16weights.onnx');
    const bytes = readFileSync(installed);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(installed, bytes);
    const bad = await runCli(['models', 'verify', 'htdemucs', '--json'], { env: env(), cwd: tmp.dir });
    expect(bad.code).toBe(65);
    expect(bad.json()[0]).toMatchObject({ ok: false, files: expect.arrayContaining([expect.objectContaining({ name: 'htdemucs_fp16weights.onnx', status: 'checksum-mismatch', checksum: 'server' })]) });
  });

  it('separate --model htdemucs downloads on first use (mirror from the environment)', async () => {
    hfRoute(HT_PATH, model);
    const s = await runCli(['separate', '--model', 'htdemucs', song, '-o', join(tmp.dir, 'out2'), '--json'], { env: env({ STEMKIT_MODEL_MIRROR: server.url }), cwd: tmp.dir });
    expect(s.code).toBe(0);
    expect(server.requests.map((q) => q.path)[0]).toBe(HT_PATH);
    expect(existsSync(join(tmp.dir, 'out2', 'song', 'drums.wav'))).toBe(true);
  });

  it('a wrong size, a wrong hash or an HTML page installs nothing (exit 69 naming the URL)', async () => {
    const html = Buffer.alloc(model.length, ' ');
    Buffer.from('<!DOCTYPE html><html><head><title>404</title></head><body>Repository not found</body></html>').copy(html);
    const cases: Array<{ name: string; setup: () => void; code: string; text: RegExp }> = [
      { name: 'linked size', setup: () => hfRoute(HT_PATH, model, { size: model.length + 1 }), code: 'E_CHECKSUM', text: /announces \d+ bytes but declares the file as \d+/ },
      { name: 'linked sha256', setup: () => hfRoute(HT_PATH, model, { sha256: sha256(Buffer.from('other')) }), code: 'E_CHECKSUM', text: /checksum mismatch: got sha256 [0-9a-f]{64}, expected [0-9a-f]{64} \(declared by the server\)/ },
      // An HTML page of exactly the right size, with its own (correct) sha256 and an innocent content type.
      { name: 'html body', setup: () => hfRoute(HT_PATH, html, {}, { 'content-type': 'application/octet-stream' }), code: 'E_DOWNLOAD_HTML', text: /the server sent an HTML page, not the file/ },
      { name: 'html type', setup: () => hfRoute(HT_PATH, model, {}, { 'content-type': 'text/html; charset=utf-8' }), code: 'E_DOWNLOAD_HTML', text: /Content-Type: text\/html/ },
    ];
    for (const c of cases) {
      cache = tempCacheDir();
      c.setup();
      const r = await pull(['htdemucs']);
      expect(r.code, c.name).toBe(69);
      const err = r.json().find((x) => x['type'] === 'error') as { code: string; message: string };
      expect(err.code, c.name).toBe(c.code);
      expect(err.message, c.name).toMatch(c.text);
      expect(err.message, c.name).toContain(server.url);
      expect(r.stderr.split('\n'), c.name).toContain(`stemkit: ${err.message}`);
      // Nothing installed, no part file left to be "resumed" into a model.
      expect(cacheFiles('htdemucs').filter((f) => !f.startsWith('.manifest')), c.name).toEqual([]);
      const m = await readManifest(join(cache, 'htdemucs'), 'htdemucs');
      expect(m.files, c.name).toEqual({});
    }
  });

  it('htdemucs_ft --stems vocals downloads and runs only the vocals specialist', async () => {
    const dir = join(tmp.dir, 'ftv');
    const p = join(tmp.dir, 'ftv.onnx');
    htdemucsContractD(p, [9, 9, 9, 0.5], [0, 0, 0, 0], [0, 0, 0, 0]);
    hfRoute(FT_VOCALS, readFileSync(p));
    hfRoute(FT_DRUMS, readFileSync(p));
    const s = await runCli(['separate', '--model', 'htdemucs_ft', '--stems', 'vocals', song, '-o', dir, '--json'], { env: env({ STEMKIT_MODEL_MIRROR: server.url }), cwd: tmp.dir });
    expect(s.code).toBe(0);
    expect(server.requests.map((q) => q.path).filter((x) => x.startsWith('/StemSplitio'))).toEqual([FT_VOCALS]);
    expect(readdirSync(join(dir, 'song')).filter((f) => f !== '.stemkit-outputs.json')).toEqual(['vocals.wav']);
    expect(cacheFiles('htdemucs_ft').filter((f) => f.endsWith('.onnx'))).toEqual(['htdemucs_ft_vocals_fp16weights.onnx']);
    // The same for models pull: only the named stems' specialists.
    cache = tempCacheDir();
    server.requests.length = 0;
    const r = await pull(['htdemucs_ft', '--stems', 'drums']);
    expect(r.code).toBe(0);
    expect(server.requests.map((q) => q.path).filter((x) => x.startsWith('/StemSplitio'))).toEqual([FT_DRUMS]);
  });

  it('--mode 4 without htdemucs says once, in one line, how to get neural quality; with it installed, uses it', async () => {
    const songs = [song, join(tmp.dir, 'song2.wav')];
    await writeWav(songs[1]!, sines(44100, 44100, 2, [330], 0.3));
    const r = await runCli(['separate', '--mode', '4', ...songs, '-o', join(tmp.dir, 'out4')], { env: env(), cwd: tmp.dir });
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.includes('models pull'));
    expect(lines).toEqual(['4-stem separation uses the embedded classic model (fast, modest quality); for neural quality run `stemkit models pull htdemucs` (~158 MB) once']);
    hfRoute(HT_PATH, model);
    expect((await pull(['htdemucs'])).code).toBe(0);
    const j = await runCli(['separate', '--mode', '4', song, '-o', join(tmp.dir, 'out4b'), '--json'], { env: env(), cwd: tmp.dir });
    expect(j.code).toBe(0);
    expect(j.stderr).not.toContain('models pull');
    expect(j.json().find((x) => x['type'] === 'file')).toMatchObject({ status: 'ok' });
    expect(JSON.stringify(j.json())).toContain('"model":"htdemucs"');
  });
});
