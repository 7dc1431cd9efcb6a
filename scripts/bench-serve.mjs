#!/usr/bin/env node
// What `stemkit serve` saves over the CLI, and how responsive it stays while every slot is busy.
//
//   npm run build && node scripts/bench-serve.mjs [--n 50] [--seconds 2] [--profile small] [--health 200] [--json]
//
// Part 1, side by side on one input (a --seconds long stereo WAV, the embedded classic model, mode 2):
//   - n sequential `node bin/stemkit.js separate` runs (each loads Node, the engine and the model);
//   - n sequential HTTP jobs (POST /v1/separate?wait=true, multipart) against one server (the model stays warm).
//   Reported: wall seconds, CPU seconds (the CLI processes; the server and its executors, from /proc),
//   the summed model `load` phase of each side, and the ratios.
// Part 2: /health latency (p50, p95, max over --health requests) while the profile's heavy slots are all
//   held by long jobs and the queue is full, against the same server when idle.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'stemkit.js');

const o = { n: 50, seconds: 2, profile: 'small', health: 200, json: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--n') o.n = Number(process.argv[++i]);
  else if (a === '--seconds') o.seconds = Number(process.argv[++i]);
  else if (a === '--profile') o.profile = process.argv[++i];
  else if (a === '--health') o.health = Number(process.argv[++i]);
  else if (a === '--json') o.json = true;
  else throw new Error(`unknown argument ${a}`);
}

const work = mkdtempSync(join(tmpdir(), 'stemkit-bench-serve-'));
const env = { ...process.env, STEMKIT_RUNTIME_DIR: join(work, 'run'), STEMKIT_CACHE_DIR: join(work, 'cache'), STEMKIT_TOKEN: '', NO_COLOR: '1' };
const TICK = 100; // USER_HZ on Linux

function writeSine(path, seconds, freq) {
  const rate = 44100;
  const frames = Math.round(rate * seconds);
  const data = Buffer.alloc(frames * 4);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(0.3 * Math.sin((2 * Math.PI * freq * i) / rate) * 32767);
    data.writeInt16LE(v, i * 4);
    data.writeInt16LE(v, i * 4 + 2);
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8); h.write('fmt ', 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(2, 22); h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 4, 28); h.writeUInt16LE(4, 32); h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([h, data]));
}

/** utime + stime of a process and of its live children (seconds), from /proc. */
function cpuOfTree(pid) {
  const stat = (p) => {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / TICK;
    } catch {
      return 0;
    }
  };
  let total = stat(pid);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) total += stat(Number(d));
    } catch {
      // gone
    }
  }
  return total;
}

/** CPU seconds of this process's waited-for children (cutime + cstime). */
function childrenCpu() {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[13]) + Number(x[14])) / TICK;
}

async function startServer(extraConfig = {}) {
  const config = join(work, `serve-${Date.now()}.json`);
  writeFileSync(config, JSON.stringify({ serve: { inputRoots: [work], ...extraConfig } }));
  const child = spawn(process.execPath, [bin, '--json', '--profile', o.profile, '--device', 'cpu', '--config', config, 'serve', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (c) => {
      buf += c;
      const m = /"type":"listening","url":"([^"]+)"/.exec(buf);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, url };
}

async function stop(server) {
  server.child.kill('SIGTERM');
  await new Promise((r) => server.child.once('exit', r));
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

const input = join(work, 'song.wav');
writeSine(input, o.seconds, 220);

// Part 1a: n CLI runs.
let cliLoad = 0;
const cliCpu0 = childrenCpu();
let t0 = performance.now();
for (let i = 0; i < o.n; i++) {
  const r = spawnSync(process.execPath, [bin, '--json', '--profile', o.profile, '--device', 'cpu', 'separate', input, '--mode', '2', '--force', '-o', join(work, 'cli')], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`CLI run failed: ${r.stderr}`);
  const rec = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((j) => j.type === 'file');
  cliLoad += rec.times.load;
}
const cliWall = (performance.now() - t0) / 1000;
const cliCpu = childrenCpu() - cliCpu0;

// Part 1b: n HTTP jobs against one server (its start is counted).
t0 = performance.now();
const server = await startServer();
const startSec = (performance.now() - t0) / 1000;
let httpLoad = 0;
const body = readFileSync(input);
for (let i = 0; i < o.n; i++) {
  const fd = new FormData();
  fd.append('mode', '2');
  fd.append('file', new Blob([body]), 'song.wav');
  const res = await fetch(`${server.url}/v1/separate?wait=true`, { method: 'POST', body: fd });
  const job = await res.json();
  if (res.status !== 200) throw new Error(`HTTP job failed: ${JSON.stringify(job)}`);
  for (const f of job.files) await (await fetch(`${server.url}${f.url}`)).arrayBuffer();
  await fetch(`${server.url}/v1/jobs/${job.id}`, { method: 'DELETE' });
  httpLoad += job.times.load;
}
const httpWall = (performance.now() - t0) / 1000;
const httpCpu = cpuOfTree(server.child.pid);
await stop(server);

// Part 2: /health latency, idle vs every heavy slot busy and the queue full.
const loaded = await startServer({ maxQueued: 2 });
const long = join(work, 'long.wav');
writeSine(long, 120, 110);
async function healthLatencies() {
  const out = [];
  for (let i = 0; i < o.health; i++) {
    const t = performance.now();
    const r = await fetch(`${loaded.url}/health`);
    await r.arrayBuffer();
    out.push(performance.now() - t);
    await new Promise((r2) => setTimeout(r2, 5));
  }
  return out;
}
const idle = await healthLatencies();
const ids = [];
for (;;) {
  const r = await fetch(`${loaded.url}/v1/separate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: long, mode: 4 }) });
  if (r.status === 429) break;
  ids.push((await r.json()).id);
}
// Wait until the running jobs are inside inference.
for (;;) {
  const h = await (await fetch(`${loaded.url}/health`)).json();
  if (h.queue.running >= h.slots.heavy.limit) break;
  await new Promise((r) => setTimeout(r, 50));
}
const busy = await healthLatencies();
const busyHealth = await (await fetch(`${loaded.url}/health`)).json();
for (const id of ids) await fetch(`${loaded.url}/v1/jobs/${id}`, { method: 'DELETE' });
await stop(loaded);
rmSync(work, { recursive: true, force: true });

const report = {
  n: o.n,
  inputSeconds: o.seconds,
  profile: o.profile,
  cli: { wallSec: cliWall, cpuSec: cliCpu, loadSec: cliLoad },
  http: { wallSec: httpWall, cpuSec: httpCpu, loadSec: httpLoad, serverStartSec: startSec },
  ratios: { wall: cliWall / httpWall, cpu: cliCpu / httpCpu },
  health: {
    idleMs: { p50: quantile(idle, 0.5), p95: quantile(idle, 0.95), max: Math.max(...idle) },
    busyMs: { p50: quantile(busy, 0.5), p95: quantile(busy, 0.95), max: Math.max(...busy) },
    busySlots: busyHealth.slots.heavy,
    queued: busyHealth.queue.queued,
  },
};
if (o.json) console.log(JSON.stringify(report));
else {
  const f = (x) => x.toFixed(2);
  console.log(`${o.n} separations of a ${o.seconds}s WAV (classic, mode 2, profile ${o.profile}):`);
  console.log(`  CLI : wall ${f(cliWall)}s  cpu ${f(cliCpu)}s  model load ${f(cliLoad)}s in total`);
  console.log(`  HTTP: wall ${f(httpWall)}s  cpu ${f(httpCpu)}s  model load ${f(httpLoad)}s in total (server start ${f(startSec)}s included)`);
  console.log(`  saved: ${f(cliWall - httpWall)}s wall (×${f(report.ratios.wall)}), ${f(cliCpu - httpCpu)}s cpu (×${f(report.ratios.cpu)})`);
  const h = report.health;
  console.log(`/health over ${o.health} requests: idle p50 ${f(h.idleMs.p50)} ms, p95 ${f(h.idleMs.p95)} ms, max ${f(h.idleMs.max)} ms`);
  console.log(`  with ${h.busySlots.used}/${h.busySlots.limit} heavy slots busy and ${h.queued} queued: p50 ${f(h.busyMs.p50)} ms, p95 ${f(h.busyMs.p95)} ms, max ${f(h.busyMs.max)} ms`);
}
