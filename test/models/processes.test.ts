/**
 * Two real processes pulling the same model at once: the second waits on the lock while the first downloads, then
 * finds the model installed. Runs the compiled module in child Node processes against a loopback server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compileModelsModule } from '../helpers/models-compile.js';
import { fixtureBytes, sha256, startTestServer, type TestServer } from '../helpers/models-server.js';
import { tempCacheDir } from '../helpers/models-config.js';

const VOICE = 'en_US-lessac-medium';
const ONNX_PATH = '/rhasspy/piper-voices/resolve/v1.0.0/en/en_US/lessac/medium/en_US-lessac-medium.onnx';
const body = fixtureBytes(400_000, 'two-processes');

let server: TestServer;
let lib: string;
beforeAll(async () => {
  server = await startTestServer();
  lib = compileModelsModule();
  writeFileSync(
    join(lib, 'pull.mjs'),
    `import { ensureModel } from './dist/models/ensure.js';
const [cacheDir, mirror] = process.argv.slice(2);
const m = await ensureModel(${JSON.stringify(VOICE)}, {
  config: { cacheDir, device: 'cpu', models: { mirror, offline: false, precision: 'auto' } },
  download: { connectTimeoutMs: 10000, idleTimeoutMs: 10000, retries: 0 },
  onProgress: (e) => { if (e.stage === 'wait' && e.status === 'start') console.log('WAITING'); },
});
console.log(JSON.stringify(m.paths));
`,
  );
});
afterAll(async () => {
  await server.close();
});

function run(cache: string): { child: ChildProcess; lines: string[]; exit: Promise<number | null>; saw(text: string): Promise<void> } {
  const child = spawn(process.execPath, [join(lib, 'pull.mjs'), cache, server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiters) if (l === w.text) w.resolve();
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    if (code !== 0) lines.push(`stderr: ${stderr}`);
    resolve(code);
  }));
  return {
    child, lines, exit,
    saw: (text) => new Promise<void>((resolve) => {
      if (lines.includes(text)) resolve();
      else waiters.push({ text, resolve });
    }),
  };
}

describe('two processes pulling the same model', { timeout: 60_000 }, () => {
  it('download once; the second process waits on the lock and then uses the files', async () => {
    const cache = tempCacheDir();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    server.route(ONNX_PATH, { kind: 'gate', body, after: 100_000, release: gate });
    server.route(`${ONNX_PATH}.json`, { kind: 'file', body: Buffer.from('{"audio":{"sample_rate":22050}}') });

    const first = run(cache);
    // Wait until the first process is mid-download (it holds the lock and the server has its request).
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
    const second = run(cache);
    await second.saw('WAITING');
    expect(server.requests).toHaveLength(1);
    release();
    expect(await first.exit).toBe(0);
    expect(await second.exit).toBe(0);

    const expected = JSON.stringify({ model: join(cache, VOICE, `${VOICE}.onnx`), config: join(cache, VOICE, `${VOICE}.onnx.json`) });
    expect(first.lines).toEqual([expected]);
    expect(second.lines).toEqual(['WAITING', expected]);
    expect(server.requests.map((r) => r.path)).toEqual([ONNX_PATH, `${ONNX_PATH}.json`]);
    expect(sha256(readFileSync(join(cache, VOICE, `${VOICE}.onnx`)))).toBe(sha256(body));
    expect(readdirSync(join(cache, VOICE)).sort()).toEqual(['.manifest.json', `${VOICE}.onnx`, `${VOICE}.onnx.json`]);
  });
});

describe('a cache the process cannot write', { timeout: 60_000 }, () => {
  // Permission bits do not stop root, so as root the child runs as `nobody` (uid 65534).
  it('fails with OutputError (73) naming the folder and the fix', async () => {
    const cache = join(tempCacheDir(), 'ro');
    mkdirSync(cache, { mode: 0o555 });
    chmodSync(cache, 0o555);
    chmodSync(join(cache, '..'), 0o755);
    chmodSync(lib, 0o755);
    const script = join(lib, 'ro.mjs');
    writeFileSync(
      script,
      `import { ensureModel } from './dist/models/ensure.js';
try {
  await ensureModel(${JSON.stringify(VOICE)}, { config: { cacheDir: process.argv[2], device: 'cpu', models: { mirror: process.argv[3], offline: false, precision: 'auto' } } });
  console.log('installed?!');
} catch (e) { console.log(JSON.stringify({ exitCode: e.exitCode, code: e.code, message: e.message, hint: e.hint })); }
`,
    );
    chmodSync(script, 0o644);
    const asRoot = process.getuid?.() === 0;
    const child = spawn(process.execPath, [script, cache, server.url], { stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({
      exitCode: 73,
      code: 'E_CACHE_WRITE',
      message: `cannot write to the model cache ${join(cache, VOICE)} (EACCES)`,
      hint: 'set STEMKIT_CACHE_DIR (or cacheDir in the config) to a writable folder',
    });
  });
});
