#!/usr/bin/env node
// Starts N stemkit jobs at the same moment on one fresh runtime directory and reports the largest number
// that ran at once, which must not exceed the profile's maxConcurrentHeavyTasks.
//
//   npm run build && node scripts/concurrency-check.mjs [--n 20] [--profile small] [--mode lib|cli] [--hold-ms 300]
//                                                       [--matmuls 6] [--seconds 1] [--json] [--keep]
//
// --mode lib (default): each job is a separate node process that takes a heavy slot through the built
//   library (dist/jobs/semaphore.js), holds it for --hold-ms and releases it.
// --mode cli: each job is a real `node bin/stemkit.js --profile <p> --json --verbose separate <wav> --model <slow.onnx>`
//   on an identity model with the MDX-Net contract made slow by --matmuls chained 256×256 MatMuls, over a
//   --seconds long sine.
//
// Two independent measurements: (1) each process reports when its turn started and ended; the largest
// number of overlapping [start, end] intervals; (2) a monitor in this process samples the slot files every
// few milliseconds and records the largest number of live holders it ever saw.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);

function args(argv) {
  const o = { n: 20, profile: 'small', mode: 'lib', holdMs: 300, json: false, matmuls: 6, seconds: 1, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--n') o.n = Number(argv[++i]);
    else if (a === '--profile') o.profile = argv[++i];
    else if (a === '--mode') o.mode = argv[++i];
    else if (a === '--hold-ms') o.holdMs = Number(argv[++i]);
    else if (a === '--matmuls') o.matmuls = Number(argv[++i]);
    else if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--child') o.child = JSON.parse(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** Largest number of intervals covering one instant (an interval that ends when another starts does not overlap it). */
export function maxOverlap(intervals) {
  const pts = [];
  for (const [s, e] of intervals) pts.push([s, 1], [e, -1]);
  pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of pts) max = Math.max(max, (cur += d));
  return max;
}

async function child(c) {
  const { acquireSlots } = await import(dist('jobs/semaphore.js'));
  const lease = await acquireSlots({ pools: ['heavy'], config: c.config, wait: true, command: 'concurrency-check' });
  const start = Date.now();
  await new Promise((r) => setTimeout(r, c.holdMs));
  const end = Date.now();
  await lease.release();
  process.stdout.write(`${JSON.stringify({ start, end, waitedSec: lease.waitedSec })}\n`);
}

function run(cmd, argv, env) {
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code, signal) => resolve({ code: code ?? signal, out, err }));
  });
}

function jsonLines(text) {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return undefined;
      }
    })
    .filter(Boolean);
}

async function main() {
  const o = args(process.argv.slice(2));
  if (o.child) return child(o.child);

  const { BUILTIN_PROFILES } = await import(dist('config/schema.js'));
  const { readPools } = await import(dist('jobs/semaphore.js'));
  const profile = BUILTIN_PROFILES[o.profile];
  if (!profile) throw new Error(`unknown profile ${o.profile}`);
  const config = { ...profile, runtimeDir: undefined };
  const work = mkdtempSync(join(tmpdir(), 'stemkit-conc-'));
  const runtimeDir = join(work, 'runtime');
  mkdirSync(runtimeDir);

  // Monitor: sample the slot files.
  let monitorMax = 0;
  let sampling = true;
  const monitor = (async () => {
    while (sampling) {
      const pools = await readPools(config, runtimeDir);
      monitorMax = Math.max(monitorMax, pools[0].used);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  const t0 = Date.now();
  let jobs;
  if (o.mode === 'lib') {
    const c = { config: { ...config, runtimeDir }, holdMs: o.holdMs };
    jobs = await Promise.all(Array.from({ length: o.n }, () => run(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(c)], {})));
  } else if (o.mode === 'cli') {
    jobs = await runCli(o, work, runtimeDir);
  } else {
    throw new Error(`unknown mode ${o.mode}`);
  }
  const wallSec = (Date.now() - t0) / 1000;
  // CLI mode: every job must have written both stems.
  const outputsComplete = o.mode === 'cli' ? jobs.filter((_, i) => ['vocals', 'instrumental'].every((s) => existsSync(join(work, `out-${i}`, 'in', `${s}.wav`)))).length : undefined;
  sampling = false;
  await monitor;

  const intervals = [];
  let maxWaitSec = 0;
  for (const j of jobs) {
    const rec = o.mode === 'lib' ? jsonLines(j.out)[0] : cliInterval(j.err);
    if (rec) intervals.push([rec.start, rec.end]);
    if (rec?.waitedSec !== undefined) maxWaitSec = Math.max(maxWaitSec, rec.waitedSec);
  }
  const result = {
    mode: o.mode,
    profile: o.profile,
    limit: profile.maxConcurrentHeavyTasks,
    invocations: o.n,
    exitCodes: jobs.map((j) => j.code),
    intervalsReported: intervals.length,
    maxConcurrencyFromTimestamps: maxOverlap(intervals),
    maxConcurrencyFromSlotMonitor: monitorMax,
    maxWaitSec,
    wallSec,
    ...(outputsComplete === undefined ? {} : { outputsComplete }),
  };
  if (!o.keep) rmSync(work, { recursive: true, force: true });
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      `${o.n} simultaneous ${o.mode === 'cli' ? 'stemkit separate' : 'slot-holding'} processes, profile ${o.profile} (maxConcurrentHeavyTasks ${result.limit})\n` +
        `  exit codes: ${JSON.stringify(countBy(result.exitCodes))}\n` +
        `  max concurrency from per-process start/end timestamps: ${result.maxConcurrencyFromTimestamps} (${intervals.length} intervals)\n` +
        `  max live slot holders seen by the monitor: ${monitorMax}\n` +
        (outputsComplete === undefined ? '' : `  jobs with both stems written: ${outputsComplete}/${o.n}\n`) +
        `  longest wait for a slot: ${maxWaitSec.toFixed(1)} s; wall time: ${wallSec.toFixed(1)} s\n`,
    );
    for (const j of jobs) if (j.code !== 0) process.stderr.write(`failed job (${j.code}): ${j.err.slice(-500)}\n`);
  }
  const ok = result.exitCodes.every((c) => c === 0) && intervals.length === o.n && (outputsComplete ?? o.n) === o.n && result.maxConcurrencyFromTimestamps <= result.limit && monitorMax <= result.limit;
  process.exitCode = ok ? 0 : 1;
}

function countBy(xs) {
  const m = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}

// --- CLI mode ------------------------------------------------------------------------------------------

/**
 * The start/end of a separate job's turn: the slot take/release times that stemkit logs at debug level
 * (`took slot heavy-0 at <ISO> …`, `releasing slot heavy-0 at <ISO>`; JSON lines on stderr with --json --verbose).
 */
function cliInterval(stderr) {
  let start;
  let end;
  let waitedSec;
  for (const r of jsonLines(stderr)) {
    if (r.type !== 'log' || typeof r.message !== 'string') continue;
    const t = /^took slot \S+ at (\S+Z) \(waited ([\d.]+) s\)/.exec(r.message);
    if (t) {
      start = Date.parse(t[1]);
      waitedSec = Number(t[2]);
    }
    const e = /^releasing slot \S+ at (\S+Z)$/.exec(r.message);
    if (e) end = Date.parse(e[1]);
  }
  return start !== undefined && end !== undefined ? { start, end, waitedSec } : undefined;
}

async function runCli(o, work, runtimeDir) {
  const { GraphBuilder } = await import(dist('onnx/builder.js'));
  // Identity on the MDX-Net contract, made slow with a chain of 256×256 identity MatMuls (exact in float32).
  const dimF = 2048;
  const g = new GraphBuilder('slow_identity_mdx');
  let x = g.input('input', 'float32', ['batch', 4, dimF, 256]);
  const eye = new Float32Array(256 * 256);
  for (let i = 0; i < 256; i++) eye[i * 256 + i] = 1;
  const w = g.constant(eye, [256, 256], 'eye');
  for (let i = 0; i < o.matmuls; i++) x = g.op('MatMul', [x, w], {}, i === o.matmuls - 1 ? 'output' : undefined);
  g.output('output', 'float32', ['batch', 4, dimF, 256]);
  const model = join(work, 'slow.onnx');
  writeFileSync(model, g.build());
  // Sidecar in UVR's model-data format (what `separate --model x.onnx` reads from x.json).
  writeFileSync(join(work, 'slow.json'), JSON.stringify({ compensate: 1, mdx_dim_f_set: dimF, mdx_dim_t_set: 8, mdx_n_fft_scale_set: 5120, primary_stem: 'Vocals' }));
  const input = join(work, 'in.wav');
  writeFileSync(input, sineWav(44100, 2, o.seconds));
  const jobs = [];
  for (let i = 0; i < o.n; i++) {
    const out = join(work, `out-${i}`);
    jobs.push(
      run(process.execPath, [join(root, 'bin', 'stemkit.js'), '--profile', o.profile, '--json', '--verbose', '--device', 'cpu', 'separate', input, '--model', model, '-o', out], {
        STEMKIT_RUNTIME_DIR: runtimeDir,
      }),
    );
  }
  return Promise.all(jobs);
}

/** A 16-bit PCM WAV of a 440 Hz sine at amplitude 0.3. */
function sineWav(rate, channels, seconds) {
  const frames = Math.round(rate * seconds);
  const data = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(0.3 * Math.sin((2 * Math.PI * 440 * i) / rate) * 32767);
    for (let c = 0; c < channels; c++) data.writeInt16LE(v, (i * channels + c) * 2);
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

await main();
