#!/usr/bin/env node
// Training data for the classic model's refiner: runs the classic cascade WITHOUT the refiner on every song of a
// folder made by scripts/make-heldout.mjs and writes the last stage's masks, exactly as the graph computes them, to
// <song>/cascade-masks.f32: float32 little-endian [3 (drums, bass, vocals), frames, 2049], frames = 1 + ⌊N/1024⌋.
// Run: npm run build && node scripts/dump-cascade.mjs <folder> [--force]
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({ allowPositionals: true, options: { force: { type: 'boolean', default: false } } });
const folder = positionals[0];
if (!folder || !existsSync(folder)) {
  console.error('usage: node scripts/dump-cascade.mjs <folder> [--force]');
  process.exit(64);
}
const { buildClassicModel, createClassicModel } = await import(join(root, 'dist/separate/classic.js'));
const { openAudioSource, readAll } = await import(join(root, 'dist/audio/open.js'));

const work = mkdtempSync(join(tmpdir(), 'stemkit-cascade-'));
const graph = join(work, 'cascade.onnx');
writeFileSync(graph, buildClassicModel());
let sink;
const model = await createClassicModel(graph, { device: 'cpu', threads: 1 }, { onFinalMasks: (m) => sink(m) });
try {
  for (const song of readdirSync(folder).sort()) {
    const dir = join(folder, song);
    const out = join(dir, 'cascade-masks.f32');
    // song.json is written last: a song still being made is skipped.
    if (!existsSync(join(dir, 'song.json')) || (existsSync(out) && !values.force)) continue;
    const mix = await readAll(await openAudioSource(join(dir, 'mixture.flac')));
    const parts = { drums: [], bass: [], vocals: [] };
    sink = (m) => {
      for (const k of Object.keys(parts)) parts[k].push(Buffer.from(m[k].buffer, m[k].byteOffset, m[k].byteLength));
    };
    const stream = model.createStream({});
    const block = 5 * 44100;
    for (let i = 0; i < mix.channels[0].length; i += block) {
      await stream.push({ channels: mix.channels.map((ch) => ch.subarray(i, i + block)), sampleRate: mix.sampleRate });
    }
    await stream.flush();
    const bytes = Buffer.concat([...parts.drums, ...parts.bass, ...parts.vocals]);
    const frames = 1 + Math.floor(mix.channels[0].length / 1024);
    if (bytes.length !== 3 * frames * 2049 * 4) throw new Error(`${song}: ${bytes.length} bytes, expected ${3 * frames * 2049 * 4}`);
    writeFileSync(`${out}.tmp`, bytes);
    renameSync(`${out}.tmp`, out);
    console.log(`${song}: ${frames} frames`);
  }
} finally {
  await model.dispose();
  rmSync(work, { recursive: true, force: true });
}
