/**
 * Tiny ONNX models with the exact Kokoro and Piper contracts (model-io.md §3.1, §4.1) that ENCODE WHAT
 * THEY RECEIVE into their "audio", so tests can decode and assert the exact ids, pads, style row, speed,
 * scales and sid stemkit fed. Plus voice tables (.npz stored/deflated, raw .bin) and Piper configs.
 *
 * Encoding (chosen so trimming and normalisation cannot damage it):
 * - Kokoro: 4096 zeros, then (ids as float, the 256 style values, speed as float) + 1000, then 4096 zeros.
 *   Every payload value is ≥ ~1000 (ids ≥ 0, test style values ≥ 0, speed > 0), so the payload is one
 *   loud run far above the −60 dB trim threshold, and the 4096-zero margins are longer than the
 *   ≥ 512-sample quiet lead trimming keeps, so the 5 ms fade only ever touches zeros.
 * - Piper: 256 zeros, a marker 10000, then (ids, input_lengths, scales[3], sid when present) + 1000, then
 *   256 zeros, shaped [1, 1, 1, n]. Peak normalisation divides by the marker; the decoder multiplies back.
 */
import { spawnSync } from 'node:child_process';
import { zipSync } from 'fflate';
import { GraphBuilder, attr } from '../../src/onnx/builder.js';

const FLOAT = 1; // onnx TensorProto.FLOAT
export const KOKORO_ZEROS = 4096;
export const OFFSET = 1000;
export const PIPER_MARK = 10000;
const PIPER_ZEROS = 256;

export interface KokoroFixtureOptions {
  ids: 'tokens' | 'input_ids';
  speed: 'float32' | 'int32';
}

/** A Kokoro-contract model: `tokens`/`input_ids` int64 [1,T], `style` float32 [1,256], `speed` float32|int32 [1]. */
export function buildKokoroModel(o: KokoroFixtureOptions): Uint8Array {
  const g = new GraphBuilder('kokoro-fixture');
  g.input(o.ids, 'int64', [1, 'T']);
  g.input('style', 'float32', [1, 256]);
  g.input('speed', o.speed, [1]);
  const flat = g.constant(new BigInt64Array([-1n]), [1]);
  const idsF = g.op('Reshape', [g.op('Cast', [o.ids], { to: attr.int(FLOAT) }), flat]);
  const styleF = g.op('Reshape', ['style', flat]);
  const speedF = o.speed === 'int32' ? g.op('Cast', ['speed'], { to: attr.int(FLOAT) }) : 'speed';
  const payload = g.op('Add', [g.op('Concat', [idsF, styleF, speedF], { axis: attr.int(0) }), g.constant(new Float32Array([OFFSET]), [1])]);
  const zeros = g.constant(new Float32Array(KOKORO_ZEROS), [KOKORO_ZEROS]);
  const wave = g.op('Concat', [zeros, payload, zeros], { axis: attr.int(0) });
  if (o.ids === 'tokens') {
    // kokoro-onnx kokoro-v1.0.onnx: 1-D audio in output 0.
    g.op('Identity', [wave], {}, 'audio');
    g.output('audio', 'float32', ['N']);
  } else {
    // onnx-community / export.py: `waveform` [1, N] plus `duration`; `duration` is listed first so the
    // test proves the waveform is picked by name, not position.
    g.op('Identity', [o.ids], {}, 'duration');
    g.op('Unsqueeze', [wave, g.constant(new BigInt64Array([0n]), [1])], {}, 'waveform');
    g.output('duration', 'int64', [1, 'T']);
    g.output('waveform', 'float32', [1, 'N']);
  }
  return g.build();
}

export interface KokoroCall {
  ids: number[];
  style: Float32Array;
  speed: number;
}

/** Splits decoded audio into loud runs (one per model call) and decodes each. */
export function decodeKokoro(x: Float32Array): KokoroCall[] {
  const calls: KokoroCall[] = [];
  let i = 0;
  while (i < x.length) {
    if (Math.abs(x[i]!) < OFFSET / 2) {
      i++;
      continue;
    }
    let j = i;
    while (j < x.length && Math.abs(x[j]!) >= OFFSET / 2) j++;
    const run = Array.from(x.subarray(i, j), (v) => v - OFFSET);
    const t = run.length - 257;
    calls.push({ ids: run.slice(0, t).map((v) => Math.round(v)), style: Float32Array.from(run.slice(t, t + 256)), speed: run[t + 256]! });
    i = j;
  }
  return calls;
}

/** A Piper-contract model; `sid` exists only when `multiSpeaker`. */
export function buildPiperModel(o: { multiSpeaker: boolean }): Uint8Array {
  const g = new GraphBuilder('piper-fixture');
  g.input('input', 'int64', [1, 'N']);
  g.input('input_lengths', 'int64', [1]);
  g.input('scales', 'float32', [3]);
  if (o.multiSpeaker) g.input('sid', 'int64', [1]);
  const flat = g.constant(new BigInt64Array([-1n]), [1]);
  const f = (name: string): string => g.op('Reshape', [g.op('Cast', [name], { to: attr.int(FLOAT) }), flat]);
  const parts = [f('input'), f('input_lengths'), 'scales', ...(o.multiSpeaker ? [f('sid')] : [])];
  const payload = g.op('Add', [g.op('Concat', parts, { axis: attr.int(0) }), g.constant(new Float32Array([OFFSET]), [1])]);
  const zeros = g.constant(new Float32Array(PIPER_ZEROS), [PIPER_ZEROS]);
  const mark = g.constant(new Float32Array([PIPER_MARK]), [1]);
  const wave = g.op('Concat', [zeros, mark, payload, zeros], { axis: attr.int(0) });
  g.op('Reshape', [wave, g.constant(new BigInt64Array([1n, 1n, 1n, -1n]), [4])], {}, 'output');
  g.output('output', 'float32', [1, 1, 1, 'S']);
  return g.build();
}

export interface PiperCall {
  ids: number[];
  inputLength: number;
  scales: [number, number, number];
  sid: number | undefined;
  /** The gain peak normalisation applied (1 / marker seen). */
  gain: number;
}

/** Where each model call lies in a Piper block: runs of non-zero samples (the fixture's payload is never 0). */
export function piperCallSpans(x: Float32Array): Array<{ start: number; end: number }> {
  const spans: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < x.length; ) {
    if (x[i] === 0) {
      i++;
      continue;
    }
    const start = i;
    while (i < x.length && x[i] !== 0) i++;
    spans.push({ start, end: i });
  }
  return spans;
}

/** Decodes the first model call of a Piper block (the sentence silence, if any, is skipped). */
export function decodePiper(x: Float32Array, multiSpeaker: boolean): PiperCall {
  let i = 0;
  while (i < x.length && x[i] === 0) i++;
  const gain = x[i]! / PIPER_MARK;
  let j = i + 1;
  const vals: number[] = [];
  while (j < x.length && x[j] !== 0) vals.push(x[j++]! / gain - OFFSET);
  const extra = multiSpeaker ? 5 : 4;
  const n = vals.length - extra;
  return {
    ids: vals.slice(0, n).map((v) => Math.round(v)),
    inputLength: Math.round(vals[n]!),
    scales: [vals[n + 1]!, vals[n + 2]!, vals[n + 3]!],
    sid: multiSpeaker ? Math.round(vals[n + 4]!) : undefined,
    gain,
  };
}

/** A recognisable voice table: value[row][col] = base + row + col / 512 (exact in float32). */
export function voiceTable(base: number, rows = 510, cols = 256): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[r * cols + c] = base + r + c / 512;
  return t;
}

/** An .npy file (format 1.0, '<f4' or '<f8', C order). */
export function npy(data: Float32Array, shape: number[], dtype: '<f4' | '<f8' = '<f4'): Uint8Array {
  if (dtype === '<f8') {
    const f64 = Float64Array.from(data);
    data = new Float32Array(f64.buffer);
  }
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // Pad so the data starts on a 64-byte boundary, ending with a newline (as numpy does).
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** A NumPy .npz archive of voices, members stored (level 0) or deflated (level 6). */
export function npz(voices: Record<string, Float32Array>, level: 0 | 6, shape: number[] = [510, 1, 256]): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  for (const [name, t] of Object.entries(voices)) files[`${name}.npy`] = [npy(t, shape), { level }];
  return zipSync(files);
}

/** A raw kokoro.js voice file: little-endian float32, no header. */
export function rawVoice(t: Float32Array): Uint8Array {
  return new Uint8Array(t.buffer.slice(t.byteOffset, t.byteOffset + t.byteLength));
}

/** A Piper `.onnx.json` with the fixed ids of §4.2, a few IPA symbols and a multi-code-point entry `aɪ`. */
export function piperConfig(o: { multiSpeaker: boolean; sampleRate?: number; inference?: Record<string, number> }): Record<string, unknown> {
  const phonemes = ['_', '^', '$', ' ', '!', "'", '(', ')', ',', '-', '.', ':', ';', '?'];
  const map: Record<string, number[]> = {};
  phonemes.forEach((p, i) => (map[p] = [i]));
  const letters = [...'abcdefhijklmnopqrstuvwxyzæçðøħŋœǀǁǂǃɐɑɒɓɔɕɖɗɘəɚɛɜɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢʲˈˌːˑ˞βθχᵻⱱ'];
  letters.forEach((p, i) => (map[p] = [14 + i]));
  map['aɪ'] = [200];
  return {
    audio: { sample_rate: o.sampleRate ?? 22050, quality: 'medium' },
    espeak: { voice: 'en-us' },
    phoneme_type: 'espeak',
    phoneme_id_map: map,
    inference: o.inference ?? { noise_scale: 0.667, length_scale: 1, noise_w: 0.8 },
    num_speakers: o.multiSpeaker ? 3 : 1,
    speaker_id_map: o.multiSpeaker ? { alice: 0, bob: 1, carol: 2 } : {},
    num_symbols: 256,
  };
}

/** True when the system espeak-ng runs (non-English front-end tests skip without it). */
export const HAS_ESPEAK = spawnSync('espeak-ng', ['--version'], { stdio: 'ignore' }).status === 0;

/*
 * Timing fixtures: models that say how long each token lasts, and whose audio says which token it is.
 * Every token t at position p (0-based in the call's input) lasts d(t) units and its samples all hold
 * OFFSET + t + 256·p, so a sample decodes to (position, id) and a test can find exactly where each token
 * sounds in the file written — after trimming, silences, speed and resampling.
 */
export const TIMING_POS = 256;
/** Piper: the BOS sample value, the loudest of the call, so peak normalisation divides by it (a power of two: exact). */
export const TIMING_MARK = 2 ** 20;

/** Shared graph: per-token unit counts `units` (float [T]) × `unitSamples` → audio [S] of per-token values `values` (float [T]). */
function spreadTokens(g: GraphBuilder, units: string, unitSamples: number, values: string): string {
  const samples = g.op('Mul', [units, g.constant(new Float32Array([unitSamples]), [])]);
  const ends = g.op('CumSum', [samples, g.constant(new BigInt64Array([0n]), [])]);
  const total = g.op('ReduceSum', [samples], { keepdims: attr.int(0) });
  const n = g.op('Range', [g.constant(new Float32Array([0]), []), total, g.constant(new Float32Array([1]), [])]);
  // Token of sample n = how many token ends are ≤ n.
  const cmp = g.op('LessOrEqual', [g.op('Unsqueeze', [ends, g.constant(new BigInt64Array([0n]), [1])]), g.op('Unsqueeze', [n, g.constant(new BigInt64Array([1n]), [1])])]);
  const idx = g.op('Cast', [g.op('ReduceSum', [g.op('Cast', [cmp], { to: attr.int(FLOAT) }), g.constant(new BigInt64Array([1n]), [1])], { keepdims: attr.int(0) })], { to: attr.int(7) });
  return g.op('Gather', [values, idx], { axis: attr.int(0) });
}

/** The unit counts a Kokoro timing fixture gives a token at speed 1: pads 8 (so trimming has silence to cut), others 1 + id mod 3. */
export function kokoroBaseUnits(id: number): number {
  return id === 0 ? 8 : 1 + (id % 3);
}

/**
 * A Kokoro model with the export.py contract (`input_ids`, `style`, `speed` → `waveform`, `duration`) or,
 * with `duration: false`, the kokoro-v1.0.onnx one (`tokens` → `audio`). Durations: max(1, round(base / speed))
 * units of 600 samples; pads are silent.
 */
export function buildKokoroTimingModel(o: { duration: boolean; speed?: 'float32' | 'int32' }): Uint8Array {
  const g = new GraphBuilder('kokoro-timing-fixture');
  const idsName = o.duration ? 'input_ids' : 'tokens';
  g.input(idsName, 'int64', [1, 'T']);
  g.input('style', 'float32', [1, 256]);
  g.input('speed', o.speed ?? 'float32', [1]);
  const ids = g.op('Reshape', [idsName, g.constant(new BigInt64Array([-1n]), [1])]);
  const idsF = g.op('Cast', [ids], { to: attr.int(FLOAT) });
  const isPad = g.op('Equal', [ids, g.constant(new BigInt64Array([0n]), [])]);
  const mod3 = g.op('Cast', [g.op('Mod', [ids, g.constant(new BigInt64Array([3n]), [])])], { to: attr.int(FLOAT) });
  const base = g.op('Where', [isPad, g.constant(new Float32Array([8]), []), g.op('Add', [mod3, g.constant(new Float32Array([1]), [])])]);
  const speedF = g.op('Reshape', [(o.speed ?? 'float32') === 'int32' ? g.op('Cast', ['speed'], { to: attr.int(FLOAT) }) : 'speed', g.constant(new BigInt64Array([-1n]), [1])]);
  const units = g.op('Max', [g.op('Round', [g.op('Div', [base, speedF])]), g.constant(new Float32Array([1]), [])]);
  const T = g.op('Shape', [ids]);
  const pos = g.op('Cast', [g.op('Range', [g.constant(new BigInt64Array([0n]), []), g.op('Squeeze', [T]), g.constant(new BigInt64Array([1n]), [])])], { to: attr.int(FLOAT) });
  const value = g.op('Add', [g.op('Add', [idsF, g.op('Mul', [pos, g.constant(new Float32Array([TIMING_POS]), [])])]), g.constant(new Float32Array([OFFSET]), [])]);
  const values = g.op('Where', [isPad, g.constant(new Float32Array([0]), []), value]);
  const wave = spreadTokens(g, units, 600, values);
  if (o.duration) {
    g.op('Identity', [wave], {}, 'waveform');
    g.op('Cast', [units], { to: attr.int(7) }, 'duration');
    g.output('waveform', 'float32', ['N']);
    g.output('duration', 'int64', ['T']);
  } else {
    g.op('Identity', [wave], {}, 'audio');
    g.output('audio', 'float32', ['N']);
  }
  return g.build();
}

/** Frames a Piper timing fixture gives an id at length scale 1: BOS/EOS 2, pad 1, others 1 + id mod 3. */
export function piperBaseFrames(id: number): number {
  return id === 1 || id === 2 ? 2 : id === 0 ? 1 : 1 + (id % 3);
}

/**
 * A Piper model (single speaker) whose audio spreads each id over ceil(base · length_scale) frames of 256
 * samples; with `alignment` it also has piper1-gpl's patched second output (the `w_ceil` tensor, frames per
 * id, [1, 1, N], named as a traced graph names it). The BOS samples hold TIMING_MARK.
 */
export function buildPiperTimingModel(o: { alignment: boolean }): Uint8Array {
  const g = new GraphBuilder('piper-timing-fixture');
  g.input('input', 'int64', [1, 'N']);
  g.input('input_lengths', 'int64', [1]);
  g.input('scales', 'float32', [3]);
  const ids = g.op('Reshape', ['input', g.constant(new BigInt64Array([-1n]), [1])]);
  const idsF = g.op('Cast', [ids], { to: attr.int(FLOAT) });
  const eq = (v: bigint): string => g.op('Equal', [ids, g.constant(new BigInt64Array([v]), [])]);
  const mod3 = g.op('Cast', [g.op('Mod', [ids, g.constant(new BigInt64Array([3n]), [])])], { to: attr.int(FLOAT) });
  const f = (v: number): string => g.op('Identity', [g.constant(new Float32Array([v]), [])]);
  const base = g.op('Where', [g.op('Or', [eq(1n), eq(2n)]), f(2), g.op('Where', [eq(0n), f(1), g.op('Add', [mod3, f(1)])])]);
  const lengthScale = g.op('Gather', ['scales', g.constant(new BigInt64Array([1n]), [])], { axis: attr.int(0) });
  const wCeil = g.op('Ceil', [g.op('Mul', [base, lengthScale])]);
  const N = g.op('Shape', [ids]);
  const pos = g.op('Cast', [g.op('Range', [g.constant(new BigInt64Array([0n]), []), g.op('Squeeze', [N]), g.constant(new BigInt64Array([1n]), [])])], { to: attr.int(FLOAT) });
  const value = g.op('Add', [g.op('Add', [idsF, g.op('Mul', [pos, f(TIMING_POS)])]), f(OFFSET)]);
  const values = g.op('Where', [g.op('Equal', [pos, f(0)]), f(TIMING_MARK), value]);
  const wave = spreadTokens(g, wCeil, 256, values);
  g.op('Reshape', [wave, g.constant(new BigInt64Array([1n, 1n, 1n, -1n]), [4])], {}, 'output');
  g.output('output', 'float32', [1, 1, 1, 'S']);
  if (o.alignment) {
    g.op('Reshape', [wCeil, g.constant(new BigInt64Array([1n, 1n, -1n]), [3])], {}, '/dp/Ceil_output_0');
    g.output('/dp/Ceil_output_0', 'float32', [1, 1, 'N']);
  }
  return g.build();
}

/** Decodes a sample of a timing fixture's audio (after any gain) into the token's position and id; undefined for silence. */
export function decodeTimingSample(v: number, gain = 1): { pos: number; id: number } | undefined {
  const x = Math.round(v / gain) - OFFSET;
  if (Math.abs(v / gain) < OFFSET / 2 || x < 0) return undefined;
  return { pos: Math.floor(x / TIMING_POS), id: x % TIMING_POS };
}

/**
 * The samples [first, last+1) where the token at `pos` (with id `id`, when given) sounds in a timing fixture's
 * output, searched from `from`. A run must hold for 8 samples, so the ringing of a resampled edge cannot fake
 * a match. With the id known, the sample is compared with the value the token holds: resampling leaves a
 * relative error of ~1e-4 inside a token (passband ripple < 0.001 dB), enough to flip the last digit of a
 * 5-digit value; 0.2 % is far below the ≥ 79 between the values of neighbouring tokens (position +1 = +256,
 * ids differ by < 178). Throws when the token is not found.
 */
export function timingTruth(x: Float32Array, from: number, pos: number, id: number | undefined, gain: number): [number, number] {
  const want = id === undefined ? 0 : OFFSET + id + TIMING_POS * pos;
  const is = (i: number): boolean => {
    if (i >= x.length) return false;
    if (id !== undefined) return Math.abs(x[i]! / gain - want) <= 2e-3 * want;
    const d = decodeTimingSample(x[i]!, gain);
    return d !== undefined && d.pos === pos;
  };
  let a = Math.max(0, from);
  while (a < x.length && !(is(a) && is(a + 7))) a++;
  if (a >= x.length) throw new Error(`token ${pos}/${id} not found after sample ${from}`);
  let b = a;
  while (b < x.length && (is(b) || is(b + 1) || is(b + 4))) b++;
  return [a, b];
}
