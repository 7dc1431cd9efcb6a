/**
 * `stemkit serve` end to end: the built CLI started as a real server on an ephemeral 127.0.0.1 port, real
 * HTTP requests, real files. Models: the embedded classic model (byte comparison with the CLI), the slow
 * identity MDX-Net model of test/helpers/jobs-slow-model.ts (flood, cancel, SIGTERM) and the Kokoro contract
 * fixture of test/helpers/tts-fixtures.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_FFMPEG } from '../helpers/audio-fixtures.js';
import { stemkitBin, writeSineWav, writeSlowModel } from '../helpers/jobs-cli.js';
import { assertBuilt, maxOverlap, spawnNode, type Proc } from '../helpers/jobs-procs.js';
import { buildKokoroModel, decodeKokoro, npz, voiceTable } from '../helpers/tts-fixtures.js';
import wavefile from 'wavefile';

let work: string;
let slowModel: string;
const MAX_UPLOAD = 1_000_000;

interface Server {
  proc: Proc;
  url: string;
  workDir: string;
  runtimeDir: string;
}

/** Starts `stemkit serve` on port 0 with its own config, runtime dir and work dir. */
async function startServer(name: string, serve: Record<string, unknown>, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Server> {
  const dir = join(work, name);
  const workDir = join(dir, 'jobs');
  const runtimeDir = join(dir, 'run');
  mkdirSync(workDir, { recursive: true });
  const config = join(dir, 'stemkit.config.json');
  writeFileSync(config, JSON.stringify({ serve: { inputRoots: [join(work, 'inputs')], maxUploadBytes: MAX_UPLOAD, workDir, ...serve } }));
  const proc = spawnNode([stemkitBin, '--json', '--profile', 'small', '--device', 'cpu', '--config', config, 'serve', '--port', '0', ...extra], {
    env: { STEMKIT_RUNTIME_DIR: runtimeDir, STEMKIT_CACHE_DIR: join(work, 'cache'), STEMKIT_TOKEN: '', ...env },
  });
  const line = await proc.waitForLine((l) => l['type'] === 'listening');
  return { proc, url: String(line['url']), workDir, runtimeDir };
}

/** The CLI's own stems for the same options, in the same runtime dir as nothing else. */
function cliSeparate(input: string, out: string, args: string[]): void {
  const r = spawnSync(process.execPath, [stemkitBin, '--profile', 'small', '--device', 'cpu', 'separate', input, '-o', out, ...args], {
    env: { ...process.env, STEMKIT_RUNTIME_DIR: join(work, 'cli-run'), STEMKIT_CACHE_DIR: join(work, 'cache') },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

function upload(path: string, filename: string, fields: Record<string, string> = {}): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  fd.append('file', new Blob([readFileSync(path)]), filename);
  return fd;
}

async function waitUntil(s: Server, id: string, pred: (j: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const j = await json(await fetch(`${s.url}/v1/jobs/${id}`));
    if (pred(j)) return j;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} never matched`);
}

/** Job folders left in a server's work dir (the server keeps one private folder inside it). */
function jobFolders(s: Server): string[] {
  return readdirSync(s.workDir).flatMap((d) => readdirSync(join(s.workDir, d)));
}

beforeAll(async () => {
  assertBuilt('src/serve/app.ts', 'dist/serve/app.js');
  work = await mkdtemp(join(tmpdir(), 'stemkit-serve-'));
  mkdirSync(join(work, 'inputs'));
  // 6 chained 256×256 MatMuls: about 0.2 s per model call on one thread (test/jobs/cli-jobs.test.ts).
  slowModel = writeSlowModel(join(work, 'inputs', 'model'), 6);
  writeSineWav(join(work, 'inputs', 'short.wav'), 1, 440);
  writeSineWav(join(work, 'inputs', 'long.wav'), 40, 330);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('stemkit serve (small profile, loopback, no token)', () => {
  let s: Server;
  beforeAll(async () => {
    s = await startServer('a', {});
  });
  afterAll(async () => {
    s.proc.child.kill('SIGTERM');
    expect(await s.proc.exited).toBe(0);
  });

  it.skipIf(!HAS_FFMPEG)('a WAV and an MP4 upload give the CLI\'s stems byte for byte; the second job on the model loads nothing', async () => {
    const wav = join(work, 'mix.wav');
    writeSineWav(wav, 1.5, 220);
    const mp4 = join(work, 'clip.mp4');
    const ff = spawnSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=black:s=64x64:d=1.5', '-i', wav, '-c:v', 'libx264', '-c:a', 'aac', '-shortest', mp4]);
    expect(ff.status).toBe(0);
    cliSeparate(wav, join(work, 'cli'), ['--mode', '2']);
    cliSeparate(mp4, join(work, 'cli'), ['--mode', '2']);
    const loads: number[] = [];
    for (const [path, name, track] of [[wav, 'mix.wav', 'mix'], [mp4, 'clip.mp4', 'clip']] as const) {
      const res = await fetch(`${s.url}/v1/separate?wait=true`, { method: 'POST', body: upload(path, name, { mode: '2' }) });
      const job = await json(res);
      expect(res.status, JSON.stringify(job)).toBe(200);
      expect(job['status']).toBe('succeeded');
      expect((job['files'] as Array<{ name: string }>).map((f) => f.name).sort()).toEqual(['no_vocals.wav', 'vocals.wav']);
      loads.push((job['times'] as { load: number }).load);
      for (const stem of ['vocals', 'no_vocals']) {
        const got = Buffer.from(await (await fetch(`${s.url}/v1/jobs/${String(job['id'])}/files/${stem}.wav`)).arrayBuffer());
        expect(got.equals(readFileSync(join(work, 'cli', track, `${stem}.wav`))), `${name} ${stem}`).toBe(true);
      }
    }
    expect(loads[0]).toBeGreaterThan(0);
    expect(loads[1]).toBe(0);
  });

  it('Range requests return the asked bytes (206), an impossible range 416', async () => {
    const res = await fetch(`${s.url}/v1/separate?wait=true`, { method: 'POST', body: upload(join(work, 'inputs', 'short.wav'), 'short.wav', { model: slowModel }) });
    const job = await json(res);
    expect(res.status, JSON.stringify(job)).toBe(200);
    const url = `${s.url}/v1/jobs/${String(job['id'])}/files/vocals.wav`;
    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
    const part = await fetch(url, { headers: { Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${whole.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(whole.subarray(10, 20))).toBe(true);
    expect((await fetch(url, { headers: { Range: `bytes=${whole.length}-` } })).status).toBe(416);
  });

  it('TTS with the Kokoro contract fixture: the audio carries the ids, style row and speed fed', async () => {
    const model = join(work, 'inputs', 'kokoro-v1.0.onnx');
    const voices = join(work, 'inputs', 'voices-v1.0.bin');
    writeFileSync(model, buildKokoroModel({ ids: 'tokens', speed: 'float32' }));
    writeFileSync(voices, npz({ af_heart: voiceTable(0), bf_emma: voiceTable(100) }, 6));
    const res = await fetch(`${s.url}/v1/tts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=60' },
      body: JSON.stringify({ text: 'Hello world.', model, voices, voice: 'bf_emma', speed: 1.5, bits: 32 }),
    });
    const job = await json(res);
    expect(res.status, JSON.stringify(job)).toBe(200);
    const wav = new wavefile.WaveFile(Buffer.from(await (await fetch(`${s.url}/v1/jobs/${String(job['id'])}/files/speech.wav`)).arrayBuffer()));
    expect((wav.fmt as { sampleRate: number }).sampleRate).toBe(24000);
    const [call] = decodeKokoro(Float32Array.from(wav.getSamples(false, Float64Array) as unknown as Float64Array));
    // The same sequence test/tts/cli.test.ts asserts for the CLI: "həlˈəʊ wˈɜːld." with bf_emma (British).
    expect(call!.ids).toEqual([0, 50, 83, 54, 156, 83, 135, 16, 65, 156, 87, 158, 54, 46, 4, 0]);
    expect(call!.style[0]).toBe(100 + 13);
    expect(call!.speed).toBe(1.5);
    // SSML goes through the same job: a break makes the speech longer than the plain text's.
    const ssml = await json(await fetch(`${s.url}/v1/tts?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: '<speak>Hello <break time="500ms"/> world.</speak>', model, voices }) }));
    expect(ssml['status'], JSON.stringify(ssml)).toBe('succeeded');
    expect(ssml['durationSec'] as number).toBeGreaterThan((job['durationSec'] as number) + 0.4);
  });

  it('20 concurrent jobs: at most 2 run at once, the overflow gets 429 with Retry-After, every accepted job completes', async () => {
    const body = JSON.stringify({ path: join(work, 'inputs', 'short.wav'), model: slowModel });
    const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })));
    const accepted = answers.filter((r) => r.status === 202);
    const refused = answers.filter((r) => r.status === 429);
    expect(accepted.length + refused.length).toBe(20);
    // small: 2 heavy slots, serve.maxQueued = 2 × 2 waiting.
    expect(accepted.length).toBeGreaterThanOrEqual(2);
    expect(accepted.length).toBeLessThanOrEqual(6);
    for (const r of refused) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await json(r))['error'] as { code: string }).code).toBe('E_BUSY');
    }
    const ids = await Promise.all(accepted.map(async (r) => String((await json(r))['id'])));
    const done = await Promise.all(ids.map((id) => waitUntil(s, id, (j) => j['status'] !== 'queued' && j['status'] !== 'running')));
    for (const j of done) expect(j['status']).toBe('succeeded');
    const spans = done.map((j) => [Date.parse(String(j['startedAt'])), Date.parse(String(j['finishedAt']))] as const);
    expect(maxOverlap(spans)).toBeLessThanOrEqual(2);
  });

  it('DELETE cancels a running job: status cancelled, its folder removed, its slot released', async () => {
    const res = await fetch(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(work, 'inputs', 'long.wav'), model: slowModel }) });
    expect(res.status).toBe(202);
    const id = String((await json(res))['id']);
    await waitUntil(s, id, (j) => j['status'] === 'running' && (j['progress'] as Record<string, unknown>)['separate'] !== undefined);
    const del = await json(await fetch(`${s.url}/v1/jobs/${id}`, { method: 'DELETE' }));
    expect(del['status']).toBe('cancelled');
    expect((del['error'] as { code: string }).code).toBe('E_INTERRUPTED');
    expect(jobFolders(s)).not.toContain(id);
    const health = await json(await fetch(`${s.url}/health`));
    expect((health['slots'] as Record<string, { used: number }>)['heavy']!.used).toBe(0);
  });

  it('rejects an oversize upload (413, streamed without a length), a non-audio upload (415), unreadable audio (422) and a path outside the allow-list (403)', async () => {
    const before = jobFolders(s).length;
    // Chunked, so the server cannot refuse on Content-Length and must stop the stream at the limit.
    const status413 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const boundary = 'stemkitboundary';
      const req = request(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 1);
      chunk.write('RIFF', 0);
      for (let i = 0; i < Math.ceil((MAX_UPLOAD * 1.5) / chunk.length); i++) req.write(chunk);
      req.end(`\r\n--${boundary}--\r\n`);
    });
    expect(status413.status).toBe(413);
    expect(JSON.parse(status413.body).error.code).toBe('E_UPLOAD_TOO_LARGE');

    const text = join(work, 'notes.txt');
    writeFileSync(text, 'these are not the droids you are looking for\n'.repeat(20));
    const r415 = await fetch(`${s.url}/v1/separate`, { method: 'POST', body: upload(text, 'notes.wav') });
    expect(r415.status).toBe(415);
    expect(((await json(r415))['error'] as { code: string }).code).toBe('E_NOT_AUDIO');

    const broken = join(work, 'broken.wav');
    writeFileSync(broken, Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEjunk', 'latin1'), Buffer.alloc(40, 7)]));
    const r422 = await fetch(`${s.url}/v1/separate`, { method: 'POST', body: upload(broken, 'broken.wav') });
    const e422 = await json(r422);
    expect(r422.status, JSON.stringify(e422)).toBe(422);
    expect(JSON.stringify(e422)).not.toMatch(/\n\s+at /); // no stack trace

    const r403 = await fetch(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: '/etc/hostname' }) });
    expect(r403.status).toBe(403);
    expect(((await json(r403))['error'] as { code: string }).code).toBe('E_PATH_NOT_ALLOWED');
    const r400 = await fetch(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(work, 'inputs', 'short.wav'), shifts: 99 }) });
    expect(r400.status).toBe(400);
    expect(((await json(r400))['error'] as { code: string }).code).toBe('E_INVALID_OPTION');
    // Nothing of the refused requests stays on disk.
    expect(jobFolders(s).length).toBe(before);
  });

  it('a client that disconnects mid-upload leaves nothing behind', async () => {
    const before = jobFolders(s);
    let grew = false;
    const seen = (): boolean => grew;
    await new Promise<void>((resolve) => {
      const boundary = 'gone';
      const req = request(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' } });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`);
      req.write(Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(200_000, 3)]), () => {
        // Disconnect only once the server has started storing the upload (its job folder exists).
        const poll = (n: number): void => {
          grew = jobFolders(s).length > before.length;
          if (grew || n === 0) req.destroy();
          else setTimeout(() => poll(n - 1), 20);
        };
        poll(250);
      });
    });
    expect(seen()).toBe(true);
    // The server notices the closed socket asynchronously.
    for (let i = 0; i < 50 && jobFolders(s).length !== before.length; i++) await new Promise((r) => setTimeout(r, 100));
    expect(jobFolders(s)).toEqual(before);
  });

  it('/openapi.json lists every route with the options of the route schemas; /metrics counts jobs', async () => {
    const doc = await json(await fetch(`${s.url}/openapi.json`));
    const paths = doc['paths'] as Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>>;
    expect(Object.keys(paths).sort()).toEqual(['/health', '/metrics', '/openapi.json', '/v1/jobs/{id}', '/v1/jobs/{id}/files/{name}', '/v1/models', '/v1/separate', '/v1/tts']);
    expect(Object.keys(paths['/v1/separate']!['post']!.requestBody!.content['application/json']!.schema.properties)).toContain('twoStems');
    const models = (await json(await fetch(`${s.url}/v1/models`)))['models'] as Array<{ id: string; installed: string[] }>;
    expect(models.find((m) => m.id === 'classic')?.installed).toEqual(['fp32']);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/^stemkit_jobs_total\{kind="separate",status="rejected"\} [1-9]/m);
    expect(metrics).toMatch(/^stemkit_slots_limit\{pool="heavy"\} 2$/m);
  });
});

describe('stemkit serve: the warm-model LRU is bounded by model bytes (serve.maxLoadedBytes)', () => {
  it('a second model that does not fit the budget with the first evicts it; sizes are the model files; a warm model loads nothing', async () => {
    // Two models of known size: the 6-MatMul one and a 1-MatMul one; the budget holds either, not both.
    const big = slowModel;
    const small = writeSlowModel(join(work, 'inputs', 'model1'), 1);
    const bigBytes = statSync(big).size;
    const smallBytes = statSync(small).size;
    const s = await startServer('lru', { maxLoadedModels: 2, maxLoadedBytes: bigBytes + smallBytes - 1 });
    const run = async (model: string): Promise<number> => {
      const res = await fetch(`${s.url}/v1/separate?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(work, 'inputs', 'short.wav'), model }) });
      const job = await json(res);
      expect(job['status'], JSON.stringify(job)).toBe('succeeded');
      return (job['times'] as { load: number }).load;
    };
    const loaded = async (): Promise<Array<[string, number]>> => {
      const health = await json(await fetch(`${s.url}/health`));
      expect(health['maxLoadedBytes']).toBe(bigBytes + smallBytes - 1);
      // The provider check is doctor's probe, run in an executor.
      expect(health['providers']).toEqual([{ provider: 'cpu', ok: true, detail: 'ran on cpu' }]);
      return (health['loadedModels'] as Array<{ key: string; bytes: number }>).map((l) => [l.key.includes('model1') ? 'small' : 'big', l.bytes]);
    };
    try {
      expect(await run(big)).toBeGreaterThan(0);
      expect(await loaded()).toEqual([['big', bigBytes]]);
      // Two models fit the count limit but not the byte budget: the least recently used one goes.
      expect(await run(small)).toBeGreaterThan(0);
      expect(await loaded()).toEqual([['small', smallBytes]]);
      expect(await run(small)).toBe(0);
      // Its size is known now: loading the big one again evicts the small one first.
      expect(await run(big)).toBeGreaterThan(0);
      expect(await loaded()).toEqual([['big', bigBytes]]);
    } finally {
      s.proc.child.kill('SIGTERM');
      expect(await s.proc.exited).toBe(0);
    }
  });
});

describe('stemkit serve: token, host and SIGTERM', () => {
  it('a non-loopback host without a token exits 64 without binding', async () => {
    const p = spawnNode([stemkitBin, 'serve', '--host', '0.0.0.0', '--port', '0'], { env: { STEMKIT_TOKEN: '', STEMKIT_RUNTIME_DIR: join(work, 'h-run') } });
    expect(await p.exited).toBe(64);
    expect(p.stderr()).toMatch(/needs a token/);
  });

  it('a missing or wrong token gets 401 and nothing else happens; the right one passes; SIGTERM when idle exits 0', async () => {
    const s = await startServer('b', {}, ['--token', 'sesame']);
    const body = upload(join(work, 'inputs', 'short.wav'), 'short.wav');
    for (const auth of [undefined, 'Bearer open', 'Basic sesame']) {
      const res = await fetch(`${s.url}/v1/separate`, { method: 'POST', body, headers: auth ? { authorization: auth } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await json(res))['error'] as { code: string }).code).toBe('E_UNAUTHORIZED');
    }
    expect(jobFolders(s)).toEqual([]);
    expect((await fetch(`${s.url}/health`)).status).toBe(401);
    expect((await fetch(`${s.url}/health`, { headers: { authorization: 'Bearer sesame' } })).status).toBe(200);
    s.proc.child.kill('SIGTERM');
    expect(await s.proc.exited).toBe(0);
  });

  it('SIGTERM mid-job: new jobs get 503, the job is cancelled after the grace period, no files stay, exit 143', async () => {
    const s = await startServer('c', { shutdownGrace: 1 });
    const res = await fetch(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(work, 'inputs', 'long.wav'), model: slowModel }) });
    const id = String((await json(res))['id']);
    await waitUntil(s, id, (j) => (j['progress'] as Record<string, unknown>)['separate'] !== undefined);
    s.proc.child.kill('SIGTERM');
    await s.proc.waitForLine((l) => l['type'] === 'log' && /SIGTERM/.test(String(l['message'])));
    const late = await fetch(`${s.url}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(work, 'inputs', 'short.wav') }) });
    expect(late.status).toBe(503);
    expect(((await json(late))['error'] as { code: string }).code).toBe('E_SHUTTING_DOWN');
    expect(await s.proc.exited).toBe(143);
    expect(readdirSync(s.workDir)).toEqual([]);
    expect(existsSync(join(s.runtimeDir, 'slots')) ? readdirSync(join(s.runtimeDir, 'slots')).filter((f) => f.endsWith('.slot')) : []).toEqual([]);
  });
});
