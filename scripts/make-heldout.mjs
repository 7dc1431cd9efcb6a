#!/usr/bin/env node
// Builds a held-out music set the way ../shared/eval/music was made, from songs it does not contain, so that the
// classic model's generalisation can be measured (the dev set is 3 songs from one composer; tuning on it alone
// overfits). Run: npm run build && node scripts/make-heldout.mjs <out-folder> [--seed 8] [--excerpts 3]
// then: node scripts/eval-classic.mjs <out-folder>
// By default: the six other Planet Blupi songs that have drums, bass and other together (the README's held-out
// table is --excerpts 3 --seed 8). The Simutrans and OpenMSX collections are the refiner's training music.
// Options: --songs a.mid,b.mid (instead of the default songs), --random N (composed songs),
// --excerpts K (up to K non-overlapping windows per song), --speech en|es,fr (prompt languages).
//
// Needs Debian packages: fluidsynth fluid-soundfont-gm planetblupi-music-midi asterisk-core-sounds-en-g722 (the
// MIDI collection and the speech named in the dev set's manifest) and ffmpeg; simutrans-data and openttd-openmsx
// for the training songs.
//
// Per song: the MIDI file is split into drums (channel 10), bass (GM programs 32–39) and other (the rest) by the
// program in effect when each note starts, keeping every non-note event in every part; each part is rendered with
// FluidSynth/FluidR3_GM (reverb and chorus off, as the dev set); the 15 s excerpt is the one (1 s steps) whose
// quietest part is loudest, so that no stem is silent; speech is random Allison prompts (16 kHz, resampled with
// stemkit's own resampler) with 0.2–0.8 s pauses, centred, at 0 to −5 dB against the accompaniment's RMS; one gain
// puts the mixture's peak at −1 dBFS; stems are rounded to 16 bit and the mixture is their exact integer sum.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BLUPI = '/usr/share/planetblupi/music';
/** The Planet Blupi songs not in the dev set, less music009 (no 15 s window with drums, bass and other together). */
const DEFAULT_SONGS = ['music001', 'music002', 'music003', 'music005', 'music006', 'music008'].map((s) => `${BLUPI}/${s}.mid`);
const SOUNDFONT = '/usr/share/sounds/sf2/FluidR3_GM.sf2';
const SPEECH_ROOT = '/usr/share/asterisk/sounds';
const RATE = 44100;
const SECONDS = 15;
const PARTS = ['drums', 'bass', 'other'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: 'string', default: '1' },
    songs: { type: 'string' },
    // --random N: N songs composed by scripts/compose-midi.mjs instead of the collections (training data).
    random: { type: 'string' },
    // --excerpts K: up to K non-overlapping 15 s windows per song (training from a collection), named <song>-x<j>.
    excerpts: { type: 'string', default: '1' },
    // Asterisk prompt languages: en is Allison (as the dev set); es is Allison in Spanish, fr is June (training).
    speech: { type: 'string', default: 'en' },
  },
});
const out = positionals[0];
if (!out) {
  console.error('usage: node scripts/make-heldout.mjs <out-folder> [--seed N] [--songs a.mid,b.mid | --random N] [--excerpts K] [--speech en|es,fr]');
  process.exit(64);
}
const excerpts = Number(values.excerpts);
if (!Number.isInteger(excerpts) || excerpts < 1) {
  console.error(`--excerpts must be a whole number of at least 1, not ${JSON.stringify(values.excerpts)}`);
  process.exit(64);
}
const speechDirs = values.speech.split(',').map((l) => join(SPEECH_ROOT, l));
for (const need of [SOUNDFONT, ...speechDirs]) {
  if (!existsSync(need)) {
    console.error(`missing ${need}: apt-get install fluidsynth fluid-soundfont-gm planetblupi-music-midi asterisk-core-sounds-en-g722 (or -es-g722, -fr-g722 for --speech es,fr)`);
    process.exit(69);
  }
}
const { createRng } = await import(join(root, 'dist/separate/chunking.js'));
const { resampleAudio } = await import(join(root, 'dist/dsp/resample.js'));
const { openAudioSource, readAll } = await import(join(root, 'dist/audio/open.js'));

// --- MIDI split -------------------------------------------------------------------------------------------------

function readVlq(b, i) {
  let v = 0;
  for (;;) {
    const c = b[i++];
    v = (v << 7) | (c & 0x7f);
    if (c < 0x80) return [v, i];
  }
}
function vlq(v) {
  const bytes = [v & 0x7f];
  for (v >>>= 7; v > 0; v >>>= 7) bytes.unshift(0x80 | (v & 0x7f));
  return bytes;
}
/** Parses an SMF into its header and tracks of [absoluteTick, eventBytes]. Running status is made explicit. */
function parseMidi(b) {
  if (b.toString('latin1', 0, 4) !== 'MThd') throw new Error('not a MIDI file');
  const headerLen = b.readUInt32BE(4);
  const division = b.readUInt16BE(12);
  const count = b.readUInt16BE(10);
  const tracks = [];
  for (let i = 8 + headerLen; i < b.length && tracks.length < count; ) {
    const tag = b.toString('latin1', i, i + 4);
    const len = b.readUInt32BE(i + 4);
    const tb = b.subarray(i + 8, i + 8 + len);
    i += 8 + len;
    if (tag !== 'MTrk') continue;
    const events = [];
    let tick = 0;
    let status = 0;
    for (let j = 0; j < tb.length; ) {
      let d;
      [d, j] = readVlq(tb, j);
      tick += d;
      const s = tb[j];
      if (s === 0xff) {
        const [n, k] = readVlq(tb, j + 2);
        events.push([tick, tb.subarray(j, k + n)]);
        j = k + n;
      } else if (s === 0xf0 || s === 0xf7) {
        const [n, k] = readVlq(tb, j + 1);
        events.push([tick, tb.subarray(j, k + n)]);
        j = k + n;
      } else {
        if (s & 0x80) {
          status = s;
          j++;
        }
        const n = (status & 0xf0) === 0xc0 || (status & 0xf0) === 0xd0 ? 1 : 2;
        events.push([tick, Buffer.concat([Buffer.of(status), tb.subarray(j, j + n)])]);
        j += n;
      }
    }
    tracks.push(events);
  }
  return { division, tracks };
}
function partOf(channel, program) {
  if (channel === 9) return 'drums';
  return program >= 32 && program <= 39 ? 'bass' : 'other';
}
/** One SMF per part: note-ons go to the part of their channel's current program; all other events go everywhere. */
function splitMidi(file) {
  const { division, tracks } = parseMidi(readFileSync(file));
  const order = tracks.flatMap((tr, t) => tr.map(([tick], k) => [tick, t, k])).sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const program = new Array(16).fill(0);
  const owner = new Map();
  for (const [, t, k] of order) {
    const e = tracks[t][k][1];
    const kind = e[0] & 0xf0;
    if (e[0] >= 0xf0) continue;
    if (kind === 0xc0) program[e[0] & 15] = e[1];
    if (kind === 0x90 && e[2] > 0) owner.set(`${t}:${k}`, partOf(e[0] & 15, program[e[0] & 15]));
  }
  return Object.fromEntries(
    PARTS.map((part) => {
      const chunks = tracks.map((tr, t) => {
        const body = [];
        let last = 0;
        tr.forEach(([tick, e], k) => {
          const o = owner.get(`${t}:${k}`);
          if (o !== undefined && o !== part) return;
          body.push(...vlq(tick - last), ...e);
          last = tick;
        });
        const head = Buffer.alloc(8);
        head.write('MTrk', 0, 'latin1');
        head.writeUInt32BE(body.length, 4);
        return Buffer.concat([head, Buffer.from(body)]);
      });
      const hdr = Buffer.alloc(14);
      hdr.write('MThd', 0, 'latin1');
      hdr.writeUInt32BE(6, 4);
      hdr.writeUInt16BE(tracks.length > 1 ? 1 : 0, 8);
      hdr.writeUInt16BE(tracks.length, 10);
      hdr.writeUInt16BE(division, 12);
      return [part, Buffer.concat([hdr, ...chunks])];
    }),
  );
}

// --- audio --------------------------------------------------------------------------------------------------------

/** Decodes with stemkit's own reader (native WAV, ffmpeg for the rest) to its native rate and channels. */
async function decode(path) {
  return readAll(await openAudioSource(path));
}
// The stems are exact 16-bit integers whose sum is the mixture; the product's sinks take floats and would re-quantise.
function writeFlac(path, chs) {
  const n = chs[0].length;
  const pcm = Buffer.alloc(4 * n);
  for (let i = 0; i < n; i++) {
    pcm.writeInt16LE(chs[0][i], 4 * i);
    pcm.writeInt16LE(chs[1][i], 4 * i + 2);
  }
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 's16le', '-ar', String(RATE), '-ac', '2', '-i', '-', '-c:a', 'flac', path], { input: pcm });
}
const energy = (chs, from, len) => {
  let s = 0;
  for (const x of chs) for (let i = from; i < from + len; i++) s += x[i] * x[i];
  return s / (chs.length * len);
};

/** A speech prompt at 44.1 kHz, decoded and resampled once per run (songs draw the same prompts again and again). */
const promptCache = new Map();
async function prompt(path) {
  if (!promptCache.has(path)) {
    const p = await decode(path);
    promptCache.set(path, resampleAudio({ channels: [p.channels[0]], sampleRate: p.sampleRate }, RATE).channels[0]);
  }
  return promptCache.get(path);
}

// --- songs ---------------------------------------------------------------------------------------------------------

/**
 * Up to `count` non-overlapping 15 s windows (1 s steps, from 5 s): the one whose quietest part is loudest first,
 * then the next best that overlaps none already taken; windows where a part is silent are never taken.
 */
function chooseWindows(parts, count) {
  const N = SECONDS * RATE;
  const length = Math.min(...PARTS.map((p) => parts[p][0].length));
  const windows = [];
  for (let off = 5 * RATE; off + N + RATE <= length; off += RATE) {
    windows.push({ level: Math.min(...PARTS.map((p) => energy(parts[p], off, N))), offset: off });
  }
  windows.sort((a, b) => b.level - a.level || a.offset - b.offset);
  const chosen = [];
  for (const w of windows) {
    if (chosen.length >= count || !(w.level > 1e-10)) break;
    if (chosen.every((c) => Math.abs(c.offset - w.offset) >= N)) chosen.push(w);
  }
  return chosen;
}

/** Cuts one excerpt, adds speech, scales and writes <out>/<name>/{drums,bass,other,vocals,mixture}.flac + song.json. */
async function writeExcerpt(name, file, parts, best) {
  const N = SECONDS * RATE;
  const stems = Object.fromEntries(PARTS.map((p) => [p, parts[p].map((x) => x.slice(best.offset, best.offset + N))]));
  const speech = new Float64Array(N);
  for (let t = Math.floor((0.2 + 0.8 * rng()) * RATE); t < N - RATE; ) {
    const x = await prompt(prompts[Math.floor(rng() * prompts.length)]);
    const k = Math.min(x.length, N - t);
    for (let i = 0; i < k; i++) speech[t + i] += x[i];
    t += k + Math.floor((0.2 + 0.6 * rng()) * RATE);
  }
  // Speech-active RMS (within 25 ms of a sample above 1e-3, as the dev set's 2205-sample maximum filter) =
  // accompaniment RMS + level.
  const near = new Int32Array(N).fill(1 << 30);
  for (let i = 0, last = -(1 << 30); i < N; i++) {
    if (Math.abs(speech[i]) > 1e-3) last = i;
    near[i] = i - last;
  }
  let activeSum = 0;
  let active = 0;
  for (let i = N - 1, next = 1 << 30; i >= 0; i--) {
    if (Math.abs(speech[i]) > 1e-3) next = i;
    if (Math.min(near[i], next - i) <= 1102) {
      activeSum += speech[i] * speech[i];
      active++;
    }
  }
  const acc = [0, 1].map((c) => Float64Array.from({ length: N }, (_, i) => PARTS.reduce((s, p) => s + stems[p][c][i], 0)));
  const levelDb = -5 * rng();
  const gain = (Math.sqrt(energy(acc, 0, N)) * 10 ** (levelDb / 20)) / Math.sqrt(activeSum / Math.max(1, active));
  stems.vocals = [speech.map((v) => v * gain), speech.map((v) => v * gain)];
  let peak = 0;
  for (let c = 0; c < 2; c++) for (let i = 0; i < N; i++) peak = Math.max(peak, Math.abs(acc[c][i] + stems.vocals[c][i]));
  const g = (10 ** (-1 / 20) / peak) * 32767;
  const ints = Object.fromEntries(Object.entries(stems).map(([k, chs]) => [k, chs.map((x) => Int16Array.from(x, (v) => Math.round(v * g)))]));
  const mixture = [0, 1].map((c) => Int16Array.from({ length: N }, (_, i) => ints.drums[c][i] + ints.bass[c][i] + ints.other[c][i] + ints.vocals[c][i]));
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  for (const [k, chs] of [...Object.entries(ints), ['mixture', mixture]]) writeFlac(join(dir, `${k}.flac`), chs);
  writeFileSync(join(dir, 'song.json'), `${JSON.stringify({ source: file, offsetSeconds: best.offset / RATE, vocalsDb: Number(levelDb.toFixed(2)), seed: Number(values.seed) }, null, 2)}\n`);
  console.log(`${name}: offset ${best.offset / RATE} s, vocals ${levelDb.toFixed(1)} dB`);
}

const rng = createRng(Number(values.seed));
const prompts = speechDirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.g722')).sort().map((f) => join(d, f)));
mkdirSync(out, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'stemkit-heldout-'));
let songs = values.songs ? values.songs.split(',') : DEFAULT_SONGS;
if (values.random) {
  const { composeSong } = await import('./compose-midi.mjs');
  songs = Array.from({ length: Number(values.random) }, (_, i) => {
    const file = join(work, `random-${values.seed}-${String(i).padStart(4, '0')}.mid`);
    writeFileSync(file, composeSong(rng));
    return file;
  });
}
try {
  for (const file of songs) {
    const id = basename(file, '.mid').toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const parts = {};
    for (const [part, smf] of Object.entries(splitMidi(file))) {
      const mid = join(work, `${part}.mid`);
      const wav = join(work, `${part}.wav`);
      writeFileSync(mid, smf);
      execFileSync('fluidsynth', ['-ni', '-q', '-R', '0', '-C', '0', '-g', '0.3', '-o', 'synth.cpu-cores=1', '-O', 'float', '-r', String(RATE), '-F', wav, SOUNDFONT, mid]);
      parts[part] = (await decode(wav)).channels; // FluidSynth writes 44.1 kHz stereo float
    }
    const chosen = chooseWindows(parts, excerpts);
    if (chosen.length === 0) {
      console.error(`${id}: skipped (no 15 s window with drums, bass and other all playing)`);
      continue;
    }
    for (const [j, best] of chosen.entries()) await writeExcerpt(excerpts > 1 ? `${id}-x${j}` : id, file, parts, best);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
