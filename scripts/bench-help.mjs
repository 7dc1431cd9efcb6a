#!/usr/bin/env node
// Measures `node bin/stemkit.js --help` wall time: N runs (default 15, `--runs N`), reports the median
// against the 0.3 s target. `--check` exits 1 when the median misses the target. Needs a build (npm run build).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'stemkit.js');
const TARGET_S = 0.3;

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 15;
const check = args.includes('--check');
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: node scripts/bench-help.mjs [--runs N] [--check]');
  process.exit(64);
}
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) {
  console.error('dist/cli/main.js is missing: run `npm run build` first');
  process.exit(69);
}

const once = () => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, '--help'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) {
    console.error(`stemkit --help exited ${r.status}: ${r.stderr}`);
    process.exit(70);
  }
  return s;
};

once(); // warm the file-system cache; not counted
const times = Array.from({ length: runs }, once).sort((a, b) => a - b);
const median = runs % 2 ? times[(runs - 1) / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
const fmt = (s) => `${(s * 1000).toFixed(0)} ms`;
console.log(`stemkit --help: median ${fmt(median)} over ${runs} runs (min ${fmt(times[0])}, max ${fmt(times[runs - 1])}); target < ${fmt(TARGET_S)}: ${median < TARGET_S ? 'met' : 'MISSED'}`);
// For comparison: the bare cost of starting node on this machine.
const t0 = process.hrtime.bigint();
spawnSync(process.execPath, ['-e', '0']);
console.log(`(node -e 0 alone: ${fmt(Number(process.hrtime.bigint() - t0) / 1e9)})`);
if (check && median >= TARGET_S) process.exit(1);
