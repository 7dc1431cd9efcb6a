#!/usr/bin/env node
// Scores the embedded classic model on a MUSDB-style folder (one sub-folder per song with mixture + stem files).
// Run: npm run build && node scripts/eval-classic.mjs [folder] [--model models/classic.onnx] [--threads 1] [--block 5] [--json]
// Default folder: $STEMKIT_SHARED_DIR/eval/music. Prints per song and stem: the SDR of classic, of the mixture used as
// the estimate, the improvement, and the oracle ideal-ratio-mask SDR (power-ratio masks on a 4096/1024 periodic-Hann STFT).
// SDR is the music demixing challenge's: 10·log10(Σs² / Σ(s−ŝ)²) over the whole track and both channels.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: join(root, 'models', 'classic.onnx') },
    threads: { type: 'string', default: '1' },
    block: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    'no-oracle': { type: 'boolean', default: false },
  },
});
const folder = positionals[0] ?? (process.env.STEMKIT_SHARED_DIR ? join(process.env.STEMKIT_SHARED_DIR, 'eval', 'music') : undefined);
if (!folder || !existsSync(folder)) {
  console.error('usage: node scripts/eval-classic.mjs <folder>   (or set STEMKIT_SHARED_DIR)');
  process.exit(64);
}
const { createClassicModel } = await import('../dist/separate/classic.js');
const { stft, istft } = await import('../dist/dsp/stft.js');
const { hannPeriodic } = await import('../dist/dsp/windows.js');

const STEMS = ['drums', 'bass', 'other', 'vocals'];
const EPS = 1e-10; // keeps silent stems finite, as in the challenge's implementation

function decode(path) {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', path, '-f', 'f32le', '-ac', '2', '-ar', '44100', '-'], { maxBuffer: 1 << 30 });
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const n = all.length / 2;
  const ch = [new Float32Array(n), new Float32Array(n)];
  for (let i = 0; i < n; i++) {
    ch[0][i] = all[2 * i];
    ch[1][i] = all[2 * i + 1];
  }
  return ch;
}
function sdr(ref, est) {
  let num = 0;
  let den = 0;
  for (let c = 0; c < 2; c++) {
    for (let i = 0; i < ref[c].length; i++) {
      const s = ref[c][i];
      const e = s - est[c][i];
      num += s * s;
      den += e * e;
    }
  }
  return 10 * Math.log10((num + EPS) / (den + EPS));
}
function oracle(refs, mix) {
  const opts = { nFft: 4096, hop: 1024, window: hannPeriodic(4096) };
  const out = {};
  for (const k of STEMS) out[k] = [];
  for (let c = 0; c < 2; c++) {
    const X = stft(mix[c], opts);
    const S = Object.fromEntries(STEMS.map((k) => [k, stft(refs[k][c], opts)]));
    const pow = Object.fromEntries(STEMS.map((k) => [k, S[k].re.map((r, i) => r * r + S[k].im[i] * S[k].im[i])]));
    for (const k of STEMS) {
      const re = new Float32Array(X.re.length);
      const im = new Float32Array(X.re.length);
      for (let i = 0; i < re.length; i++) {
        let tot = 1e-20;
        for (const j of STEMS) tot += pow[j][i];
        const m = pow[k][i] / tot;
        re[i] = X.re[i] * m;
        im[i] = X.im[i] * m;
      }
      out[k].push(istft({ re, im, bins: X.bins, frames: X.frames }, { ...opts, length: mix[c].length }));
    }
  }
  return out;
}

const model = await createClassicModel(values.model, { device: 'cpu', threads: Number(values.threads) });
const rows = [];
let audioSec = 0;
let inferSec = 0;
let wallSec = 0;
for (const song of readdirSync(folder).sort()) {
  const dir = join(folder, song);
  if (!existsSync(join(dir, 'mixture.flac')) && !existsSync(join(dir, 'mixture.wav'))) continue;
  const ext = existsSync(join(dir, 'mixture.flac')) ? 'flac' : 'wav';
  const mix = decode(join(dir, `mixture.${ext}`));
  const refs = Object.fromEntries(STEMS.map((k) => [k, decode(join(dir, `${k}.${ext}`))]));
  const est = Object.fromEntries(STEMS.map((k) => [k, [[], []]]));
  const stream = model.createStream({});
  const block = Math.round(Number(values.block) * 44100);
  const t0 = performance.now();
  const collect = (out) => {
    for (const k of STEMS) for (let c = 0; c < 2; c++) est[k][c].push(out[k].channels[c]);
  };
  for (let i = 0; i < mix[0].length; i += block) {
    collect(await stream.push({ channels: mix.map((ch) => ch.subarray(i, i + block)), sampleRate: 44100 }));
  }
  collect(await stream.flush());
  wallSec += (performance.now() - t0) / 1000;
  inferSec += stream.inferSeconds;
  audioSec += mix[0].length / 44100;
  const joined = Object.fromEntries(
    STEMS.map((k) => [
      k,
      est[k].map((parts) => {
        const y = new Float32Array(mix[0].length);
        let o = 0;
        for (const p of parts) {
          y.set(p, o);
          o += p.length;
        }
        return y;
      }),
    ]),
  );
  const irm = values['no-oracle'] ? undefined : oracle(refs, mix);
  for (const k of STEMS) {
    const r = { song, stem: k, classic: sdr(refs[k], joined[k]), mixture: sdr(refs[k], mix), oracleIrm: irm ? sdr(refs[k], irm[k]) : NaN };
    r.improvement = r.classic - r.mixture;
    rows.push(r);
  }
}
await model.dispose();
if (values.json) {
  console.log(JSON.stringify({ rows, audioSec, wallSec, inferSec, threads: Number(values.threads) }, null, 2));
} else {
  const f = (x) => (Number.isNaN(x) ? '   -  ' : x.toFixed(2).padStart(6));
  console.log('song                      stem     classic  mixture  improv.  oracle IRM');
  for (const r of rows) console.log(`${r.song.padEnd(25)} ${r.stem.padEnd(8)} ${f(r.classic)}   ${f(r.mixture)}   ${f(r.improvement)}   ${f(r.oracleIrm)}`);
  for (const k of STEMS) {
    const sel = rows.filter((r) => r.stem === k);
    const mean = (key) => sel.reduce((a, r) => a + r[key], 0) / sel.length;
    console.log(`${'mean'.padEnd(25)} ${k.padEnd(8)} ${f(mean('classic'))}   ${f(mean('mixture'))}   ${f(mean('improvement'))}   ${f(mean('oracleIrm'))}`);
  }
  console.log(`min improvement ${Math.min(...rows.map((r) => r.improvement)).toFixed(2)} dB; ${audioSec.toFixed(1)} s of audio in ${wallSec.toFixed(2)} s (RTF ${(wallSec / audioSec).toFixed(3)}, inference ${inferSec.toFixed(2)} s, ${values.threads} thread(s))`);
}
