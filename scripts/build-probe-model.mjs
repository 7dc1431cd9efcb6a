#!/usr/bin/env node
// Writes models/doctor-probe.onnx, the tiny model `stemkit doctor` runs on every provider, from
// buildProbeModel() in src/onnx/probe.ts (deterministic; test/cli/doctor.test.ts checks the committed file).
// Run: npm run build && node scripts/build-probe-model.mjs
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { buildProbeModel, PROBE_MODEL_FILE } = await import(join(root, 'dist', 'onnx', 'probe.js'));
const out = join(root, 'models', PROBE_MODEL_FILE);
const bytes = buildProbeModel();
writeFileSync(`${out}.tmp`, bytes);
renameSync(`${out}.tmp`, out);
console.log(`wrote models/${PROBE_MODEL_FILE} (${bytes.length} bytes)`);
