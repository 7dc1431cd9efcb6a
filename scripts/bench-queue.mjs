#!/usr/bin/env node
// Queue throughput on ONE machine: jobs/minute with 1, 2 and 3 `stemkit worker` processes (small profile,
// one runtime directory, so all share the machine's 2 heavy slots), the per-job queue overhead
// (enqueue → a worker starts it, with idle workers), and why the workers run jobs in-process: time and
// memory of a warm worker per job against a fresh `stemkit separate` process per job.
//
//   npm run build && node scripts/bench-queue.mjs [--jobs 12] [--seconds 5] [--workers 1,2,3] [--json] [--keep]
//
// Inputs: --seconds long synthetic stereo tracks (a chord plus noise) through the embedded `classic` model.
// Starts its own redis-server on 127.0.0.1 at a free port (Debian's redis-server must be on PATH).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'stemkit.js');

function args(argv) {
  const o = { jobs: 12, seconds: 5, workers: [1, 2, 3], json: false, keep: false, overheadJobs: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--jobs') o.jobs = Number(argv[++i]);
    else if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a === '--workers') o.workers = argv[++i].split(',').map(Number);
    else if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A stereo WAV (through the built audio layer): an A-minor chord plus a little noise (deterministic). */
async function writeTrack(path, seconds, seed) {
  const { createAudioSink } = await import(join(root, 'dist', 'audio', 'open.js'));
  const rate = 44100;
  const ch = new Float32Array(Math.round(rate * seconds));
  let s = seed >>> 0;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  for (let i = 0; i < ch.length; i++) {
    const t = i / rate;
    ch[i] = 0.15 * (Math.sin(2 * Math.PI * 220 * t) + Math.sin(2 * Math.PI * 261.63 * t) + Math.sin(2 * Math.PI * 329.63 * t)) + 0.02 * rnd();
  }
  const sink = await createAudioSink(path, { sampleRate: rate, channels: 2, format: 'wav', bits: 16 });
  await sink.write({ sampleRate: rate, channels: [ch, ch] });
  await sink.finish();
}

function startProc(argv, env) {
  const child = spawn(process.execPath, [bin, ...argv], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (c) => {
    buf += c;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(l));
      } catch {
        // not JSON
      }
    }
  });
  child.stderr.resume();
  const exited = new Promise((r) => child.on('close', (code) => r(code)));
  return { child, lines, exited };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, ms = 300_000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await sleep(50);
  }
}

/** Resident memory of a process and its descendants (a worker and its executor processes), in MB. */
function rssMB(pid) {
  let kb = 0;
  const visit = (p) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += m ? Number(m[1]) : 0;
      for (const c of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) visit(Number(c));
    } catch {
      // gone meanwhile
    }
  };
  visit(pid);
  return kb / 1024;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const o = args(process.argv.slice(2));
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('redis-server is not on PATH (Debian: apt-get install redis-server)');
  const work = mkdtempSync(join(tmpdir(), 'stemkit-bench-queue-'));
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const env = { STEMKIT_RUNTIME_DIR: join(work, 'run'), STEMKIT_CACHE_DIR: join(work, 'cache'), STEMKIT_QUEUE_URL: url };
  writeFileSync(join(work, 'stemkit.json'), JSON.stringify({ queue: { roots: [work] } }));
  const common = ['--profile', 'small', '--config', join(work, 'stemkit.json'), '--json', '--device', 'cpu'];
  const { openQueue } = await import(join(root, 'dist', 'queue', 'client.js'));
  const { resolveConfig } = await import(join(root, 'dist', 'config', 'resolve.js'));
  await sleep(300);
  const client = await openQueue(url, resolveConfig({ env: {}, flags: {}, cores: 1 }).config);
  mkdirSync(join(work, 'in'));
  const inputs = [];
  for (let k = 0; k < o.jobs; k++) {
    const p = join(work, 'in', `track${String(k).padStart(2, '0')}.wav`);
    await writeTrack(p, o.seconds, k + 1);
    inputs.push(p);
  }
  const submit = async (paths, out) => {
    const p = startProc([...common, 'separate', ...paths, '-o', out, '--queue'], env);
    await p.exited;
    return p.lines.filter((l) => l.type === 'job').map((l) => String(l.id));
  };
  const finished = async (ids) => {
    const jobs = await Promise.all(ids.map((id) => client.queue.getJob(id)));
    return jobs.every((j) => j && j.finishedOn);
  };
  const results = { machine: { cores: (await import('node:os')).availableParallelism(), profile: 'small' }, jobs: o.jobs, trackSeconds: o.seconds, runs: [] };
  try {
    for (const n of o.workers) {
      const workers = Array.from({ length: n }, () => startProc([...common, 'worker', '--drain', '0'], env));
      await until(() => workers.every((w) => w.lines.some((l) => l.type === 'worker' && l.event === 'ready')));
      // Warm-up: two jobs per worker (each runs 2 at once, one model instance each), so model loads are not counted.
      const warm = await submit(inputs.slice(0, Math.min(inputs.length, 2 * n)), join(work, `warm${n}`));
      await until(() => finished(warm));
      const t0 = Date.now();
      const ids = await submit(inputs, join(work, `out${n}`));
      await until(() => finished(ids));
      const wall = (Date.now() - t0) / 1000;
      const jobs = await Promise.all(ids.map((id) => client.queue.getJob(id)));
      const perJob = jobs.map((j) => j.returnvalue.times.total);
      results.runs.push({ workers: n, wallSec: wall, jobsPerMin: (60 * o.jobs) / wall, medianJobSec: median(perJob), rssMB: workers.map((w) => Math.round(rssMB(w.child.pid))) });
      for (const w of workers) w.child.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
    }

    // Queue overhead: one idle worker, jobs submitted one at a time; enqueue (job.timestamp) → start (processedOn).
    const w = startProc([...common, 'worker', '--drain', '0'], env);
    await until(() => w.lines.some((l) => l.type === 'worker' && l.event === 'ready'));
    const overhead = [];
    const warmPerJob = [];
    const rss = [];
    for (let k = 0; k < o.overheadJobs; k++) {
      const [id] = await submit([inputs[k % inputs.length]], join(work, `oh${k}`));
      await until(() => finished([id]));
      const j = await client.queue.getJob(id);
      overhead.push(j.processedOn - j.timestamp);
      if (k > 0) warmPerJob.push(j.returnvalue.times.total);
      rss.push(Math.round(rssMB(w.child.pid)));
    }
    w.child.kill('SIGTERM');
    await w.exited;
    results.overheadMs = { median: median(overhead), max: Math.max(...overhead) };
    results.warmWorker = { medianJobSec: median(warmPerJob), rssMBAfterEachJob: rss };

    // The alternative to in-process jobs: a fresh process per job (node start-up + model load each time).
    const fresh = [];
    for (let k = 0; k < 3; k++) {
      const t0 = Date.now();
      const p = startProc([...common, 'separate', inputs[k], '-o', join(work, `fresh${k}`), '--force'], env);
      await p.exited;
      fresh.push((Date.now() - t0) / 1000);
    }
    results.freshProcess = { medianJobSec: median(fresh) };
  } finally {
    await client.close();
    redis.kill('SIGTERM');
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  }

  if (o.json) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
    return;
  }
  const r = results;
  console.log(`One machine: ${r.machine.cores} cores, profile small (2 heavy slots shared by every worker); ${r.jobs} jobs of ${r.trackSeconds} s tracks, classic model`);
  console.log('workers  wall (s)  jobs/min  × 1 worker  median job (s)  RSS per worker with its executors (MB)');
  const base = r.runs[0]?.jobsPerMin ?? 1;
  for (const x of r.runs) console.log(`${String(x.workers).padStart(7)}  ${x.wallSec.toFixed(1).padStart(8)}  ${x.jobsPerMin.toFixed(1).padStart(8)}  ${(x.jobsPerMin / base).toFixed(2).padStart(10)}  ${x.medianJobSec.toFixed(2).padStart(14)}  ${x.rssMB.join(', ')}`);
  console.log(`queue overhead, enqueue → start with an idle worker: median ${r.overheadMs.median} ms, max ${r.overheadMs.max} ms`);
  console.log(`per job: warm worker ${r.warmWorker.medianJobSec.toFixed(2)} s vs a fresh process per job ${r.freshProcess.medianJobSec.toFixed(2)} s (node start-up + model load)`);
  console.log(`warm worker RSS with its executors after each of ${r.warmWorker.rssMBAfterEachJob.length} jobs (MB): ${r.warmWorker.rssMBAfterEachJob.join(' ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
