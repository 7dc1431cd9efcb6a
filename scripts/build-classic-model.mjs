#!/usr/bin/env node
// Generates models/classic.onnx, the embedded `classic` separator, from buildClassicModel() in
// src/separate/classic.ts and the refiner weights in models/classic-refiner.json. Deterministic: the same bytes on every run (test/classic checks the committed file).
// Run: npm run build && node scripts/build-classic-model.mjs [--check]
//   --check: exit 1 when models/classic.onnx differs from what the code generates (for CI).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lib = join(root, 'dist', 'separate', 'classic.js');
if (!existsSync(lib)) {
  console.error(`error: ${lib} is missing\nhint: run \`npm run build\` first`);
  process.exit(1);
}
const { buildClassicModel, parseRefiner } = await import(lib);
// The refiner's weights (scripts/train-refiner.py) become constants of the graph.
const bytes = buildClassicModel(parseRefiner(readFileSync(join(root, 'models', 'classic-refiner.json'), 'utf8')));
const out = join(root, 'models', 'classic.onnx');
const sha = createHash('sha256').update(bytes).digest('hex');
if (process.argv.includes('--check')) {
  const have = existsSync(out) ? createHash('sha256').update(readFileSync(out)).digest('hex') : 'missing';
  if (have !== sha) {
    console.error(`models/classic.onnx is stale (${have} != ${sha})\nhint: run node scripts/build-classic-model.mjs`);
    process.exit(1);
  }
  console.log(`models/classic.onnx is up to date (${bytes.length} bytes, sha256 ${sha})`);
} else {
  writeFileSync(`${out}.tmp`, bytes);
  renameSync(`${out}.tmp`, out);
  console.log(`wrote models/classic.onnx (${bytes.length} bytes, sha256 ${sha})`);
}
