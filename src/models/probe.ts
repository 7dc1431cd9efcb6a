/**
 * Contract checks for model files that arrive from outside the registry's pins (`models import`): a file is
 * installed under a model's name only when it has that model's tensor contract. Otherwise a Kokoro file imported as
 * htdemucs would be "installed", pass `verify` (its checksum is simply recorded) and fail later, in the middle of a
 * batch. One row per adapter; the separation and TTS checks reuse the adapters' own binding code, loaded lazily so
 * that the models module does not pull the engines in.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { DataError } from '../errors.js';
import type { ModelSession, ValueInfo } from '../runtime/onnx.js';
import { looksLikeHtml, readHead } from './download.js';
import type { ModelAdapter, ModelEntry, ModelFile } from './registry.js';

/** Returns why the file does not fit, or undefined when it does. */
type OnnxCheck = (session: Pick<ModelSession, 'inputs' | 'outputs'>, entry: ModelEntry, file: ModelFile, path: string) => Promise<string | undefined>;

const shape = (v: ValueInfo): string => `${v.name}[${v.shape.join(',')}]${v.type ? ` ${v.type}` : ''}`;
const signature = (s: Pick<ModelSession, 'inputs' | 'outputs'>): string => `inputs ${s.inputs.map(shape).join(' ')}; outputs ${s.outputs.map(shape).join(' ')}`;
const allFloat = (vs: readonly ValueInfo[]): boolean => vs.every((v) => v.type === undefined || v.type === 'float32');

/** Runs a check that throws the adapter's own DataError, as a reason string. */
async function reason(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    if (e instanceof DataError) return e.message.replace(/^.*? does not (have|match) [^:]*: /, '');
    throw e;
  }
}

const ONNX_CHECKS: Record<Exclude<ModelAdapter, 'classic'>, OnnxCheck> = {
  async htdemucs(s, entry, _file, path) {
    const { bindHtdemucs } = await import('../separate/htdemucs.js');
    let stems = 0;
    const why = await reason(() => {
      stems = bindHtdemucs(s.inputs, s.outputs, path).stems;
    });
    if (why) return why;
    const want = entry.stems?.length;
    // Every file of an HTDemucs entry outputs all of the entry's stems (an htdemucs_ft specialist too: all four rows).
    return want !== undefined && stems !== want ? `it outputs ${stems} stems; ${entry.id} has ${want} (${entry.stems!.join(', ')})` : undefined;
  },
  async mdxnet(s, entry) {
    // model-io.md §2.1: `input` [B,4,dim_f,dim_t] → `output` of the same shape.
    const dimF = entry.params?.['dimF'];
    const [inp] = s.inputs;
    const ok =
      s.inputs.length === 1 &&
      s.outputs.length === 1 &&
      allFloat([...s.inputs, ...s.outputs]) &&
      inp!.shape.length === 4 &&
      (typeof inp!.shape[1] !== 'number' || inp!.shape[1] === 4) &&
      (typeof dimF !== 'number' || typeof inp!.shape[2] !== 'number' || inp!.shape[2] === dimF);
    return ok ? undefined : `expected one float32 input [B,4,${typeof dimF === 'number' ? dimF : 'dim_f'},dim_t] and one output`;
  },
  async gtcrn(s) {
    // The streaming GTCRN: a [1,257,1,2] spectrum frame plus its caches, all float32.
    const frame = s.inputs.some((v) => v.shape.length === 4 && v.shape[1] === 257 && v.shape[3] === 2);
    return frame && allFloat(s.inputs) ? undefined : 'expected a float32 [1,257,1,2] frame input (GTCRN streaming export)';
  },
  async dtln(s) {
    return s.inputs.length >= 2 && allFloat(s.inputs) ? undefined : 'expected float32 frame and state inputs (DTLN stage export)';
  },
  async kokoro(s) {
    const { detectKokoroContract } = await import('../tts/kokoro.js');
    const why = await reason(() => detectKokoroContract(s));
    if (why) return why;
    const ids = s.inputs.find((v) => v.name === 'tokens' || v.name === 'input_ids');
    return ids?.type !== undefined && ids.type !== 'int64' ? `${ids.name} is ${ids.type}, expected int64 token ids` : undefined;
  },
  async piper(s) {
    const names = s.inputs.map((v) => v.name);
    return names.includes('input') && names.includes('scales') ? undefined : 'expected the Piper inputs input, input_lengths, scales[, sid]';
  },
};

/**
 * Checks that `path` (the file about to be installed as `file` of `entry`) is what that role needs: never an HTML
 * page, a parseable JSON config, and for ONNX files the adapter's tensor contract.
 * @throws DataError (65, E_MODEL_CONTRACT) naming the file, the model and what was expected.
 */
export async function checkModelFile(entry: ModelEntry, file: ModelFile, path: string, shown = path): Promise<void> {
  const fail = (why: string): never => {
    throw new DataError(`${basename(shown)} is not ${entry.id}'s ${file.name}: ${why}`, {
      code: 'E_MODEL_CONTRACT',
      hint: entry.importHint ?? `import the ${entry.id} files (${file.name})`,
    });
  };
  if (looksLikeHtml(await readHead(path))) fail('it is an HTML page (a download that returned an error or login page?)');
  if (file.name.endsWith('.json')) {
    try {
      JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      fail(`it is not valid JSON (${(e as Error).message})`);
    }
    return;
  }
  if (!file.name.endsWith('.onnx') || entry.adapter === 'classic') return;
  const { createSession } = await import('../runtime/onnx.js');
  const session = await createSession(path, { device: 'cpu', threads: 1 }).catch((e: unknown) => fail(`it is not a loadable ONNX model (${e instanceof Error ? e.message : String(e)})`));
  try {
    const why = await ONNX_CHECKS[entry.adapter](session, entry, file, path);
    if (why) fail(`${why} (${signature(session)})`);
  } finally {
    await session.dispose();
  }
}
