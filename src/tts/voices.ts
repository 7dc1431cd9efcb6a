/**
 * Kokoro voice tables (model-io.md §3.5): each voice is float32 [510, 1, 256] — one 256-wide style
 * vector per phoneme-token count. Accepted layouts:
 * - `voices-v1.0.bin` / any `.npz`: a NumPy zip archive with one `<voice>.npy` member per voice, the
 *   members stored or deflated (fflate reads both);
 * - a single `.npy` file, or a single raw `.bin` file (the voice is named after the file);
 * - a folder of per-voice raw `.bin` files (kokoro.js / onnx-community: 510×256 little-endian
 *   float32, 522,240 bytes, no header) and/or `.npy` files.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { DataError, InputError, UsageError } from '../errors.js';
import { KOKORO_STYLE_DIM, KOKORO_STYLE_ROWS } from './vocab.js';

/** Bytes of one raw voice table: 510 × 256 float32. */
export const VOICE_TABLE_BYTES = KOKORO_STYLE_ROWS * KOKORO_STYLE_DIM * 4;
const TABLE_VALUES = KOKORO_STYLE_ROWS * KOKORO_STYLE_DIM;

export interface VoiceStore {
  /** The file or folder the voices come from. */
  readonly source: string;
  /** Voice names, sorted. */
  readonly names: readonly string[];
  /**
   * The voice's table, 510 × 256 values, row-major.
   * @throws UsageError (64) for an unknown name, listing the valid ones; DataError (65) for a table of the wrong shape.
   */
  load(name: string): Promise<Float32Array>;
}

function wrongShape(source: string, what: string): DataError {
  return new DataError(`voices file ${source}: ${what}; a Kokoro voice must be float32 [510, 1, 256] (522,240 bytes of data)`, {
    code: 'E_VOICES_SHAPE',
    hint: 'Use voices-v1.0.bin from the kokoro-onnx release, or the per-voice .bin files of kokoro.js / onnx-community.',
  });
}

/**
 * Parses a NumPy .npy file holding one voice table.
 * @throws DataError (65) when it is not an .npy, not float32/float64 little-endian, Fortran-ordered, or not 510×256 values with a last axis of 256.
 */
export function parseNpyVoice(bytes: Uint8Array, source: string): Float32Array {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw wrongShape(source, 'not a NumPy .npy array');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw wrongShape(source, 'unreadable .npy header');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const shapeStr = `(${shape.join(', ')})`;
  if (fortran === 'True' && shape.filter((d) => d > 1).length > 1) throw wrongShape(source, `Fortran-ordered array ${shapeStr}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== TABLE_VALUES || shape[shape.length - 1] !== KOKORO_STYLE_DIM) throw wrongShape(source, `shape ${shapeStr}`);
  const dataStart = headerStart + headerLen;
  const width = descr === '<f4' || descr === '=f4' ? 4 : descr === '<f8' || descr === '=f8' ? 8 : 0;
  if (width === 0) throw wrongShape(source, `dtype ${descr}`);
  if (bytes.length - dataStart < count * width) throw wrongShape(source, `data truncated (${bytes.length - dataStart} of ${count * width} bytes)`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = width === 4 ? view.getFloat32(dataStart + 4 * i, true) : view.getFloat64(dataStart + 8 * i, true);
  return out;
}

/** Parses a raw little-endian float32 510×256 table. @throws DataError (65) when the size is not 522,240 bytes. */
export function parseRawVoice(bytes: Uint8Array, source: string): Float32Array {
  if (bytes.length !== VOICE_TABLE_BYTES) throw wrongShape(source, `${bytes.length.toLocaleString('en-US')} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(TABLE_VALUES);
  for (let i = 0; i < TABLE_VALUES; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && bytes[0] === 0x93 && bytes[1] === 0x4e && bytes[2] === 0x55;
}

function unknownVoiceError(name: string, names: readonly string[], source: string): UsageError {
  return new UsageError(`unknown voice "${name}"`, {
    code: 'E_UNKNOWN_VOICE',
    hint: `valid voices in ${source}: ${names.join(', ')}`,
    details: { voice: name, valid: [...names] },
  });
}

function memoryStore(source: string, tables: Map<string, () => Promise<Float32Array>>): VoiceStore {
  const names = [...tables.keys()].sort();
  const cache = new Map<string, Float32Array>();
  return {
    source,
    names,
    async load(name) {
      const hit = cache.get(name);
      if (hit) return hit;
      const get = tables.get(name);
      if (!get) throw unknownVoiceError(name, names, source);
      const t = await get();
      cache.set(name, t);
      return t;
    },
  };
}

/** Opens an .npz archive held in memory (exported for tests). */
export async function npzVoiceStore(bytes: Uint8Array, source: string): Promise<VoiceStore> {
  const { unzipSync } = await import('fflate');
  const members: string[] = [];
  try {
    // List only: the filter sees every member and extracts none.
    unzipSync(bytes, {
      filter: (f) => {
        members.push(f.name);
        return false;
      },
    });
  } catch (cause) {
    throw new DataError(`voices file ${source} is not a readable zip/.npz archive: ${(cause as Error).message}`, { code: 'E_VOICES_SHAPE', cause });
  }
  const tables = new Map<string, () => Promise<Float32Array>>();
  for (const m of members) {
    if (!m.endsWith('.npy')) continue;
    const name = basename(m, '.npy');
    tables.set(name, async () => {
      let files: Record<string, Uint8Array>;
      try {
        files = unzipSync(bytes, { filter: (f) => f.name === m });
      } catch (cause) {
        throw new DataError(`voices file ${source}: member ${m} cannot be extracted: ${(cause as Error).message}`, { code: 'E_VOICES_SHAPE', cause });
      }
      return parseNpyVoice(files[m]!, `${source}:${m}`);
    });
  }
  if (tables.size === 0) throw wrongShape(source, 'the archive holds no .npy members');
  return memoryStore(source, tables);
}

/**
 * Opens a voices file or folder (see the module comment for the layouts).
 * @throws InputError (66) when the path does not exist; DataError (65) when it holds no usable voice table.
 */
export async function openVoiceStore(path: string): Promise<VoiceStore> {
  let st;
  try {
    st = await stat(path);
  } catch (cause) {
    throw new InputError(`voices not found: ${path}`, { code: 'E_VOICES_NOT_FOUND', cause, hint: 'Pass voices <voices-v1.0.bin | file.npz | folder of .bin files>.', details: { hintOption: 'voices' } });
  }
  if (st.isDirectory()) {
    const tables = new Map<string, () => Promise<Float32Array>>();
    for (const entry of (await readdir(path)).sort()) {
      const ext = extname(entry).toLowerCase();
      if (ext !== '.bin' && ext !== '.npy') continue;
      const file = join(path, entry);
      tables.set(basename(entry, extname(entry)), async () => {
        const bytes = await readFile(file);
        return ext === '.npy' || isNpy(bytes) ? parseNpyVoice(bytes, file) : parseRawVoice(bytes, file);
      });
    }
    if (tables.size === 0) throw wrongShape(path, 'the folder holds no .bin or .npy voice files');
    return memoryStore(path, tables);
  }
  const bytes = new Uint8Array(await readFile(path));
  if (isZip(bytes)) return npzVoiceStore(bytes, path);
  const name = basename(path, extname(path));
  const table = isNpy(bytes) ? parseNpyVoice(bytes, path) : parseRawVoice(bytes, path);
  return memoryStore(path, new Map([[name, async () => table]]));
}

export interface VoiceWeight {
  name: string;
  weight: number;
}

/**
 * Parses `af_heart`, `af_heart:0.7,bf_emma:0.3` or `af_heart,bf_emma` (equal weights).
 * Weights are normalised to sum to 1, so `a:2,b:1` equals `a:0.667,b:0.333`: a blend stays a weighted
 * mean of style vectors, inside the range the model was trained on (hexgrad's `load_voice("a,b")` is the mean).
 * @throws UsageError (64) for an empty name or a weight that is not a positive number.
 */
export function parseVoiceSpec(spec: string): VoiceWeight[] {
  const parts = spec.split(',').map((p) => p.trim());
  const out: VoiceWeight[] = [];
  for (const p of parts) {
    const m = /^([^:]+?)(?::\s*([^:]+))?$/.exec(p);
    const name = m?.[1]?.trim() ?? '';
    const w = m?.[2] === undefined ? 1 : Number(m[2]);
    if (!m || name === '' || !Number.isFinite(w) || w <= 0) {
      throw new UsageError(`bad voice "${spec}"`, { code: 'E_BAD_VOICE', hint: 'Use a voice name, or a blend such as af_heart:0.7,bf_emma:0.3 (positive weights).' });
    }
    out.push({ name, weight: w });
  }
  const total = out.reduce((a, v) => a + v.weight, 0);
  return out.map((v) => ({ name: v.name, weight: v.weight / total }));
}

/** The weighted sum of the voices' whole tables (blend first, then select the row: model-io.md §3.5). */
export async function blendVoices(store: VoiceStore, weights: readonly VoiceWeight[]): Promise<Float32Array> {
  const missing = weights.filter((w) => !store.names.includes(w.name)).map((w) => w.name);
  if (missing.length > 0) throw unknownVoiceError(missing.join(', '), store.names, store.source);
  const out = new Float32Array(TABLE_VALUES);
  for (const { name, weight } of weights) {
    const t = await store.load(name);
    for (let i = 0; i < TABLE_VALUES; i++) out[i]! += weight * t[i]!;
  }
  return out;
}

/**
 * The style row for a call with `tokens` phoneme tokens (pads excluded): row tokens − 1, clamped to
 * [0, 509]. This is hexgrad's PyTorch reference (`pack[len(ps) - 1]`, model-io.md §3.5), the code the
 * voices were made with; kokoro.js and kokoro-onnx use row n, one row later in a slowly varying table.
 */
export function styleRowIndex(tokens: number): number {
  return Math.min(KOKORO_STYLE_ROWS - 1, Math.max(0, tokens - 1));
}

/** Copies row `styleRowIndex(tokens)` out of a 510×256 table. */
export function selectStyle(table: Float32Array, tokens: number): Float32Array {
  const row = styleRowIndex(tokens);
  return table.slice(row * KOKORO_STYLE_DIM, (row + 1) * KOKORO_STYLE_DIM);
}
