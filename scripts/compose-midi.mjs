// Random General MIDI songs for training the classic model's learned refiner (scripts/train-refiner.py).
// They are composed from scratch, never taken from the MIDI collections that the dev and held-out sets come from,
// so that those songs stay unseen. What they vary is what separation has to cope with in game-style MIDI music:
// every GM bass program across its whole range (and sometimes high), low non-bass notes (piano left hands, organ,
// pads, low strings in `other`), every drum kit with varied patterns, 1–4 other instruments as chords, arpeggios
// and melodies, tempo, swing-free rhythms, volumes and (sometimes) panning.

const DIVISION = 480;

function vlq(v) {
  const bytes = [v & 0x7f];
  for (v >>>= 7; v > 0; v >>>= 7) bytes.unshift(0x80 | (v & 0x7f));
  return bytes;
}

/** Picks one element. */
const pick = (rng, xs) => xs[Math.floor(rng() * xs.length)];
const between = (rng, lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));

const MAJOR = [0, 2, 4, 5, 7, 9, 11];
const MINOR = [0, 2, 3, 5, 7, 8, 10];
/** GM melodic programs that are not basses (32–39), leaving out sound effects (120–127). */
const OTHER_PROGRAMS = [...Array.from({ length: 32 }, (_, i) => i), ...Array.from({ length: 80 }, (_, i) => 40 + i)];
/** GM drum kits (bank 128 programs that FluidR3 has). */
const KITS = [0, 8, 16, 24, 25, 32, 40, 48];

/**
 * Composes one song. Returns an SMF (format 0) Buffer of about `seconds` seconds.
 * @param rng a PRNG returning [0, 1)
 */
export function composeSong(rng, seconds = 32) {
  const events = []; // [tick, bytes]
  const bpm = between(rng, 76, 170);
  const beat = DIVISION;
  const bar = 4 * beat;
  const bars = Math.ceil((seconds * bpm) / 60 / 4);
  const end = bars * bar;
  events.push([0, [0xff, 0x51, 0x03, ...[16, 8, 0].map((s) => (Math.round(60e6 / bpm) >> s) & 0xff)]]);
  const scale = rng() < 0.5 ? MAJOR : MINOR;
  const tonic = between(rng, 0, 11);
  const degree = (d) => tonic + 12 * Math.floor(d / 7) + scale[((d % 7) + 7) % 7];
  const progression = Array.from({ length: 4 }, (_, i) => (i === 0 ? 0 : pick(rng, [0, 1, 2, 3, 4, 5, 6])));
  const chordBars = pick(rng, [1, 1, 2]);
  const chordAt = (tick) => progression[Math.floor(tick / (bar * chordBars)) % progression.length];
  const note = (ch, tick, len, key, vel) => {
    if (key < 12 || key > 115 || tick >= end) return;
    events.push([tick, [0x90 | ch, key, Math.max(1, Math.min(127, vel))]]);
    events.push([Math.min(end, tick + Math.max(30, len)), [0x80 | ch, key, 0]]);
  };
  const setup = (ch, program, panned) => {
    events.push([0, [0xb0 | ch, 7, between(rng, 70, 127)]]);
    events.push([0, [0xb0 | ch, 10, panned && rng() < 0.35 ? between(rng, 16, 112) : 64]]);
    events.push([0, [0xc0 | ch, program]]);
  };

  // Drums (channel 10).
  setup(9, pick(rng, KITS), false);
  const kick = pick(rng, [35, 36]);
  const snare = pick(rng, [38, 40, 39, 37]);
  const hat = pick(rng, [42, 42, 44, 46, 51, 54, 70, 69]);
  const hatStep = pick(rng, [beat / 2, beat / 2, beat / 4, beat]);
  const kickSteps = pick(rng, [[0, 2], [0, 2.5], [0, 1, 2, 3], [0, 1.5, 2], [0, 0.75, 2, 2.5]]);
  const snareSteps = pick(rng, [[1, 3], [1, 3], [3], [1, 2.75, 3]]);
  for (let b = 0; b < bars; b++) {
    const t0 = b * bar;
    for (const s of kickSteps) note(9, t0 + s * beat, beat / 4, kick, between(rng, 80, 127));
    for (const s of snareSteps) note(9, t0 + s * beat, beat / 4, snare, between(rng, 70, 120));
    for (let t = 0; t < bar; t += hatStep) if (rng() < 0.9) note(9, t0 + t, beat / 8, hat, between(rng, 40, 100));
    if (b % 4 === 0 && rng() < 0.6) note(9, t0, beat, pick(rng, [49, 57, 55, 52]), between(rng, 70, 115));
    if (b % 4 === 3 && rng() < 0.5) for (let i = 0; i < 4; i++) note(9, t0 + 3 * beat + (i * beat) / 4, beat / 4, pick(rng, [41, 43, 45, 47, 48, 50]), between(rng, 70, 115));
  }

  // Bass (channel 2): chord roots with fifths, octaves and passing notes.
  setup(1, between(rng, 32, 39), true);
  const bassBase = 12 * between(rng, 2, 3) + (rng() < 0.15 ? 12 : 0); // C1..C3 octave (MIDI 24–48), sometimes higher
  const bassStep = pick(rng, [beat, beat / 2, beat / 2, 2 * beat, beat / 4]);
  const legato = 0.5 + 0.5 * rng();
  const bassVel = between(rng, 70, 120);
  for (let t = 0; t < end; t += bassStep) {
    if (rng() < 0.12) continue;
    const root = degree(chordAt(t));
    const r = rng();
    const key = bassBase + root + (r < 0.6 ? 0 : r < 0.75 ? 7 : r < 0.85 ? 12 : scale[between(rng, 0, 6)]);
    note(1, t, bassStep * legato, key, bassVel + between(rng, -15, 10));
  }

  // Other instruments (channels 3–9): chords, arpeggios, melodies, low parts.
  const voices = between(rng, 1, 4);
  for (let v = 0; v < voices; v++) {
    const ch = 2 + v;
    setup(ch, pick(rng, OTHER_PROGRAMS), true);
    const role = pick(rng, ['chords', 'arpeggio', 'melody', 'melody', 'low']);
    const vel = between(rng, 50, 115);
    if (role === 'chords' || role === 'low') {
      const base = role === 'low' ? 12 * between(rng, 2, 3) : 12 * between(rng, 4, 5);
      const step = pick(rng, [bar, 2 * beat, beat, beat / 2]);
      const size = role === 'low' ? between(rng, 1, 2) : between(rng, 2, 4);
      for (let t = 0; t < end; t += step) {
        if (rng() < 0.1) continue;
        const d = chordAt(t);
        for (let i = 0; i < size; i++) note(ch, t, step * (0.4 + 0.6 * rng()), base + degree(d + 2 * i), vel + between(rng, -10, 10));
      }
    } else if (role === 'arpeggio') {
      const base = 12 * between(rng, 3, 6);
      const step = pick(rng, [beat / 2, beat / 4, beat / 3]);
      let i = 0;
      for (let t = 0; t < end; t += step, i++) note(ch, t, step, base + degree(chordAt(t) + 2 * (i % 4)), vel + between(rng, -10, 10));
    } else {
      const base = 12 * between(rng, 4, 7);
      let d = between(rng, 0, 6);
      for (let t = 0; t < end; ) {
        const len = pick(rng, [beat / 2, beat, beat, 2 * beat, beat / 4, 3 * beat]);
        if (rng() < 0.8) note(ch, t, len * (0.6 + 0.4 * rng()), base + degree(d), vel + between(rng, -15, 10));
        d += pick(rng, [-2, -1, -1, 1, 1, 2, 0, 3, -3]);
        d = Math.max(-3, Math.min(10, d));
        t += len;
      }
    }
  }

  // At equal ticks: tempo, then controllers and programs, then note-offs before note-ons.
  const rank = (bytes) => ({ 0xf0: 0, 0xb0: 1, 0xc0: 2, 0x80: 3, 0x90: 4 })[bytes[0] & 0xf0];
  events.sort((a, b) => a[0] - b[0] || rank(a[1]) - rank(b[1]));
  const body = [];
  let last = 0;
  for (const [tick, bytes] of events) {
    const t = Math.round(tick);
    body.push(...vlq(t - last), ...bytes);
    last = t;
  }
  body.push(0, 0xff, 0x2f, 0);
  const head = Buffer.alloc(22);
  head.write('MThd', 0, 'latin1');
  head.writeUInt32BE(6, 4);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(1, 10);
  head.writeUInt16BE(DIVISION, 12);
  head.write('MTrk', 14, 'latin1');
  head.writeUInt32BE(body.length, 18);
  return Buffer.concat([head, Buffer.from(body)]);
}
