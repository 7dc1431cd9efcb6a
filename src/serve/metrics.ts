/**
 * Prometheus metrics of `stemkit serve` (GET /metrics): jobs by status, per-phase time histograms,
 * queue and slot occupancy, loaded models. One private registry per server.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ResolvedConfig } from '../config/schema.js';
import { readPools } from '../jobs/semaphore.js';
import type { Job, JobKind, JobManager } from './jobs.js';
import type { ExecutorPool } from './pool.js';

export interface ServeMetrics {
  registry: Registry;
  finished(job: Job): void;
  rejected(kind: JobKind): void;
}

export function createMetrics(config: ResolvedConfig, jobs: () => JobManager, pool: ExecutorPool): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'stemkit_' });
  const total = new Counter({ name: 'stemkit_jobs_total', help: 'Jobs by kind and final status (rejected = answered 429).', labelNames: ['kind', 'status'], registers: [registry] });
  const phase = new Histogram({
    name: 'stemkit_job_phase_seconds',
    help: 'Seconds per phase of finished jobs (load is 0 when the model was warm).',
    labelNames: ['kind', 'phase'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600],
    registers: [registry],
  });
  const rtf = new Histogram({ name: 'stemkit_job_rtf', help: 'Real-time factor of finished jobs (processing ÷ audio seconds).', labelNames: ['kind'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers: [registry] });
  new Gauge({
    name: 'stemkit_jobs',
    help: 'Jobs now queued or running in this server.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const m = jobs();
      this.set({ state: 'queued' }, m.queued());
      this.set({ state: 'running' }, m.running().length);
    },
  });
  const slotsUsed = new Gauge({ name: 'stemkit_slots_used', help: 'Machine-wide job slots in use (this server and CLI runs).', labelNames: ['pool'], registers: [registry] });
  new Gauge({
    name: 'stemkit_slots_limit',
    help: 'Job slots of the profile.',
    labelNames: ['pool'],
    registers: [registry],
    async collect() {
      for (const p of await readPools(config)) {
        this.set({ pool: p.pool }, p.limit);
        slotsUsed.set({ pool: p.pool }, p.used);
      }
    },
  });
  new Gauge({
    name: 'stemkit_loaded_models',
    help: 'Models kept loaded (warm) across executors.',
    registers: [registry],
    collect() {
      this.set(pool.loadedModels().length);
    },
  });
  return {
    registry,
    finished(job) {
      total.inc({ kind: job.kind, status: job.status });
      const r = job.result;
      if (!r || job.status !== 'succeeded') return;
      const times = r.result.times as unknown as Record<string, number | undefined>;
      for (const k of ['load', 'decode', 'phonemize', 'infer', 'write', 'total']) {
        const v = times[k];
        if (typeof v === 'number') phase.observe({ kind: job.kind, phase: k }, v);
      }
      rtf.observe({ kind: job.kind }, r.result.rtf);
    },
    rejected(kind) {
      total.inc({ kind, status: 'rejected' });
    },
  };
}
