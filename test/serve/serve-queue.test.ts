/**
 * `stemkit serve --queue`: the real server (built CLI, 127.0.0.1, port 0) in front of a real Redis
 * (127.0.0.1, free port) and one real `stemkit worker` process. Jobs submitted over HTTP run on the
 * worker; their files lie in the server's serve.workDir, which the worker sees (its queue.roots).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stemkit, stemkitBin, writeSineWav, writeSlowModel } from '../helpers/jobs-cli.js';
import { assertBuilt, type Proc } from '../helpers/jobs-procs.js';
import { HAS_REDIS, startRedis, type TestRedis } from '../helpers/queue-redis.js';

let work: string;
let redis: TestRedis;
let worker: Proc;
let server: Proc;
let url: string;
let slowModel: string;

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

const post = (path: string, body: unknown): Promise<Response> =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function waitUntil(id: string, pred: (j: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const j = await json(await fetch(`${url}/v1/jobs/${id}`));
    if (pred(j)) return j;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} never matched`);
}

describe.skipIf(!HAS_REDIS)('stemkit serve --queue (one worker, real Redis)', () => {
  beforeAll(async () => {
    assertBuilt('src/serve/queued.ts', 'dist/serve/queued.js');
    work = await mkdtemp(join(tmpdir(), 'stemkit-serve-queue-'));
    // inputs/ and shared/ are seen by the worker; private/ only by the server (an input the worker refuses).
    for (const d of ['inputs', 'shared', 'private']) mkdirSync(join(work, d));
    writeSineWav(join(work, 'inputs', 'mix.wav'), 1.5, 220);
    writeSineWav(join(work, 'inputs', 'long.wav'), 40, 330);
    writeSineWav(join(work, 'private', 'secret.wav'), 1, 440);
    slowModel = writeSlowModel(join(work, 'inputs', 'model'), 6);
    redis = await startRedis(join(work, 'redis'));
    const workerConfig = join(work, 'worker.json');
    writeFileSync(workerConfig, JSON.stringify({ queue: { roots: [join(work, 'inputs'), join(work, 'shared')], stallSec: 10 } }));
    worker = stemkit(['--json', '--profile', 'small', '--device', 'cpu', '--config', workerConfig, 'worker', '--queue', redis.url, '--drain', '2'], {
      STEMKIT_RUNTIME_DIR: join(work, 'run-worker'),
      STEMKIT_CACHE_DIR: join(work, 'cache'),
    });
    const serverConfig = join(work, 'server.json');
    writeFileSync(serverConfig, JSON.stringify({ serve: { inputRoots: [join(work, 'inputs'), join(work, 'private')], workDir: join(work, 'shared') } }));
    server = stemkit(['--json', '--profile', 'small', '--device', 'cpu', '--config', serverConfig, 'serve', '--port', '0', '--queue'], {
      STEMKIT_QUEUE_URL: redis.url,
      STEMKIT_RUNTIME_DIR: join(work, 'run-server'),
      STEMKIT_CACHE_DIR: join(work, 'cache'),
      STEMKIT_TOKEN: '',
    });
    await worker.waitForLine((l) => l['type'] === 'worker' && l['event'] === 'ready');
    url = String((await server.waitForLine((l) => l['type'] === 'listening'))['url']);
  });
  afterAll(async () => {
    for (const p of [server, worker]) if (p && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    if (server) expect(await server.exited).toBe(0);
    if (worker) await worker.exited;
    await redis?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('a JSON job with the classic model runs on the worker; its stems are the CLI\'s byte for byte; /health shows the queue', async () => {
    const health = await json(await fetch(`${url}/health`));
    expect(health['mode']).toBe('queue');
    expect((health['workQueue'] as { workers: number }).workers).toBe(1);

    const input = join(work, 'inputs', 'mix.wav');
    const cli = spawnSync(process.execPath, [stemkitBin, '--profile', 'small', '--device', 'cpu', 'separate', input, '-o', join(work, 'cli'), '--mode', '2'], {
      env: { ...process.env, STEMKIT_RUNTIME_DIR: join(work, 'run-cli'), STEMKIT_CACHE_DIR: join(work, 'cache') },
      encoding: 'utf8',
    });
    expect(cli.status, cli.stderr).toBe(0);

    const res = await post('/v1/separate?wait=true', { path: input, mode: 2 });
    const job = await json(res);
    expect(res.status, JSON.stringify(job)).toBe(200);
    expect(job['status']).toBe('succeeded');
    expect((job['files'] as Array<{ name: string }>).map((f) => f.name).sort()).toEqual(['no_vocals.wav', 'vocals.wav']);
    expect((job['times'] as { total: number }).total).toBeGreaterThan(0);
    expect(job['durationSec']).toBe(1.5);
    // The worker ran it: its job line names the same input.
    expect(worker.lines.some((l) => l['type'] === 'job' && l['event'] === 'done' && l['target'] === input)).toBe(true);
    for (const stem of ['vocals', 'no_vocals']) {
      const got = Buffer.from(await (await fetch(`${url}/v1/jobs/${String(job['id'])}/files/${stem}.wav`)).arrayBuffer());
      expect(got.equals(readFileSync(join(work, 'cli', 'mix', `${stem}.wav`))), stem).toBe(true);
    }
  });

  it('DELETE cancels a job running on the worker (status cancelled, E_INTERRUPTED); the worker fails it as cancelled', async () => {
    const res = await post('/v1/separate', { path: join(work, 'inputs', 'long.wav'), model: slowModel });
    expect(res.status).toBe(202);
    const id = String((await json(res))['id']);
    await waitUntil(id, (j) => (j['progress'] as Record<string, unknown>)['separate'] !== undefined);
    const del = await json(await fetch(`${url}/v1/jobs/${id}`, { method: 'DELETE' }));
    expect(del['status']).toBe('cancelled');
    expect((del['error'] as { code: string }).code).toBe('E_INTERRUPTED');
    await waitUntil(id, () => worker.lines.some((l) => l['type'] === 'job' && l['event'] === 'failed' && l['target'] === join(work, 'inputs', 'long.wav')));
    const failed = worker.lines.find((l) => l['type'] === 'job' && l['event'] === 'failed' && l['target'] === join(work, 'inputs', 'long.wav'))!;
    expect((failed['error'] as { code: string }).code).toBe('E_CANCELLED');
    expect(failed['willRetry']).toBe(false);
  });

  it('an input the worker may not read fails once with its code (E_OUTSIDE_ROOTS, 64); a non-audio file is refused at submit (415)', async () => {
    const res = await post('/v1/separate?wait=true', { path: join(work, 'private', 'secret.wav'), mode: 2 });
    const body = await json(res);
    expect(res.status, JSON.stringify(body)).toBe(400);
    const job = body['job'] as Record<string, unknown>;
    expect(job['status']).toBe('failed');
    expect(job['error']).toMatchObject({ code: 'E_OUTSIDE_ROOTS' });
    const fails = worker.lines.filter((l) => l['type'] === 'job' && l['event'] === 'failed' && l['target'] === join(work, 'private', 'secret.wav'));
    expect(fails).toHaveLength(1);
    expect(fails[0]!['willRetry']).toBe(false);
    expect(fails[0]!['error']).toMatchObject({ code: 'E_OUTSIDE_ROOTS', exitCode: 64 });

    writeFileSync(join(work, 'inputs', 'notes.wav'), 'not audio at all');
    const bad = await post('/v1/separate', { path: join(work, 'inputs', 'notes.wav') });
    expect(bad.status).toBe(415);
    expect((await json(bad))['error']).toMatchObject({ code: 'E_NOT_AUDIO' });
  });

  it('429 once serve.maxQueued jobs wait in the queue (here: a queue no worker takes); DELETE removes a waiting job; no shared workDir: exit 64', async () => {
    const config = join(work, 'idle.json');
    writeFileSync(config, JSON.stringify({ queue: { name: 'idle' }, serve: { inputRoots: [join(work, 'inputs')], workDir: join(work, 'shared'), maxQueued: 1 } }));
    const idle = stemkit(['--json', '--profile', 'small', '--device', 'cpu', '--config', config, 'serve', '--port', '0', '--queue', redis.url], { STEMKIT_RUNTIME_DIR: join(work, 'run-idle'), STEMKIT_TOKEN: '' });
    try {
      const base = String((await idle.waitForLine((l) => l['type'] === 'listening'))['url']);
      const submit = (): Promise<Response> => fetch(`${base}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(work, 'inputs', 'mix.wav') }) });
      const first = await submit();
      expect(first.status).toBe(202);
      const id = String((await json(first))['id']);
      // The first job reaches Redis asynchronously after its 202.
      for (let i = 0; i < 50 && !((await json(await fetch(`${base}/health`)))['workQueue'] as { counts: { waiting: number } }).counts.waiting; i++) await new Promise((r) => setTimeout(r, 100));
      // No worker takes this queue: the job is queued, not running.
      expect((await json(await fetch(`${base}/v1/jobs/${id}`)))['status']).toBe('queued');
      const second = await submit();
      expect(second.status).toBe(429);
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await json(second))['error']).toMatchObject({ code: 'E_BUSY' });
      const del = await json(await fetch(`${base}/v1/jobs/${id}`, { method: 'DELETE' }));
      expect(del['status']).toBe('cancelled');
      expect(((await json(await fetch(`${base}/health`)))['workQueue'] as { counts: { waiting: number } }).counts.waiting).toBe(0);
    } finally {
      idle.child.kill('SIGTERM');
      expect(await idle.exited).toBe(0);
    }

    const noShared = join(work, 'noshared.json');
    writeFileSync(noShared, JSON.stringify({ serve: { inputRoots: [join(work, 'inputs')] } }));
    const r = spawnSync(process.execPath, [stemkitBin, '--config', noShared, 'serve', '--port', '0', '--queue', redis.url], { env: { ...process.env, STEMKIT_TOKEN: '' }, encoding: 'utf8' });
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('serve.workDir');
  });
});
