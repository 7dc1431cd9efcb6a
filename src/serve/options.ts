/**
 * The job options of the HTTP API, as one table per job kind. Each table yields the JSON schema of the
 * route (validation and /openapi.json) and reads multipart form fields (strings) with the same rules,
 * so a JSON body and a form upload accept exactly the same options. Errors name options, never flags.
 */
import type { SeparateFileOptions, SeparatorSpec } from '../separate/separate.js';
import { UsageError } from '../errors.js';
import type { AudioFormat } from '../audio/open.js';
import type { TtsVoiceOptions } from './protocol.js';

interface OptionSchema {
  type: 'string' | 'integer' | 'number' | 'boolean' | 'array';
  description: string;
  enum?: readonly (string | number)[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  items?: { type: 'string' };
}
type OptionTable = Record<string, OptionSchema>;

const FORMATS = ['wav', 'flac', 'mp3', 'opus', 'ogg', 'm4a'] as const;

/** Options of POST /v1/separate (the CLI's `separate` flags, in camelCase). */
export const SEPARATE_OPTIONS: OptionTable = {
  model: { type: 'string', description: 'registry id (GET /v1/models) or the path of an .onnx file under serve.inputRoots; default classic, or the mode default', minLength: 1 },
  mode: { type: 'integer', enum: [2, 4, 6], description: '2 = vocals + no_vocals, 4 = drums/bass/other/vocals, 6 = + guitar/piano' },
  stems: { type: 'array', items: { type: 'string' }, description: 'write only these stems (form field: comma-separated)' },
  twoStems: { type: 'string', description: 'write this stem and its complement', minLength: 1 },
  otherMethod: { type: 'string', enum: ['add', 'minus'], description: 'the complement of twoStems: add (no_<stem>) or minus (minus_<stem>)' },
  shifts: { type: 'integer', minimum: 0, maximum: 20, description: 'HTDemucs shift trick rounds' },
  seed: { type: 'integer', minimum: 0, maximum: 2 ** 32 - 1, description: 'seed of the shifts' },
  overlap: { type: 'number', minimum: 0, maximum: 0.9, description: 'overlap between model chunks' },
  batchSize: { type: 'integer', minimum: 1, maximum: 64, description: 'chunks per model call' },
  denoise: { type: 'boolean', description: 'MDX-Net: average the model on the mix and its negation' },
  channels: { type: 'string', enum: ['per-channel', 'downmix'], description: 'mono speech models on stereo input' },
  precision: { type: 'string', enum: ['auto', 'fp32', 'fp16', 'int8'], description: 'model precision' },
  format: { type: 'string', enum: FORMATS, description: 'output format (default wav)' },
  bits: { type: 'integer', enum: [16, 24, 32], description: 'sample size for wav and flac' },
  bitrate: { type: 'string', description: 'lossy formats, e.g. 320k', minLength: 1, maxLength: 16 },
  clip: { type: 'string', enum: ['rescale', 'clamp', 'none'], description: 'clipping policy' },
  sampleRate: { type: 'string', enum: ['same', 'model'], description: 'stems at the input rate (same) or the model rate' },
  remux: { type: 'array', items: { type: 'string' }, description: 'video inputs: also write the video with these stems as its soundtrack' },
};

/** Options of POST /v1/tts. */
export const TTS_OPTIONS: OptionTable = {
  text: { type: 'string', minLength: 1, maxLength: 100_000, description: 'the text to speak (SSML when it starts with <speak>, or with ssml: true)' },
  ssml: { type: 'boolean', description: 'read the text as SSML' },
  model: { type: 'string', minLength: 1, description: 'kokoro (default), piper:<voice>, another registry id, or an .onnx path under serve.inputRoots' },
  voices: { type: 'string', minLength: 1, description: 'Kokoro voices file under serve.inputRoots (for a local .onnx)' },
  voice: { type: 'string', minLength: 1, description: 'Kokoro voice or blend, e.g. af_heart:0.7,bf_emma:0.3' },
  speed: { type: 'number', minimum: 0.1, maximum: 10, description: 'Kokoro 0.5–2; Piper divides the length scale' },
  speaker: { type: 'string', minLength: 1, description: 'Piper multi-speaker voices: a name or an id' },
  lengthScale: { type: 'number', minimum: 0, maximum: 100, description: 'Piper phoneme duration scale' },
  noiseScale: { type: 'number', minimum: 0, maximum: 100, description: 'Piper generator noise' },
  noiseW: { type: 'number', minimum: 0, maximum: 100, description: 'Piper duration noise' },
  sentenceSilence: { type: 'number', minimum: 0, maximum: 60, description: 'seconds of silence between sentences' },
  lang: { type: 'string', minLength: 1, description: 'espeak-ng language, e.g. en-gb' },
  precision: { type: 'string', enum: ['auto', 'fp32', 'fp16', 'int8'], description: 'model precision' },
  format: { type: 'string', enum: FORMATS, description: 'output format (default wav)' },
  bits: { type: 'integer', enum: [16, 24, 32], description: 'WAV sample size' },
};

/** The JSON schema of an options object (no unknown keys). */
export function objectSchema(table: OptionTable, extra: Record<string, unknown> = {}, required: string[] = []): Record<string, unknown> {
  return { type: 'object', additionalProperties: false, required, properties: { ...table, ...extra } };
}

function expected(s: OptionSchema): string {
  if (s.enum) return `one of ${s.enum.join(', ')}`;
  if (s.type === 'array') return 'a list of names';
  if (s.type === 'integer' || s.type === 'number') {
    const range = s.minimum !== undefined && s.maximum !== undefined ? ` from ${s.minimum} to ${s.maximum}` : '';
    return `${s.type === 'integer' ? 'an integer' : 'a number'}${range}`;
  }
  if (s.type === 'boolean') return 'true or false';
  return s.maxLength !== undefined ? `a string of at most ${s.maxLength} characters` : 'a non-empty string';
}

function readOne(name: string, s: OptionSchema, raw: unknown, fromForm: boolean): unknown {
  let v = raw;
  if (fromForm && typeof raw === 'string') {
    if (s.type === 'integer' || s.type === 'number') v = raw.trim() === '' ? NaN : Number(raw);
    else if (s.type === 'boolean') v = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    else if (s.type === 'array') v = raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
  }
  const fail = (): never => {
    throw new UsageError(`option ${name} must be ${expected(s)} (got ${JSON.stringify(raw)})`, { code: 'E_INVALID_OPTION', hint: s.description });
  };
  switch (s.type) {
    case 'string':
      if (typeof v !== 'string' || v.length < (s.minLength ?? 0) || v.length > (s.maxLength ?? Infinity)) fail();
      break;
    case 'integer':
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || (s.type === 'integer' && !Number.isInteger(v))) fail();
      if ((s.minimum !== undefined && (v as number) < s.minimum) || (s.maximum !== undefined && (v as number) > s.maximum)) fail();
      break;
    case 'boolean':
      if (typeof v !== 'boolean') fail();
      break;
    case 'array':
      if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && x !== '')) fail();
      break;
  }
  if (s.enum && !s.enum.includes(v as string | number)) fail();
  return v;
}

/**
 * Reads and checks an options object (a JSON body, or form fields with `fromForm`: strings converted by the
 * option's type). @throws UsageError (400) naming the first bad option, or listing unknown ones.
 */
export function readOptions(table: OptionTable, raw: Record<string, unknown>, fromForm: boolean, allowed: readonly string[] = []): Record<string, unknown> {
  const unknown = Object.keys(raw).filter((k) => !(k in table) && !allowed.includes(k));
  if (unknown.length > 0) {
    throw new UsageError(`unknown option${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}`, { code: 'E_INVALID_OPTION', hint: `known options: ${[...Object.keys(table), ...allowed].join(', ')}` });
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || allowed.includes(k)) continue;
    out[k] = readOne(k, table[k]!, v, fromForm);
  }
  return out;
}

/** The library's separation spec and file options from checked API options. */
export function separateJob(o: Record<string, unknown>, outDir: string): { spec: SeparatorSpec; file: SeparateFileOptions } {
  const spec: SeparatorSpec = {};
  const file: SeparateFileOptions = { outDir, filename: '{stem}.{ext}', force: true };
  const set = <T extends object>(target: T, key: keyof T, value: unknown): void => {
    if (value !== undefined) (target as Record<keyof T, unknown>)[key] = value;
  };
  set(spec, 'model', o['model']);
  set(spec, 'mode', o['mode']);
  set(spec, 'stems', o['stems']);
  set(spec, 'twoStems', o['twoStems']);
  if (o['otherMethod'] !== undefined && o['twoStems'] === undefined && o['mode'] !== 2) {
    throw new UsageError('option otherMethod needs twoStems (or mode 2)', { code: 'E_INVALID_OPTION', hint: 'e.g. {"twoStems": "vocals", "otherMethod": "minus"}' });
  }
  set(spec, 'otherMethod', o['otherMethod']);
  set(spec, 'shifts', o['shifts']);
  set(spec, 'seed', o['seed']);
  set(spec, 'overlap', o['overlap']);
  set(spec, 'batchSize', o['batchSize']);
  if (o['denoise'] === true) spec.denoise = true;
  set(spec, 'channelMode', o['channels']);
  set(spec, 'precision', o['precision']);
  set(file, 'format', o['format']);
  set(file, 'bits', o['bits']);
  set(file, 'bitrate', o['bitrate']);
  set(file, 'clip', o['clip']);
  set(file, 'sampleRate', o['sampleRate']);
  set(file, 'remux', o['remux']);
  return { spec, file };
}

/** The synthesis options from checked API options. */
export function ttsVoiceOptions(o: Record<string, unknown>): TtsVoiceOptions {
  const v: TtsVoiceOptions = {};
  for (const k of ['voice', 'speed', 'lengthScale', 'noiseScale', 'noiseW', 'sentenceSilence', 'lang', 'ssml'] as const) {
    if (o[k] !== undefined) (v as Record<string, unknown>)[k] = o[k];
  }
  // As the CLI passes --speaker: a string, which the Piper engine reads as a name or a numeric id.
  if (typeof o['speaker'] === 'string') v.speaker = o['speaker'];
  return v;
}

/** The output format of a job (default wav). */
export function formatOf(o: Record<string, unknown>): AudioFormat {
  return (o['format'] as AudioFormat | undefined) ?? 'wav';
}
