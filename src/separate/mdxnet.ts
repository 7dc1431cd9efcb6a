/**
 * UVR MDX-Net adapter (model-io.md §2): parameters by tail-MD5 from UVR's model-data table, per-chunk
 * unnormalised STFT with bins 0–2 zeroed and bins ≥ dim_f dropped, symmetric-Hann overlap-add of
 * 261120-sample chunks, `compensate`, and the secondary stem as mix − primary.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DataError, UsageError, throwIfAborted } from '../errors.js';
import type { RawAudio } from '../audio/raw-audio.js';
import type { ModelSession, SessionOptions } from '../runtime/onnx.js';
import { loadSimdFft } from '../dsp/fft-simd.js';
import { istftInto, stftFrameCount, stftInto } from '../dsp/stft.js';
import { hannPeriodic, hannSymmetric } from '../dsp/windows.js';
import { isSupportedFftSize } from '../dsp/fft.js';
import { OlaStream, PlanarQueue, type SegmentLayout } from './chunking.js';
import type { StemBlocks, StemModel } from './types.js';

/** The per-model parameters (UVR model-data fields, decoded). */
export interface MdxParams {
  nFft: number;
  dimF: number;
  /** Frames per chunk (UVR stores the exponent: dim_t = 2^mdx_dim_t_set). */
  dimT: number;
  /** Always 1024 in UVR. */
  hop: number;
  compensate: number;
  /** Lower-case stem name, e.g. 'vocals', 'instrumental'. */
  primaryStem: string;
  isKaraoke?: boolean;
  /** Where the parameters came from, for `--verbose` and error messages. */
  source: string;
}

/** One entry of UVR's model_data_new.json. */
export interface UvrModelData {
  compensate?: number;
  mdx_dim_f_set?: number;
  mdx_dim_t_set?: number;
  mdx_n_fft_scale_set?: number;
  primary_stem?: string;
  is_karaoke?: boolean;
  config_yaml?: string;
}

/** Bytes hashed for the model-data key: the last 10,000 KiB, or the whole file when smaller (§2.2). */
export const HASH_TAIL_BYTES = 10_240_000;

/** MD5 of the last 10,240,000 bytes of the file (or of all of it), as UVR and audio-separator compute it. */
export async function mdxModelHash(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - HASH_TAIL_BYTES);
    const hash = createHash('md5');
    const buf = new Uint8Array(1 << 20);
    for (let pos = start; pos < size; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

let table: Record<string, UvrModelData> | undefined;

/** UVR's model-data table bundled as models/mdx-model-data.json (provenance inside the file). */
export function mdxModelTable(): Record<string, UvrModelData> {
  if (!table) {
    const file = fileURLToPath(new URL('../../models/mdx-model-data.json', import.meta.url));
    table = (JSON.parse(readFileSync(file, 'utf8')) as { models: Record<string, UvrModelData> }).models;
  }
  return table;
}

/** Decodes a UVR model-data entry; undefined when it is not an MDX-Net entry (config_yaml ones are MDX23C/Roformer). */
export function paramsFromUvr(e: UvrModelData, source: string): Partial<MdxParams> {
  const p: Partial<MdxParams> = { source };
  if (e.mdx_n_fft_scale_set !== undefined) p.nFft = e.mdx_n_fft_scale_set;
  if (e.mdx_dim_f_set !== undefined) p.dimF = e.mdx_dim_f_set;
  if (e.mdx_dim_t_set !== undefined) p.dimT = 2 ** e.mdx_dim_t_set;
  if (e.compensate !== undefined) p.compensate = e.compensate;
  if (e.primary_stem !== undefined) p.primaryStem = e.primary_stem.toLowerCase();
  if (e.is_karaoke !== undefined) p.isKaraoke = e.is_karaoke;
  return p;
}

/** The options that give MDX-Net's sizes, as hints name them (the CLI shows them as flags). */
const MDX_SIZE_OPTIONS = ['mdx.nFft', 'mdx.dimF', 'mdx.dimT'];

/** Options that override or supply MDX-Net parameters (the CLI's `--mdx-n-fft`, `--mdx-dim-f`, `--mdx-dim-t`, `--mdx-compensate`, `--mdx-primary`). */
export interface MdxOverrides {
  nFft?: number;
  dimF?: number;
  /** Frames (not the exponent). */
  dimT?: number;
  compensate?: number;
  primaryStem?: string;
}

/**
 * Resolves a model file's parameters. Precedence: explicit flags > UVR table by tail-MD5 > sidecar
 * `<model>.json` (UVR entry format) > the registry entry's params.
 * @throws UsageError (64) naming the missing parameters and how to give them.
 */
export async function resolveMdxParams(path: string, opts: { registry?: Record<string, unknown>; overrides?: MdxOverrides }): Promise<MdxParams> {
  const layers: Array<Partial<MdxParams>> = [];
  const reg = opts.registry;
  if (reg) {
    const p: Partial<MdxParams> = { source: 'registry' };
    if (typeof reg['nFft'] === 'number') p.nFft = reg['nFft'];
    if (typeof reg['dimF'] === 'number') p.dimF = reg['dimF'];
    if (typeof reg['dimT'] === 'number') p.dimT = reg['dimT'];
    if (typeof reg['hop'] === 'number') p.hop = reg['hop'];
    if (typeof reg['compensate'] === 'number') p.compensate = reg['compensate'];
    if (typeof reg['primaryStem'] === 'string') p.primaryStem = reg['primaryStem'].toLowerCase();
    if (typeof reg['isKaraoke'] === 'boolean') p.isKaraoke = reg['isKaraoke'];
    layers.push(p);
  }
  const sidecar = path.replace(/\.onnx$/i, '') + '.json';
  if (existsSync(sidecar)) {
    let entry: UvrModelData;
    try {
      entry = JSON.parse(readFileSync(sidecar, 'utf8')) as UvrModelData;
    } catch (cause) {
      throw new UsageError(`the MDX-Net sidecar ${sidecar} is not valid JSON`, { cause, hint: 'fix it, or pass the parameters with mdx.nFft/mdx.dimF/mdx.dimT', details: { hintOption: MDX_SIZE_OPTIONS } });
    }
    layers.push(paramsFromUvr(entry, `sidecar ${sidecar}`));
  }
  const hash = await mdxModelHash(path);
  const known = mdxModelTable()[hash];
  if (known && known.config_yaml === undefined) layers.push(paramsFromUvr(known, `UVR model data (hash ${hash})`));
  const o = opts.overrides ?? {};
  const flags: Partial<MdxParams> = { source: 'flags' };
  if (o.nFft !== undefined) flags.nFft = o.nFft;
  if (o.dimF !== undefined) flags.dimF = o.dimF;
  if (o.dimT !== undefined) flags.dimT = o.dimT;
  if (o.compensate !== undefined) flags.compensate = o.compensate;
  if (o.primaryStem !== undefined) flags.primaryStem = o.primaryStem.toLowerCase();
  if (Object.keys(flags).length > 1) layers.push(flags);

  const merged: Partial<MdxParams> = {};
  const sources: string[] = [];
  for (const l of layers) {
    const { source, ...rest } = l;
    if (Object.keys(rest).length > 0 && source) sources.push(source);
    Object.assign(merged, rest);
  }
  const missing = (['nFft', 'dimF', 'dimT'] as const).filter((k) => merged[k] === undefined);
  if (missing.length > 0) {
    throw new UsageError(`unknown MDX-Net model ${path} (hash ${hash}): ${missing.join(', ')} not known`, {
      code: 'E_MDX_PARAMS',
      hint: `put a sidecar ${sidecar} in UVR's model-data format ({"compensate":1.035,"mdx_dim_f_set":3072,"mdx_dim_t_set":8,"mdx_n_fft_scale_set":6144,"primary_stem":"Vocals"}) or pass mdx.nFft, mdx.dimF and mdx.dimT`,
      details: { hintOption: MDX_SIZE_OPTIONS },
    });
  }
  const p: MdxParams = {
    nFft: merged.nFft!,
    dimF: merged.dimF!,
    dimT: merged.dimT!,
    hop: merged.hop ?? 1024,
    compensate: merged.compensate ?? 1,
    primaryStem: merged.primaryStem ?? 'vocals',
    source: sources.join(' + ') || 'defaults',
  };
  if (merged.isKaraoke !== undefined) p.isKaraoke = merged.isKaraoke;
  if (!isSupportedFftSize(p.nFft) || p.dimF < 4 || p.dimF > p.nFft / 2 + 1 || p.dimT < 2) {
    throw new UsageError(`invalid MDX-Net parameters for ${path}: n_fft ${p.nFft}, dim_f ${p.dimF}, dim_t ${p.dimT}`, {
      code: 'E_MDX_PARAMS',
      hint: 'n_fft must be even and of the form 2^a·3^b·5^c, 4 ≤ dim_f ≤ n_fft/2+1, dim_t ≥ 2',
    });
  }
  return p;
}

/** The two stems of an MDX-Net model: the primary and its complement (vocals ↔ instrumental, else no_<primary>). */
export function mdxStems(primary: string): [string, string] {
  const p = primary.toLowerCase();
  if (p === 'vocals') return ['vocals', 'instrumental'];
  if (p === 'instrumental') return ['instrumental', 'vocals'];
  return [p, `no_${p}`];
}

export interface MdxModelOptions {
  id: string;
  path: string;
  params: MdxParams;
  /** pred = 0.5·model(spec) − 0.5·model(−spec) (UVR "denoise"); doubles the inference cost. */
  denoise?: boolean;
  session: SessionOptions;
  createSession(path: string, opts: SessionOptions): Promise<ModelSession>;
}

/**
 * Loads an MDX-Net model and checks its tensor contract ([B,4,dim_f,dim_t] `input` → `output`, §2.1)
 * against the parameters.
 * @throws DataError (65) when the session's shapes contradict the parameters.
 */
export async function createMdxModel(opts: MdxModelOptions): Promise<StemModel> {
  await loadSimdFft();
  const p = opts.params;
  const session = await opts.createSession(opts.path, opts.session);
  const fail = async (why: string): Promise<never> => {
    await session.dispose();
    throw new DataError(`${opts.path} does not match the MDX-Net contract: ${why}`, {
      code: 'E_MODEL_CONTRACT',
      hint: 'check the model parameters (sidecar JSON or the mdx options); see model-io.md §2.1',
      details: { hintOption: 'mdx' },
    });
  };
  if (session.inputs.length !== 1 || session.outputs.length !== 1) await fail(`expected one input and one output, found ${session.inputs.length} and ${session.outputs.length}`);
  const inp = session.inputs[0]!;
  const want = [4, p.dimF, p.dimT];
  for (let i = 0; i < 3; i++) {
    const d = inp.shape[i + 1];
    if (typeof d === 'number' && d > 0 && d !== want[i]) await fail(`input ${inp.name} has shape [${inp.shape.join(',')}], parameters say [B,4,${p.dimF},${p.dimT}]`);
  }
  if (inp.shape.length !== 4) await fail(`input ${inp.name} has rank ${inp.shape.length}, expected 4`);
  const fixedBatch = typeof inp.shape[0] === 'number' && inp.shape[0] > 0 ? inp.shape[0] : undefined;
  const stems = mdxStems(p.primaryStem);
  const inName = inp.name;
  const outName = session.outputs[0]!.name;

  return {
    id: opts.id,
    stems,
    sampleRate: 44100,
    channels: 2,
    provider: session.provider,
    threads: session.threads,
    needsTrackStats: false,
    createStream(so) {
      const timing = { seconds: 0 };
      const chunk = p.hop * (p.dimT - 1);
      const trim = p.nFft / 2;
      const gen = chunk - 2 * trim;
      const overlap = so.overlap ?? 0.25;
      const step = overlap === 0 ? chunk : Math.max(1, Math.floor((1 - overlap) * chunk));
      const layout: SegmentLayout = {
        segment: chunk,
        step,
        leftPad: trim,
        // pad = gen_size + trim − (N mod gen_size) (§2.4 step 2).
        rightPad: (n) => gen + trim - (n % gen),
        align: 'left',
        weight: overlap === 0 ? (len) => new Float32Array(len).fill(1) : (len) => hannSymmetric(len),
        dropFront: trim,
      };
      const runner = makeMdxRunner(session, inName, outName, p, opts.denoise === true, timing, so.signal);
      const ola = new OlaStream(layout, 2, 1, runner, fixedBatch ?? Math.max(1, so.batchSize ?? 1));
      const mix = new PlanarQueue(2);
      const wanted = so.wantedStems ?? stems;

      const finish = (out: Float32Array[][]): StemBlocks => {
        const primary = out[0]!;
        const n = primary[0]!.length;
        const m = mix.shift(n);
        // UVR: primary = demix·compensate; secondary = mix − primary (time domain, §2.5), so the two sum to the mix.
        for (const ch of primary) for (let i = 0; i < n; i++) ch[i] = ch[i]! * p.compensate;
        const res: StemBlocks = {};
        if (wanted.includes(stems[0])) res[stems[0]] = { channels: primary, sampleRate: 44100 };
        if (wanted.includes(stems[1])) {
          const sec = m.map((ch, c) => {
            const o = new Float32Array(n);
            for (let i = 0; i < n; i++) o[i] = ch[i]! - primary[c]![i]!;
            return o;
          });
          res[stems[1]] = { channels: sec, sampleRate: 44100 };
        }
        return res;
      };

      return {
        get inferSeconds() {
          return timing.seconds;
        },
        async push(block: RawAudio) {
          throwIfAborted(so.signal);
          mix.push(block.channels);
          const out = await ola.push(block.channels);
          so.onInferProgress?.(ola.doneFrames);
          return finish(out);
        },
        async flush() {
          const out = await ola.flush();
          so.onInferProgress?.(ola.doneFrames);
          return finish(out);
        },
      };
    },
    async dispose() {
      await session.dispose();
    },
  };
}

/**
 * The per-chunk pipeline of §2.3 (STFT → bins 0–2 zeroed, bins ≥ dim_f dropped → model → zero-filled iSTFT)
 * for a batch of stereo chunks of hop·(dim_t − 1) samples. Exported for conformance tests.
 */
export function makeMdxRunner(session: ModelSession, inName: string, outName: string, p: MdxParams, denoise: boolean, timing: { seconds: number }, signal: AbortSignal | undefined) {
  const window = hannPeriodic(p.nFft);
  const FT = p.dimF * p.dimT;
  // float32 FFT (WASM SIMD where n_fft allows, float64 otherwise): the model tensors are float32.
  const opts = { nFft: p.nFft, hop: p.hop, window, center: true, normalized: false, precision: 'float32' } as const;
  return async (segments: Float32Array[][]): Promise<Float32Array[][][]> => {
    const B = segments.length;
    const input = new Float32Array(B * 4 * FT);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < 2; c++) {
        const x = segments[b]![c]!;
        const frames = stftFrameCount(x.length, opts);
        if (frames !== p.dimT) throw new DataError(`MDX chunk gave ${frames} frames, expected ${p.dimT}`, { code: 'E_INTERNAL' });
        // Channels [L.re, L.im, R.re, R.im] (§2.1), bins 0..dim_f−1 written in place; bins 0–2 are then zeroed
        // (spek[:, :, :3, :] *= 0).
        const reOffset = (b * 4 + 2 * c) * FT;
        const imOffset = (b * 4 + 2 * c + 1) * FT;
        stftInto(x, opts, { firstFrame: 0, frames, bins: p.dimF }, { re: input, im: input, reOffset, imOffset, stride: p.dimT });
        input.fill(0, reOffset, reOffset + 3 * p.dimT);
        input.fill(0, imOffset, imOffset + 3 * p.dimT);
      }
    }
    throwIfAborted(signal);
    const dims = [B, 4, p.dimF, p.dimT];
    const t0 = performance.now();
    let pred = (await session.run({ [inName]: { data: input, dims } }))[outName]!.data as Float32Array;
    if (denoise) {
      const neg = new Float32Array(input.length);
      for (let i = 0; i < input.length; i++) neg[i] = -input[i]!;
      const predNeg = (await session.run({ [inName]: { data: neg, dims } }))[outName]!.data as Float32Array;
      const d = new Float32Array(pred.length);
      for (let i = 0; i < pred.length; i++) d[i] = 0.5 * pred[i]! - 0.5 * predNeg[i]!;
      pred = d;
    }
    timing.seconds += (performance.now() - t0) / 1000;
    const outs: Float32Array[][][] = [];
    for (let b = 0; b < B; b++) {
      const chans: Float32Array[] = [];
      for (let c = 0; c < 2; c++) {
        // Bins ≥ dim_f are zero (pad_frequency_dimension): the iSTFT reads the model's dim_f bins in place.
        const view = { re: pred, im: pred, reOffset: (b * 4 + 2 * c) * FT, imOffset: (b * 4 + 2 * c + 1) * FT, stride: p.dimT };
        const y = new Float32Array(p.hop * (p.dimT - 1));
        istftInto(view, opts, { totalFrames: p.dimT, firstFrame: 0, frames: p.dimT, bins: p.dimF, start: 0, length: y.length }, y);
        chans.push(y);
      }
      outs.push([chans]);
    }
    return outs;
  };
}
