/**
 * `stemkit serve`: the separation and TTS jobs of the library behind an HTTP API (fastify).
 *
 * Requests are checked against the route schemas (which also make /openapi.json), a token guards every
 * route when one is set (required off loopback), uploads stream to disk under a size limit, jobs queue for
 * the machine's job slots and run in executor processes that keep models warm (src/serve/pool.ts).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { createHash, timingSafeEqual } from 'node:crypto';
import { execa } from 'execa';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import multipart from '@fastify/multipart';
import type { ResolvedConfig } from '../config/schema.js';
import { StemkitError, UsageError } from '../errors.js';
import type { PoolName } from '../jobs/semaphore.js';
import { readPools } from '../jobs/semaphore.js';
import type { LogEvent } from '../progress.js';
import { ERROR_SCHEMA, HttpError, errorBody, httpStatus } from './errors.js';
import { JobManager, isFinal, type Job, type TaskSpec } from './jobs.js';
import { createMetrics } from './metrics.js';
import { SEPARATE_OPTIONS, TTS_OPTIONS, formatOf, objectSchema, readOptions, separateJob, ttsVoiceOptions } from './options.js';
import { ExecutorPool, defaultMaxLoadedBytes } from './pool.js';
import type { QueueRunner } from './queued.js';
import { allowedPath, checkMedia, spoolUpload, tooLarge } from './upload.js';

export interface ServeOptions {
  config: ResolvedConfig;
  /** Overrides config.serve.host / port. */
  host?: string;
  port?: number;
  /** Bearer token every request must carry; required when the host is not loopback. */
  token?: string | undefined;
  version: string;
  /**
   * A Redis URL: jobs run on `stemkit worker`s through that queue instead of in this server's executors
   * (src/serve/queued.ts). Needs `serve.workDir` on storage the workers see.
   */
  queueUrl?: string | undefined;
  /** Server-side log lines (start, shutdown, executor trouble). */
  onLog?: (e: LogEvent) => void;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8765 */
  url: string;
  port: number;
  /**
   * Stops accepting jobs (503), gives running jobs `serve.shutdownGrace` seconds, cancels the rest and
   * closes; `now` aborting ends the grace period early. Resolves to true when running jobs had to be cancelled.
   */
  shutdown(now?: AbortSignal): Promise<boolean>;
}

/** Loopback names: the only hosts that may serve without a token. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const JOB_ID = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f-]{36}$' } } } as const;
const WAIT_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { wait: { type: 'string', enum: ['true', 'false', '1', '0'], description: 'answer when the job has finished (up to 60 s; or send `Prefer: wait=N`)' } },
} as const;

/** Longest synchronous wait (Prefer: wait=N is capped to it). */
const MAX_WAIT_SEC = 600;

interface Doc {
  summary: string;
  /** The multipart/form-data body, documented beside the validated JSON body. */
  form?: Record<string, unknown>;
  responses: Record<string, string>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Summary and responses of the route in /openapi.json. */
    doc?: Doc;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function sendError(reply: FastifyReply, status: number, e: { code: string; message: string; hint?: string | undefined }): FastifyReply {
  return reply.code(status).type('application/json').send(errorBody(e));
}

/** Seconds to wait from `?wait=true` (60) or `Prefer: wait=N`; 0 for an asynchronous answer. */
function waitSeconds(req: FastifyRequest): number {
  const prefer = /(?:^|[,;\s])wait=(\d+)/.exec(String(req.headers['prefer'] ?? ''));
  if (prefer) return Math.min(MAX_WAIT_SEC, Number(prefer[1]));
  const w = (req.query as { wait?: string }).wait;
  return w === 'true' || w === '1' ? 60 : 0;
}

/** Starts the server; resolves once it listens. @throws UsageError (64) for a non-loopback host without a token. */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const { config } = o;
  const host = o.host ?? config.serve.host;
  const port = o.port ?? config.serve.port;
  if (!isLoopback(host) && !o.token) {
    throw new UsageError(`serving on ${host} (not loopback) needs a token`, { code: 'E_TOKEN_REQUIRED', hint: 'set STEMKIT_TOKEN (or pass a token) so that only clients that know it can run jobs' });
  }
  const log = o.onLog ?? (() => {});
  if (o.queueUrl !== undefined && config.serve.workDir === undefined) {
    // Workers write the outputs (and read uploads) in the job folders: a private temp folder would not do.
    throw new UsageError('serving jobs through a queue needs serve.workDir on storage the workers see', {
      code: 'E_NO_SHARED_WORKDIR',
      hint: 'set "serve.workDir" to a shared folder (NFS, SMB, a bind mount) that the workers list in "queue.roots"',
    });
  }
  const queued = o.queueUrl === undefined ? undefined : await openRunner(o.queueUrl, config, log);
  const workDir = await mkdtemp(join(config.serve.workDir ?? tmpdir(), 'stemkit-serve-'));
  const pool = new ExecutorPool(config, config.serve.maxLoadedModels, config.serve.maxLoadedBytes ?? defaultMaxLoadedBytes());
  let jobs!: JobManager;
  const metrics = createMetrics(config, () => jobs, pool);
  jobs = new JobManager(config, queued ?? pool, workDir, { onFinished: (j) => metrics.finished(j), onRejected: (k) => metrics.rejected(k) });
  // Queued jobs run on the workers: no executors (nor local job slots) here.
  if (!queued) await pool.start();
  /** Admission against this server's queue, or the shared queue's waiting count. */
  const admit = async (kind: 'separate' | 'tts'): Promise<void> => jobs.admit(kind, queued ? await queued.waiting() : undefined);
  const slotPools = (pools: PoolName[]): PoolName[] => (queued ? [] : pools);

  let shuttingDown = false;
  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // Unknown options are errors, not silently removed; numbers are numbers.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (r) => {
    routes.push(r);
  });
  await app.register(multipart, { throwFileSizeLimit: true });

  const expected = o.token ? digest(o.token) : undefined;
  app.addHook('onRequest', async (req, reply) => {
    if (expected) {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
      // Compare digests in constant time: the token's length and prefix leak nothing.
      if (!m || !timingSafeEqual(digest(m[1]!.trim()), expected)) {
        reply.header('WWW-Authenticate', 'Bearer');
        return sendError(reply, 401, { code: 'E_UNAUTHORIZED', message: 'missing or wrong token', hint: 'send the header "Authorization: Bearer <token>"' });
      }
    }
    if (shuttingDown && req.method === 'POST') {
      reply.header('Retry-After', '30');
      return sendError(reply, 503, { code: 'E_SHUTTING_DOWN', message: 'the server is shutting down', hint: 'retry after the restart, or against another instance' });
    }
    return undefined;
  });

  app.setErrorHandler((err: unknown, _req, reply) => {
    const e = err as { validation?: unknown; validationContext?: string; message?: string; statusCode?: number; code?: string };
    if (e.validation) return sendError(reply, 400, { code: 'E_INVALID_OPTION', message: `${e.validationContext ?? 'request'}: ${e.message ?? 'invalid'}`, hint: 'see /openapi.json for the accepted options' });
    if (err instanceof HttpError) return sendError(reply, err.status, err);
    if (err instanceof StemkitError) {
      const status = httpStatus(err);
      if (status === 429) reply.header('Retry-After', String((err.details?.['retryAfter'] as number | undefined) ?? jobs.retryAfterSec()));
      return sendError(reply, status, err);
    }
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, { code: 'E_UPLOAD_TOO_LARGE', message: 'the request body is too large', hint: 'JSON bodies are limited to 1 MiB; upload files as multipart/form-data' });
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, { code: 'E_UNSUPPORTED_MEDIA_TYPE', message: 'send application/json or multipart/form-data', hint: 'see /openapi.json' });
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return sendError(reply, e.statusCode, { code: 'E_BAD_REQUEST', message: e.message ?? 'bad request' });
    log({ level: 'warn', message: `internal error: ${e.message ?? String(err)}` });
    return sendError(reply, 500, { code: 'E_INTERNAL', message: 'internal error', hint: 'see the server log' });
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, { code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}`, hint: 'see /openapi.json' }));

  const jobView = (j: Job): Record<string, unknown> => {
    const base = `/v1/jobs/${j.id}`;
    const r = j.result?.result;
    const view: Record<string, unknown> = {
      id: j.id,
      kind: j.kind,
      status: j.status,
      createdAt: new Date(j.createdAt).toISOString(),
      ...(j.startedAt !== undefined ? { startedAt: new Date(j.startedAt).toISOString() } : {}),
      ...(j.finishedAt !== undefined ? { finishedAt: new Date(j.finishedAt).toISOString() } : {}),
      ...(j.waitedSec !== undefined ? { waitedSec: j.waitedSec } : {}),
      // Events without `file`: it names the server's own folders.
      progress: Object.fromEntries(Object.entries(j.progress).map(([k, e]) => [k, { ...e, file: undefined }])),
      logs: j.logs.map((l) => ({ level: l.level, message: l.message })),
      links: { self: base, cancel: base, ...(j.status === 'succeeded' ? { files: Object.keys(j.files).map((n) => `${base}/files/${encodeURIComponent(n)}`) } : {}) },
    };
    if (r && j.status === 'succeeded') {
      view['files'] = Object.keys(j.files).map((name) => ({ name, url: `${base}/files/${encodeURIComponent(name)}` }));
      view['times'] = r.times;
      view['rtf'] = r.rtf;
      view['durationSec'] = r.durationSec;
      view['provider'] = r.provider;
      view['threads'] = r.threads;
      if ('warnings' in r) view['warnings'] = r.warnings;
      if ('model' in r) view['model'] = r.model;
    }
    if (j.error) view['error'] = errorBody(j.error).error;
    return view;
  };

  /** 202 with the job, or (wait mode) the finished job with the status its outcome deserves. */
  const answer = async (req: FastifyRequest, reply: FastifyReply, job: Job): Promise<FastifyReply> => {
    const wait = waitSeconds(req);
    if (wait > 0) {
      await jobs.waitFor(job, wait);
      reply.header('Preference-Applied', `wait=${wait}`);
    }
    reply.header('Location', `/v1/jobs/${job.id}`);
    if (!isFinal(job.status)) return reply.code(202).send(jobView(job));
    if (job.error) return reply.code(httpStatus(job.error)).send({ ...errorBody(job.error), job: jobView(job) });
    return reply.code(200).send(jobView(job));
  };

  /** A model given as a path must lie in the allow-list; registry ids pass (the executor reports unknown ones). */
  const modelRef = async (model: unknown, what: string): Promise<string | undefined> => {
    if (typeof model !== 'string') return undefined;
    if (/\.onnx$/i.test(model) || model.includes('/') || model.includes('\\')) {
      if (model.startsWith('piper:')) return model;
      return allowedPath(model, config.serve.inputRoots, what);
    }
    const { getModel } = await import('../models/registry.js');
    if (!model.startsWith('piper:')) getModel(model);
    return model;
  };

  const route = (r: RouteOptions & { doc: Doc }): void => {
    const { doc, ...opts } = r;
    app.route({ ...opts, config: { doc } });
  };

  route({
    method: 'POST',
    url: '/v1/separate',
    doc: {
      summary: 'Separate an uploaded audio/video file (multipart, field "file" + option fields) or a file under serve.inputRoots (JSON {"path", …options})',
      // Form fields arrive as text and are read by the same option table (readOptions), not by the JSON validator.
      form: objectSchema(SEPARATE_OPTIONS, { file: { type: 'string', format: 'binary', description: 'the audio or video file' } }, ['file']),
      responses: { 202: 'job accepted', 200: 'finished (wait mode)', 400: 'invalid options', 401: 'wrong token', 403: 'path outside serve.inputRoots', 404: 'unknown model / path', 413: 'upload too large', 415: 'not audio', 422: 'unreadable audio', 429: 'queue full (Retry-After)', 503: 'shutting down' },
    },
    schema: {
      querystring: WAIT_QUERY,
      body: {
        content: {
          'application/json': { schema: objectSchema(SEPARATE_OPTIONS, { path: { type: 'string', minLength: 1, description: 'absolute path of a file under serve.inputRoots' } }, ['path']) },
        },
      },
    },
    handler: async (req: FastifyRequest, reply) => {
      await admit('separate');
      const multipartBody = req.isMultipart();
      const declared = Number(req.headers['content-length'] ?? 0);
      // A declared size over the limit is refused before a byte is stored (multipart overhead allowed).
      if (multipartBody && declared > config.serve.maxUploadBytes + 1024 * 1024) throw tooLarge(config.serve.maxUploadBytes);
      const { id, dir } = await jobs.newJobDir();
      try {
        let input: string;
        let options: Record<string, unknown>;
        if (multipartBody) {
          const up = await spoolUpload(req, dir, config.serve.maxUploadBytes);
          if (!up.path) throw new HttpError(400, 'E_INVALID_OPTION', 'no file in the upload', 'send the audio in the multipart field "file"');
          options = readOptions(SEPARATE_OPTIONS, up.fields, true);
          input = up.path;
        } else {
          const body = (req.body ?? {}) as Record<string, unknown>;
          options = readOptions(SEPARATE_OPTIONS, body, false, ['path']);
          input = await allowedPath(String(body['path']), config.serve.inputRoots, 'path');
        }
        await checkMedia(input);
        await probeAudio(input, config);
        if (options['model'] !== undefined) options['model'] = await modelRef(options['model'], 'model');
        const { spec, file } = separateJob(options, join(dir, 'out'));
        const { isVideoPath } = await import('../audio/open.js');
        const pools: PoolName[] = isVideoPath(input) ? ['heavy', 'video'] : ['heavy'];
        const task: TaskSpec = { type: 'separate', key: `separate:${JSON.stringify(spec)}`, spec, input, file };
        const job = jobs.submit(id, dir, 'separate', task, slotPools(pools));
        return await answer(req, reply, job);
      } catch (e) {
        if (!jobs.get(id)) await rm(dir, { recursive: true, force: true });
        throw e;
      }
    },
  });

  route({
    method: 'POST',
    url: '/v1/tts',
    doc: { summary: 'Synthesise speech from text (JSON)', responses: { 202: 'job accepted', 200: 'finished (wait mode)', 400: 'invalid options', 401: 'wrong token', 403: 'model path outside serve.inputRoots', 404: 'unknown model', 429: 'queue full (Retry-After)', 503: 'shutting down' } },
    schema: { querystring: WAIT_QUERY, body: { content: { 'application/json': { schema: objectSchema(TTS_OPTIONS, {}, ['text']) } } } },
    handler: async (req: FastifyRequest, reply) => {
      await admit('tts');
      const options = readOptions(TTS_OPTIONS, (req.body ?? {}) as Record<string, unknown>, false);
      if (typeof options['text'] !== 'string' || options['text'].trim() === '') throw new UsageError('option text is empty', { code: 'E_EMPTY_TEXT', hint: 'give some text to speak' });
      if (queued && options['ssml'] !== undefined) throw new UsageError('option ssml is not available when jobs run on workers', { code: 'E_INVALID_OPTION', hint: 'drop it: a text that starts with <speak> is read as SSML' });
      const model = (await modelRef(options['model'] ?? 'kokoro', 'model'))!;
      const voices = options['voices'] !== undefined ? await allowedPath(String(options['voices']), config.serve.inputRoots, 'voices') : undefined;
      const { id, dir } = await jobs.newJobDir();
      const format = formatOf(options);
      const load = { ...(voices ? { voices } : {}), ...(options['precision'] !== undefined ? { precision: String(options['precision']) } : {}) };
      const task: TaskSpec = {
        type: 'tts',
        key: `tts:${JSON.stringify({ model, ...load })}`,
        model,
        load,
        text: options['text'],
        voice: ttsVoiceOptions(options),
        output: join(dir, 'out', `speech.${format}`),
        format,
        ...(options['bits'] !== undefined ? { bits: options['bits'] as 16 | 24 | 32 } : {}),
      };
      try {
        return await answer(req, reply, jobs.submit(id, dir, 'tts', task, slotPools(['heavy', 'tts'])));
      } catch (e) {
        if (!jobs.get(id)) await rm(dir, { recursive: true, force: true });
        throw e;
      }
    },
  });

  const findJob = (id: string): Job => {
    const j = jobs.get(id);
    if (!j) throw new HttpError(404, 'E_JOB_NOT_FOUND', `no job ${id}`, 'jobs are kept for serve.retention seconds after they finish');
    return j;
  };

  route({
    method: 'GET',
    url: '/v1/jobs/:id',
    doc: { summary: 'Job status, progress events, per-phase times, RTF, files and errors', responses: { 200: 'the job', 404: 'unknown job' } },
    schema: { params: JOB_ID, querystring: WAIT_QUERY },
    handler: async (req: FastifyRequest, reply) => {
      const job = findJob((req.params as { id: string }).id);
      const wait = waitSeconds(req);
      if (wait > 0) await jobs.waitFor(job, wait);
      return reply.send(jobView(job));
    },
  });

  route({
    method: 'DELETE',
    url: '/v1/jobs/:id',
    doc: { summary: 'Cancel a queued or running job (slots released, files removed); a finished job is deleted with its files', responses: { 200: 'cancelled or deleted', 404: 'unknown job' } },
    schema: { params: JOB_ID },
    handler: async (req: FastifyRequest, reply) => {
      const job = findJob((req.params as { id: string }).id);
      if (jobs.cancel(job.id)) {
        // Answer once the slots are released and the files gone, so a client can rely on it.
        await jobs.waitFor(job, 10);
        return reply.send(jobView(job));
      }
      await rm(job.dir, { recursive: true, force: true });
      job.files = {};
      return reply.send({ ...jobView(job), deleted: true });
    },
  });

  route({
    method: 'GET',
    url: '/v1/jobs/:id/files/:name',
    doc: { summary: 'Download a finished stem or audio file (Range supported)', responses: { 200: 'the file', 206: 'a range of it', 404: 'unknown job or file', 416: 'range not satisfiable' } },
    schema: { params: { type: 'object', required: ['id', 'name'], properties: { id: JOB_ID.properties.id, name: { type: 'string', minLength: 1 } } } },
    handler: async (req: FastifyRequest, reply) => {
      const job = findJob((req.params as { id: string }).id);
      const path = job.files[(req.params as { name: string }).name];
      if (!path) throw new HttpError(404, 'E_FILE_NOT_FOUND', `job ${job.id} has no file ${(req.params as { name: string }).name}`, job.status === 'succeeded' ? `files: ${Object.keys(job.files).join(', ')}` : `the job is ${job.status}`);
      const size = (await stat(path)).size;
      reply.header('Accept-Ranges', 'bytes').type(MIME[extname(path).slice(1)] ?? 'application/octet-stream');
      const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
      if (req.headers.range !== undefined) {
        let start = range?.[1] ? Number(range[1]) : undefined;
        let end = range?.[2] ? Number(range[2]) : undefined;
        if (start === undefined && end !== undefined) [start, end] = [Math.max(0, size - end), size - 1];
        start ??= 0;
        end = Math.min(end ?? size - 1, size - 1);
        if (!range || start > end || start >= size) {
          reply.header('Content-Range', `bytes */${size}`);
          return sendError(reply, 416, { code: 'E_RANGE', message: `range ${req.headers.range} is outside the file (${size} bytes)`, hint: 'ask for bytes=0-' });
        }
        reply.code(206).header('Content-Range', `bytes ${start}-${end}/${size}`).header('Content-Length', String(end - start + 1));
        return reply.send(createReadStream(path, { start, end }));
      }
      reply.header('Content-Length', String(size));
      return reply.send(createReadStream(path));
    },
  });

  route({
    method: 'GET',
    url: '/v1/models',
    doc: { summary: 'The model registry and what is installed', responses: { 200: 'models' } },
    handler: async () => {
      const [{ listModels }, { installedPrecisions }] = await Promise.all([import('../models/registry.js'), import('../models/cache.js')]);
      const models = await Promise.all(
        listModels().map(async (m) => ({
          id: m.id,
          task: m.task,
          title: m.title,
          ...(m.stems ? { stems: m.stems } : {}),
          sampleRate: m.sampleRate,
          license: m.license,
          installed: m.embedded ? ['fp32'] : await installedPrecisions(m, config),
        })),
      );
      return { models };
    },
  });

  let gpuCache: { at: number; value: unknown } | undefined;
  const gpu = async (): Promise<unknown> => {
    // nvidia-smi takes ~50–300 ms: refreshed in the background, at most every 5 s, never awaited by /health.
    if (!gpuCache || Date.now() - gpuCache.at > 5000) {
      const at = Date.now();
      gpuCache ??= { at, value: null };
      gpuCache.at = at;
      void execa('nvidia-smi', ['--query-gpu=name,memory.total,memory.used', '--format=csv,noheader,nounits'], { timeout: 3000, reject: false }).then((r) => {
        const gpus = r.exitCode === 0 ? r.stdout.trim().split('\n').filter(Boolean).map((l) => {
          const [name, total, used] = l.split(',').map((s) => s.trim());
          return { name, memoryTotalMiB: Number(total), memoryUsedMiB: Number(used) };
        }) : null;
        gpuCache = { at, value: gpus };
      }, () => undefined);
    }
    return gpuCache.value;
  };
  void gpu();

  route({
    method: 'GET',
    url: '/health',
    doc: { summary: 'Liveness and capacity: providers that initialise, GPU, slots per pool, loaded models, version; with --queue the mode, queue counts and live workers', responses: { 200: 'healthy', 503: 'shutting down' } },
    handler: async (_req, reply) => {
      const pools = await readPools(config);
      return reply.code(shuttingDown ? 503 : 200).send({
        status: shuttingDown ? 'shutting-down' : 'ok',
        version: o.version,
        profile: config.profile,
        providers: pool.providerStatus() ?? [],
        gpus: await gpu(),
        slots: Object.fromEntries(pools.map((p) => [p.pool, { used: p.used, limit: p.limit }])),
        queue: { queued: jobs.queued(), running: jobs.running().length, maxQueued: config.serve.maxQueued },
        mode: queued ? 'queue' : 'local',
        ...(queued ? { workQueue: { name: queued.client.name, ...(await queued.status()) } } : {}),
        loadedModels: pool.loadedModels(),
        maxLoadedModels: config.serve.maxLoadedModels,
        maxLoadedBytes: config.serve.maxLoadedBytes ?? defaultMaxLoadedBytes(),
      });
    },
  });

  route({
    method: 'GET',
    url: '/metrics',
    doc: { summary: 'Prometheus metrics (text format)', responses: { 200: 'metrics' } },
    handler: async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  });

  let openapi: Record<string, unknown> | undefined;
  route({
    method: 'GET',
    url: '/openapi.json',
    doc: { summary: 'This document', responses: { 200: 'OpenAPI 3.1' } },
    handler: async () => (openapi ??= buildOpenApi(routes, o.version, Boolean(o.token))),
  });

  await app.listen({ host, port });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  log({ level: 'info', message: `stemkit serve listening on ${url} (profile ${config.profile}: ${config.maxConcurrentHeavyTasks} heavy slots, queue ${config.serve.maxQueued})` });

  return {
    url,
    port: actualPort,
    async shutdown(now) {
      shuttingDown = true;
      const aborted = await jobs.shutdown(config.serve.shutdownGrace, now);
      await app.close();
      await pool.close();
      await queued?.client.close();
      await jobs.close();
      return aborted;
    },
  };
}

/** Connects to the queue for `serve --queue` (UnavailableError 69 when Redis cannot be reached). */
async function openRunner(url: string, config: ResolvedConfig, log: (e: LogEvent) => void): Promise<QueueRunner> {
  const [{ checkQueueUrl }, { openQueue }, { submitter }, { QueueRunner: Runner }] = await Promise.all([
    import('../queue/connection.js'),
    import('../queue/client.js'),
    import('../queue/worker.js'),
    import('./queued.js'),
  ]);
  return new Runner(await openQueue(checkQueueUrl(url), config, { onLog: log }), config, submitter());
}

/**
 * Opens the input as the pipeline will (WAV natively, the rest through ffprobe/ffmpeg) and closes it:
 * unreadable audio is a 422 at submit time instead of a failed job later.
 */
async function probeAudio(path: string, config: ResolvedConfig): Promise<void> {
  const { openAudioSource } = await import('../audio/open.js');
  const src = await openAudioSource(path, { ...(config.ffmpegPath ? { ffmpegPath: config.ffmpegPath } : {}), ...(config.ffprobePath ? { ffprobePath: config.ffprobePath } : {}) });
  await src.close();
}

const MIME: Record<string, string> = {
  wav: 'audio/wav',
  flac: 'audio/flac',
  mp3: 'audio/mpeg',
  opus: 'audio/opus',
  ogg: 'audio/ogg',
  m4a: 'audio/mp4',
  mp4: 'video/mp4',
  mkv: 'video/x-matroska',
  webm: 'video/webm',
  mov: 'video/quicktime',
};

/** OpenAPI 3.1 from the registered routes: parameters and request bodies are the routes' own JSON schemas. */
export function buildOpenApi(routes: readonly RouteOptions[], version: string, secured: boolean): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const doc = (r.config as { doc?: Doc } | undefined)?.doc;
    if (!doc) continue;
    const url = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const schema = (r.schema ?? {}) as { params?: { properties?: Record<string, unknown> }; querystring?: { properties?: Record<string, unknown> }; body?: { content?: Record<string, { schema: unknown }> } };
    const parameters = [
      ...Object.entries(schema.params?.properties ?? {}).map(([name, s]) => ({ name, in: 'path', required: true, schema: s })),
      ...Object.entries(schema.querystring?.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: false, schema: s })),
    ];
    const op: Record<string, unknown> = {
      summary: doc.summary,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(schema.body?.content
        ? {
            requestBody: {
              required: true,
              content: { ...Object.fromEntries(Object.entries(schema.body.content).map(([t, c]) => [t, { schema: c.schema }])), ...(doc.form ? { 'multipart/form-data': { schema: doc.form } } : {}) },
            },
          }
        : {}),
      responses: Object.fromEntries(
        Object.entries(doc.responses).map(([code, description]) => [code, Number(code) >= 400 ? { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } : { description }]),
      ),
    };
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) (paths[url] ??= {})[m.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'stemkit', version, description: 'Stem separation and text-to-speech jobs; limits are the machine\'s job slots.' },
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      ...(secured ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {}),
    },
    ...(secured ? { security: [{ bearer: [] }] } : {}),
  };
}
