/**
 * Kokoro-82M inference (model-io.md §3.1): one call = ids `[0, p1 … pn, 0]` (n ≤ 510), a 256-wide style
 * row chosen by n, and a speed; the result is 24 kHz mono float audio.
 *
 * Two contracts exist and are told apart by input names:
 * - kokoro-onnx `kokoro-v1.0.onnx`: `tokens`, `style`, `speed` → audio in output 0;
 * - onnx-community / kokoro-onnx export.py: `input_ids`, `style`, `speed` → `waveform` (+ `duration`).
 * The speed input is float32 in most exports but int32 in export.py's (kokoro-onnx#135); its dtype is
 * read from the session metadata, never guessed.
 */
import { DataError, InternalError } from '../errors.js';
import type { LogCallback } from '../progress.js';
import type { ModelSession, TensorData } from '../runtime/onnx.js';
import { KOKORO_MAX_TOKENS, KOKORO_PAD, KOKORO_STYLE_DIM } from './vocab.js';

export interface KokoroContract {
  idsInput: 'tokens' | 'input_ids';
  speedType: 'float32' | 'int32';
  /** The output holding the waveform. */
  output: string;
  /** The per-token `duration` output (kokoro-onnx export.py), when the model has one: see timing.ts. */
  duration?: string;
}

/**
 * Reads the contract from a session's inputs/outputs.
 * @throws DataError (65) when the model does not have Kokoro's inputs.
 */
export function detectKokoroContract(session: Pick<ModelSession, 'inputs' | 'outputs'>): KokoroContract {
  const names = session.inputs.map((i) => i.name);
  const idsInput = names.includes('input_ids') ? 'input_ids' : names.includes('tokens') ? 'tokens' : undefined;
  const speed = session.inputs.find((i) => i.name === 'speed');
  if (!idsInput || !names.includes('style') || !speed) {
    throw new DataError(`not a Kokoro model: its inputs are ${names.join(', ') || '(none)'}; expected tokens|input_ids, style, speed`, {
      code: 'E_MODEL_CONTRACT',
      hint: 'Use a Kokoro v1.0 ONNX export (kokoro-onnx or onnx-community), or a Piper voice with its .onnx.json beside it.',
    });
  }
  const speedType = speed.type === 'int32' ? 'int32' : 'float32';
  const outNames = session.outputs.map((o) => o.name);
  const output = outNames.includes('waveform') ? 'waveform' : outNames[0];
  if (output === undefined) throw new DataError('the Kokoro model has no outputs', { code: 'E_MODEL_CONTRACT' });
  return { idsInput, speedType, output, ...(outNames.includes('duration') && output !== 'duration' ? { duration: 'duration' } : {}) };
}

/** Samples of 24 kHz audio per predicted duration unit (model-io.md §3.1: 40 Hz alignment). */
export const KOKORO_SAMPLES_PER_FRAME = 600;

/** One call's result: the waveform and, when the model reports them, samples per input token (pads included). */
export interface KokoroOutput {
  wave: Float32Array;
  tokenSamples?: number[];
}

/** The speeds Kokoro accepts (kokoro-onnx asserts 0.5 ≤ speed ≤ 2); > 1 is faster. */
export const KOKORO_SPEED_RANGE: readonly [number, number] = [0.5, 2];

export class KokoroEngine {
  readonly contract: KokoroContract;
  private warnedIntSpeed = false;

  constructor(
    private readonly session: ModelSession,
    private readonly onLog?: LogCallback,
  ) {
    this.contract = detectKokoroContract(session);
  }

  /** The value fed for `speed`: the float itself, or for int32 models the nearest integer ≥ 1 (with a warning once when that differs). */
  speedFeed(speed: number): TensorData {
    if (this.contract.speedType === 'float32') return { data: new Float32Array([speed]), dims: [1] };
    const s = Math.max(1, Math.round(speed));
    if (s !== speed && !this.warnedIntSpeed) {
      this.warnedIntSpeed = true;
      this.onLog?.({ level: 'warn', message: `this Kokoro export takes an integer speed; using ${s} instead of ${speed}` });
    }
    return { data: new Int32Array([s]), dims: [1] };
  }

  /**
   * Runs one call. `ids` are the phoneme tokens without pads (1 ≤ n ≤ 510); `style` the selected 256-wide row.
   * @returns the waveform (flattened), 24 kHz, and with a `duration` output the samples of each token
   *   ([pad, ids…, pad]; a count that does not match the tokens is ignored, the timing is then estimated).
   */
  async infer(ids: readonly number[], style: Float32Array, speed: number): Promise<KokoroOutput> {
    if (ids.length === 0 || ids.length > KOKORO_MAX_TOKENS) throw new InternalError(`split error: ${ids.length} tokens in one Kokoro call`);
    if (style.length !== KOKORO_STYLE_DIM) throw new InternalError(`style vector has ${style.length} values, expected ${KOKORO_STYLE_DIM}`);
    const tokens = new BigInt64Array(ids.length + 2);
    tokens[0] = BigInt(KOKORO_PAD);
    for (let i = 0; i < ids.length; i++) tokens[i + 1] = BigInt(ids[i]!);
    tokens[ids.length + 1] = BigInt(KOKORO_PAD);
    const out = await this.session.run({
      [this.contract.idsInput]: { data: tokens, dims: [1, tokens.length] },
      style: { data: style, dims: [1, KOKORO_STYLE_DIM] },
      speed: this.speedFeed(speed),
    });
    const wave = out[this.contract.output];
    if (!wave || !(wave.data instanceof Float32Array)) {
      throw new DataError(`the Kokoro model did not return float audio in "${this.contract.output}"`, { code: 'E_MODEL_CONTRACT' });
    }
    const dur = this.contract.duration ? out[this.contract.duration] : undefined;
    if (!dur || dur.data.length !== tokens.length || typeof dur.data === 'string') return { wave: wave.data };
    // int64 frame counts per token (int32/float exports read the same way).
    const tokenSamples = Array.from(dur.data as ArrayLike<number | bigint>, (v) => Number(v) * KOKORO_SAMPLES_PER_FRAME);
    return { wave: wave.data, tokenSamples };
  }
}
