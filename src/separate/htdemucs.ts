/**
 * HTDemucs adapter (model-io.md §1): the spectrogram/iSTFT DSP around a "core only" ONNX export, track
 * normalisation, overlap-add of centred 7.8 s segments with triangular weights, the shift trick, and bags of
 * models (htdemucs_ft).
 *
 * Three export contracts are supported (§1.3), bound by metadata and shapes, never by guessed names:
 * A (sevagh/demucs.onnx and re-exports): a [B,2,343980] waveform input and a [B,4,2048,336] CaC spectrogram
 *   input → a [B,S,4,2048,336] spectrogram output and a [B,S,2,343980] waveform output (the second tensors
 *   keep tracer-chosen names, so they are told apart by rank).
 * B (unblend `export-onnx`): `spec_real`/`spec_imag` [B,2,2048,336] + `audio` [B,2,343980] →
 *   `out_spec_real`/`out_spec_imag` [B,S,2,2048,336] + `out_wave` [B,S,2,343980], with a `sources` JSON list in
 *   metadata_props. Real and imaginary parts have the same shape, so those two are bound by their documented names.
 * D (StemSplit/demucs-onnx, published on Hugging Face): the whole `HTDemucs.forward` in the graph, STFT and iSTFT
 *   included: one waveform input [1,2,343980] (`mix`) → one waveform output [1,S,2,343980] (`stems`). Bound by rank.
 *   Only the track-level steps (normalisation, chunking, shifts, bags) run here.
 */
import os from 'node:os';
import { DataError, InternalError, throwIfAborted } from '../errors.js';
import type { RawAudio } from '../audio/raw-audio.js';
import type { ModelSession, SessionMemory, SessionOptions, ValueInfo } from '../runtime/onnx.js';
import { loadSimdFft } from '../dsp/fft-simd.js';
import { istftInto, stft, stftInto, type Spectrogram } from '../dsp/stft.js';
import { hannPeriodic } from '../dsp/windows.js';
import { OlaStream, PlanarQueue, createRng, triangleWeight, type SegmentLayout } from './chunking.js';
import { readOnnxMetadata } from './onnx-metadata.js';
import type { StemBlocks, StemModel, StemStream, StemStreamOptions } from './types.js';

/** Fixed constants of every HTDemucs export (§1.2). */
export const HT = {
  sampleRate: 44100,
  segment: 343980,
  nFft: 4096,
  hop: 1024,
  bins: 2048,
  frames: 336,
  /** Reflect padding before the STFT: hop/2·3. */
  pad: 1536,
  /** max_shift of the shift trick: int(0.5·44100). */
  maxShift: 22050,
} as const;

export const DEFAULT_SOURCES_4 = ['drums', 'bass', 'other', 'vocals'];
export const DEFAULT_SOURCES_6 = ['drums', 'bass', 'other', 'vocals', 'guitar', 'piano'];

/** How one session's tensors are bound. */
export interface HtBinding {
  contract: 'A' | 'B' | 'D';
  audioIn: string;
  /** Contract A: the CaC spectrogram input (contract D has none: its STFT is inside the graph). */
  specIn?: string;
  realIn?: string;
  imagIn?: string;
  specOut?: string;
  realOut?: string;
  imagOut?: string;
  waveOut: string;
  stems: number;
  /** The batch size when the export fixes it (sevagh's exports have batch 1). */
  fixedBatch: number | undefined;
}

const dimOk = (d: number | string | undefined, want: number): boolean => typeof d !== 'number' || d < 0 || d === want;

/**
 * Below this much machine memory, HTDemucs's CPU sessions of two or more threads plan without ORT's static buffer
 * reuse; at or above it they keep ORT's sequential plan. 16 GiB holds a serve/worker's concurrent heavy jobs (up to 4
 * in the large preset) at the sequential plan's ≈ 2.6 GB each with room to spare.
 */
export const HTDEMUCS_LEAN_BELOW_BYTES = 16 * 2 ** 30;

/**
 * HTDemucs's CPU memory settings unless its caller chose them: a trade of memory against time, chosen by the
 * machine's memory. The graph is a U-Net, so with ORT's buffer reuse the first encoder's temporaries stay allocated
 * until the last decoder layer needs buffers of their size: a full-size segment holds 2.06 GB of tensors where 0.77 GB
 * are live (peak RSS 2.55 GB). Without reuse ({@link SessionMemory.planReuse}, with the arena) the peak is 1.29–1.33
 * GB, but ORT's parallel executor that turns reuse off spends one thread waiting, so only threads − 1 compute: on the
 * quiet 2-core machine two threads took 29.3 s for a 30 s track against 20.3 s with the sequential plan (one thread:
 * 33.9 s). So machines below {@link HTDEMUCS_LEAN_BELOW_BYTES} run lean from two threads on, larger ones fast; one
 * thread always keeps the sequential plan (the waiting thread would make a cap of one two busy cores).
 */
export function htdemucsSessionOptions(session: SessionOptions, totalMemory = os.totalmem()): SessionOptions {
  if (session.memory || session.threads < 2 || totalMemory >= HTDEMUCS_LEAN_BELOW_BYTES) return session;
  return { ...session, memory: { cpuArena: true, memPattern: false, planReuse: false } };
}

function badContract(path: string, why: string): DataError {
  return new DataError(`${path} does not have an HTDemucs export contract: ${why}`, {
    code: 'E_MODEL_CONTRACT',
    hint: 'use an export from StemSplit/demucs-onnx, sevagh/demucs.onnx or `unblend export-onnx` (model-io.md §1.3)',
  });
}

/**
 * Binds the inputs/outputs of an HTDemucs session (contract A by rank/shape, contract B by its documented names).
 * @throws DataError (65) when the session matches neither contract.
 */
export function bindHtdemucs(inputs: readonly ValueInfo[], outputs: readonly ValueInfo[], path: string, metadataStems?: number): HtBinding {
  const byName = (list: readonly ValueInfo[], n: string): ValueInfo | undefined => list.find((v) => v.name === n);
  const checkAudio = (v: ValueInfo): void => {
    if (v.shape.length !== 3 || !dimOk(v.shape[1], 2) || !dimOk(v.shape[2], HT.segment)) {
      throw badContract(path, `waveform input ${v.name} has shape [${v.shape.join(',')}], expected [B,2,${HT.segment}]`);
    }
  };
  const fixed = (v: ValueInfo): number | undefined => (typeof v.shape[0] === 'number' && v.shape[0] > 0 ? v.shape[0] : undefined);
  const stemsOf = (v: ValueInfo): number => {
    const s = v.shape[1];
    if (typeof s === 'number' && s > 0) return s;
    if (metadataStems) return metadataStems;
    throw badContract(path, `the number of stems (dim 1 of ${v.name}) is not fixed and no \`sources\` metadata says it`);
  };

  // Every HTDemucs export is float32 in and out (fp16 exports keep fp32 I/O); an int64 input means another model.
  for (const v of [...inputs, ...outputs]) {
    if (v.type !== undefined && v.type !== 'float32') throw badContract(path, `${v.name} is ${v.type}, expected float32`);
  }

  // Contract D: one waveform in, one waveform per stem out (the STFT/iSTFT are inside the graph).
  if (inputs.length === 1 && outputs.length === 1 && inputs[0]!.shape.length === 3) {
    const mix = inputs[0]!;
    const out = outputs[0]!;
    checkAudio(mix);
    if (out.shape.length !== 4 || !dimOk(out.shape[2], 2) || !dimOk(out.shape[3], HT.segment)) {
      throw badContract(path, `output ${out.name} has shape [${out.shape.join(',')}], expected [B,S,2,${HT.segment}]`);
    }
    return { contract: 'D', audioIn: mix.name, waveOut: out.name, stems: stemsOf(out), fixedBatch: fixed(mix) };
  }

  const real = byName(inputs, 'spec_real');
  const imag = byName(inputs, 'spec_imag');
  const audioB = byName(inputs, 'audio');
  if (real && imag && audioB) {
    const oReal = byName(outputs, 'out_spec_real');
    const oImag = byName(outputs, 'out_spec_imag');
    const oWave = byName(outputs, 'out_wave');
    if (!oReal || !oImag || !oWave) throw badContract(path, 'inputs spec_real/spec_imag/audio without outputs out_spec_real/out_spec_imag/out_wave');
    checkAudio(audioB);
    for (const v of [real, imag]) {
      if (v.shape.length !== 4 || !dimOk(v.shape[1], 2) || !dimOk(v.shape[2], HT.bins) || !dimOk(v.shape[3], HT.frames)) {
        throw badContract(path, `${v.name} has shape [${v.shape.join(',')}], expected [B,2,${HT.bins},${HT.frames}]`);
      }
    }
    return { contract: 'B', audioIn: 'audio', realIn: 'spec_real', imagIn: 'spec_imag', realOut: 'out_spec_real', imagOut: 'out_spec_imag', waveOut: 'out_wave', stems: stemsOf(oWave), fixedBatch: fixed(audioB) };
  }

  if (inputs.length !== 2 || outputs.length !== 2) throw badContract(path, `expected 2 inputs and 2 outputs, found ${inputs.length} and ${outputs.length}`);
  const audio = inputs.find((v) => v.shape.length === 3);
  const spec = inputs.find((v) => v.shape.length === 4);
  const specOut = outputs.find((v) => v.shape.length === 5);
  const waveOut = outputs.find((v) => v.shape.length === 4);
  if (!audio || !spec || !specOut || !waveOut) {
    throw badContract(path, `inputs ${inputs.map((v) => `${v.name}[${v.shape.join(',')}]`).join(' ')}; outputs ${outputs.map((v) => `${v.name}[${v.shape.join(',')}]`).join(' ')}`);
  }
  checkAudio(audio);
  if (spec.shape[1] === HT.frames && spec.shape[3] === HT.bins) {
    throw badContract(path, `${spec.name} is frames-first [B,336,4,2048]; only the [B,4,2048,336] layout is supported`);
  }
  if (!dimOk(spec.shape[1], 4) || !dimOk(spec.shape[2], HT.bins) || !dimOk(spec.shape[3], HT.frames)) {
    throw badContract(path, `${spec.name} has shape [${spec.shape.join(',')}], expected [B,4,${HT.bins},${HT.frames}]`);
  }
  if (!dimOk(specOut.shape[2], 4) || !dimOk(specOut.shape[3], HT.bins) || !dimOk(specOut.shape[4], HT.frames)) {
    throw badContract(path, `${specOut.name} has shape [${specOut.shape.join(',')}], expected [B,S,4,${HT.bins},${HT.frames}]`);
  }
  if (!dimOk(waveOut.shape[2], 2) || !dimOk(waveOut.shape[3], HT.segment)) {
    throw badContract(path, `${waveOut.name} has shape [${waveOut.shape.join(',')}], expected [B,S,2,${HT.segment}]`);
  }
  return { contract: 'A', audioIn: audio.name, specIn: spec.name, specOut: specOut.name, waveOut: waveOut.name, stems: stemsOf(waveOut), fixedBatch: fixed(audio) };
}

const WINDOW = hannPeriodic(HT.nFft);
// float32 FFT (WASM SIMD once loaded): the spectrogram tensors are float32, and the parity bars hold (fft-simd.test.ts).
const STFT_OPTS = { nFft: HT.nFft, hop: HT.hop, window: WINDOW, center: true, normalized: true, precision: 'float32' } as const;

/** Reflect padding (edge not repeated, like torch/numpy 'reflect') with different left/right amounts. */
export function reflectPadAsym(x: Float32Array, left: number, right: number): Float32Array {
  const n = x.length;
  const out = new Float32Array(n + left + right);
  out.set(x, left);
  const period = 2 * (n - 1);
  const idx = (i: number): number => {
    let j = i % period;
    if (j < 0) j += period;
    return j < n ? j : period - j;
  };
  for (let i = 0; i < left; i++) out[i] = x[idx(i - left)]!;
  for (let i = 0; i < right; i++) out[left + n + i] = x[idx(n + i)]!;
  return out;
}

/**
 * Forward DSP of one channel of one segment (§1.4 forward): reflect-pad 1536 | 1620, normalised centred STFT,
 * keep bins 0..2047 and frames 2..337. Returns the spectrogram as written into the model tensor.
 */
export function segmentSpectrogram(x: Float32Array): Spectrogram {
  const le = Math.ceil(HT.segment / HT.hop);
  const padded = reflectPadAsym(x, HT.pad, HT.pad + le * HT.hop - x.length);
  return stft(padded, STFT_OPTS);
}

/** One loaded sub-model: its session, binding and the segment runner. */
interface SubModel {
  session: ModelSession;
  binding: HtBinding;
}

function makeRunner(sub: SubModel, stemsNeeded: readonly number[], timing: { seconds: number }, signal: AbortSignal | undefined) {
  const { binding, session } = sub;
  const S = binding.stems;
  const L = HT.segment;
  const FT = HT.bins * HT.frames;
  // Model inputs, reused from call to call (sized for the largest batch seen): the STFT writes straight into them.
  let audioBuf = new Float32Array(0);
  let specBuf = new Float32Array(0);
  let specBuf2 = new Float32Array(0);
  return async (segments: Float32Array[][]): Promise<Float32Array[][][]> => {
    const B = segments.length;
    if (audioBuf.length < B * 2 * L) {
      audioBuf = new Float32Array(B * 2 * L);
      if (binding.contract === 'A') specBuf = new Float32Array(B * 4 * FT);
      if (binding.contract === 'B') [specBuf, specBuf2] = [new Float32Array(B * 2 * FT), new Float32Array(B * 2 * FT)];
    }
    const audio = audioBuf.subarray(0, B * 2 * L);
    const specA = binding.contract === 'A' ? specBuf.subarray(0, B * 4 * FT) : undefined;
    const specR = binding.contract === 'B' ? specBuf.subarray(0, B * 2 * FT) : undefined;
    const specI = binding.contract === 'B' ? specBuf2.subarray(0, B * 2 * FT) : undefined;
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < 2; c++) {
        const x = segments[b]![c]!;
        audio.set(x, (b * 2 + c) * L);
        if (binding.contract === 'D') continue;
        // CaC channel index 2·c + k (k = 0 real, 1 imaginary), §1.3.
        if (specA) segmentSpectrogramInto(x, specA, (b * 4 + 2 * c) * FT, specA, (b * 4 + 2 * c + 1) * FT);
        else segmentSpectrogramInto(x, specR!, (b * 2 + c) * FT, specI!, (b * 2 + c) * FT);
      }
    }
    throwIfAborted(signal);
    const feeds =
      binding.contract === 'D'
        ? { [binding.audioIn]: { data: audio, dims: [B, 2, L] } }
        : binding.contract === 'A'
        ? { [binding.audioIn]: { data: audio, dims: [B, 2, L] }, [binding.specIn!]: { data: specA!, dims: [B, 4, HT.bins, HT.frames] } }
        : {
            [binding.audioIn]: { data: audio, dims: [B, 2, L] },
            [binding.realIn!]: { data: specR!, dims: [B, 2, HT.bins, HT.frames] },
            [binding.imagIn!]: { data: specI!, dims: [B, 2, HT.bins, HT.frames] },
          };
    const t0 = performance.now();
    const res = await session.run(feeds);
    timing.seconds += (performance.now() - t0) / 1000;
    const wave = res[binding.waveOut]!.data;
    // A model whose symbolic dimensions hide another shape must fail here, not write misaligned stems.
    if (!(wave instanceof Float32Array) || wave.length !== B * S * 2 * L) {
      throw new DataError(`the model returned ${res[binding.waveOut]!.dims.join('×')} for ${binding.waveOut}, expected ${[B, S, 2, L].join('×')}`, {
        code: 'E_MODEL_CONTRACT',
        hint: 'this is not an HTDemucs export with the contract its shapes declare (model-io.md §1.3)',
      });
    }
    const outs: Float32Array[][][] = [];
    for (let b = 0; b < B; b++) {
      // Only the stems asked for, in the order of `stemsNeeded`.
      const perStem: Float32Array[][] = stemsNeeded.map(() => [new Float32Array(0), new Float32Array(0)]);
      for (const [j, s] of stemsNeeded.entries()) {
        for (let c = 0; c < 2; c++) {
          // The time branch out_wave[s] (a view: the runtime's output is ours, and the overlap-add reads it before the
          // next call); the spectral branch is added onto it below.
          perStem[j]![c] = wave.subarray(((b * S + s) * 2 + c) * L, ((b * S + s) * 2 + c + 1) * L);
        }
      }
      outs.push(perStem);
    }
    if (binding.contract === 'D') return outs; // the graph already summed both branches
    const specNames = binding.contract === 'A' ? [binding.specOut!] : [binding.realOut!, binding.imagOut!];
    const specLen = B * S * (binding.contract === 'A' ? 4 : 2) * FT;
    for (const n of specNames) {
      const t = res[n]!;
      if (!(t.data instanceof Float32Array) || t.data.length !== specLen) {
        throw new DataError(`the model returned ${t.dims.join('×')} for ${n}, expected ${specLen} float32 values`, {
          code: 'E_MODEL_CONTRACT',
          hint: 'this is not an HTDemucs export with the contract its shapes declare (model-io.md §1.3)',
        });
      }
    }
    // Spectral branch, per stem and channel: iSTFT added onto the time branch.
    for (let b = 0; b < B; b++) {
      for (const [j, s] of stemsNeeded.entries()) {
        for (let c = 0; c < 2; c++) {
          const y = outs[b]![j]![c]!;
          if (binding.contract === 'A') {
            const spec = res[binding.specOut!]!.data as Float32Array;
            const base = ((b * S + s) * 4 + 2 * c) * FT;
            segmentInverseSplit(spec, base, spec, base + FT, y);
          } else {
            const re = res[binding.realOut!]!.data as Float32Array;
            const im = res[binding.imagOut!]!.data as Float32Array;
            const base = ((b * S + s) * 2 + c) * FT;
            segmentInverseSplit(re, base, im, base, y);
          }
        }
      }
    }
    return outs;
  };
}

/**
 * Inverse DSP of one channel of one stem (§1.4 inverse): the model's bins 0..2047 × frames 0..335 (real and
 * imaginary planes at the given offsets) → a 2049 × 340 spectrogram whose Nyquist bin and frames 0, 1, 338, 339
 * are zero → normalised iSTFT of length 347136 → crop [1536, 1536+L), added into `out`. Computed in place: only
 * the wanted samples, with no padded spectrogram or full-length signal allocated.
 */
export function segmentInverseSplit(re: Float32Array, reOffset: number, im: Float32Array, imOffset: number, out: Float32Array): void {
  istftInto(
    { re, im, reOffset, imOffset, stride: HT.frames },
    STFT_OPTS,
    { totalFrames: HT.frames + 4, firstFrame: 2, frames: HT.frames, bins: HT.bins, start: HT.pad, length: HT.segment, add: true },
    out,
  );
}

/**
 * {@link segmentSpectrogram} written straight into the model's input planes ([2048][336] real and imaginary at the
 * given offsets): the padding is read, not copied, and no spectrogram is allocated.
 */
export function segmentSpectrogramInto(x: Float32Array, re: Float32Array, reOffset: number, im: Float32Array, imOffset: number): void {
  const le = Math.ceil(HT.segment / HT.hop);
  stftInto(
    x,
    STFT_OPTS,
    { padLeft: HT.pad, padRight: HT.pad + le * HT.hop - x.length, firstFrame: 2, frames: HT.frames, bins: HT.bins },
    { re, im, reOffset, imOffset, stride: HT.frames },
  );
}

export interface HtdemucsModelOptions {
  id: string;
  /** One file per sub-model (one for htdemucs / htdemucs_6s, four for htdemucs_ft). */
  files: readonly string[];
  /** Bag weights [subModel][stem]; default identity-free: every sub-model weight 1 for every stem. */
  bagWeights?: readonly (readonly number[])[];
  /** Stem names when the file has no `sources` metadata (registry params.sources). */
  sources?: readonly string[];
  /** Load only the sub-models that contribute to these stems (a bag's other files are never opened). */
  onlyStems?: readonly string[];
  session: SessionOptions;
  /** Creates a session (injected so tests and the engine share runtime/onnx.ts's createSession). */
  createSession(path: string, opts: SessionOptions): Promise<ModelSession>;
}

/**
 * Loads an HTDemucs model (single file or bag).
 * @throws DataError (65) when a file does not match an export contract or the sub-models disagree.
 */
export async function createHtdemucsModel(opts: HtdemucsModelOptions): Promise<StemModel> {
  await loadSimdFft();
  const subs: Array<SubModel | undefined> = [];
  let names: string[] | undefined;
  // With known stem names and bag weights, a sub-model is needed only if it weighs on a wanted stem.
  const needed = (i: number): boolean => {
    if (!opts.onlyStems || !opts.sources || !opts.bagWeights) return true;
    return opts.onlyStems.some((s) => {
      const k = opts.sources!.indexOf(s);
      return k < 0 || (opts.bagWeights![i]?.[k] ?? 1) !== 0;
    });
  };
  const loaded = (): SubModel[] => subs.filter((s): s is SubModel => s !== undefined);
  try {
    for (const [i, file] of opts.files.entries()) {
      if (!needed(i)) {
        subs.push(undefined);
        continue;
      }
      const meta = await readOnnxMetadata(file);
      let metaSources: string[] | undefined;
      if (meta['sources']) {
        try {
          const parsed = JSON.parse(meta['sources']) as unknown;
          if (Array.isArray(parsed) && parsed.every((s) => typeof s === 'string')) metaSources = parsed as string[];
        } catch {
          // A malformed `sources` entry is ignored; the stem count still comes from the output shape.
        }
      }
      if (meta['sample_rate'] && Number(meta['sample_rate']) !== HT.sampleRate) {
        throw badContract(file, `metadata sample_rate is ${meta['sample_rate']}, expected ${HT.sampleRate}`);
      }
      const session = await opts.createSession(file, htdemucsSessionOptions(opts.session));
      subs.push({ session, binding: bindHtdemucs(session.inputs, session.outputs, file, metaSources?.length) });
      const S = subs[subs.length - 1]!.binding.stems;
      if (opts.sources && !metaSources && opts.sources.length !== S) {
        throw badContract(file, `it outputs ${S} stem${S === 1 ? '' : 's'}; ${opts.id} has ${opts.sources.length} (${opts.sources.join(', ')})`);
      }
      const these = metaSources ?? (opts.sources && opts.sources.length === S ? [...opts.sources] : S === 6 ? DEFAULT_SOURCES_6 : S === 4 ? DEFAULT_SOURCES_4 : Array.from({ length: S }, (_, i) => `stem${i + 1}`));
      if (these.length !== S) throw badContract(file, `metadata lists ${these.length} sources but the model outputs ${S} stems`);
      if (names && names.join() !== these.join()) throw badContract(file, `its stems (${these.join(', ')}) differ from the first sub-model's (${names.join(', ')})`);
      names = these;
    }
  } catch (e) {
    await Promise.all(loaded().map((s) => s.session.dispose()));
    throw e;
  }
  const stems = names!;
  const weights = opts.bagWeights ?? subs.map(() => stems.map(() => 1));
  if (weights.length !== subs.length || weights.some((w) => w.length !== stems.length)) {
    await Promise.all(loaded().map((s) => s.session.dispose()));
    throw new DataError(`bag weights of ${opts.id} do not match ${subs.length} sub-models × ${stems.length} stems`, { code: 'E_MODEL_CONTRACT', hint: 'check the registry entry' });
  }
  const first = loaded()[0]!.session;

  return {
    id: opts.id,
    stems,
    sampleRate: HT.sampleRate,
    channels: 2,
    provider: first.provider,
    threads: first.threads,
    needsTrackStats: true,
    createStream: (so) => createHtStream(subs, stems, weights, so),
    async dispose() {
      await Promise.all(loaded().map((s) => s.session.dispose()));
    },
  };
}

interface Lane {
  sub: number;
  ola: OlaStream;
  /** True when the stream denormalises its output itself (every stem it produces comes from it alone, weight 1). */
  denormalised: boolean;
  /** Positions j (into the wanted stems) this lane produces: those its sub-model has a non-zero weight for. */
  produces: number[];
  /** Queued output per produced stem, keyed by j. */
  queues: Map<number, PlanarQueue>;
}

function createHtStream(subs: Array<SubModel | undefined>, stems: readonly string[], weights: readonly (readonly number[])[], so: StemStreamOptions): StemStream {
  const wanted = (so.wantedStems ?? stems).filter((s) => stems.includes(s));
  const stemIdx = wanted.map((s) => stems.indexOf(s));
  const shifts = Math.max(0, Math.floor(so.shifts ?? 0));
  const rng = createRng(so.seed ?? 0);
  const overlap = so.overlap ?? 0.25;
  const stride = Math.max(1, Math.floor((1 - overlap) * HT.segment));
  const tri = triangleWeight(HT.segment);
  const timing = { seconds: 0 };
  const mu = so.trackStats?.mean ?? 0;
  const scale = (so.trackStats?.std ?? 1) + 1e-8;

  // Sub-models that contribute to a wanted stem (a one-hot bag runs only those, §1.5 step 4).
  const lanes: Lane[] = [];
  for (let i = 0; i < subs.length; i++) {
    if (!stemIdx.some((k) => weights[i]![k] !== 0)) continue;
    const sub = subs[i];
    if (!sub) throw new InternalError(`sub-model ${i} is needed for ${wanted.join(', ')} but was not loaded`);
    const rounds = shifts === 0 ? [0] : Array.from({ length: shifts }, () => HT.maxShift - Math.floor(rng() * (HT.maxShift + 1)));
    for (const pad of rounds) {
      // With shifts, round r separates [zeros(max_shift − offset) | track] and keeps its output from max_shift − offset (§1.5 step 2).
      const layout: SegmentLayout = {
        segment: HT.segment,
        step: stride,
        leftPad: pad,
        rightPad: () => 0,
        align: 'centred',
        weight: (len) => tri.subarray(0, len),
        dropFront: pad,
      };
      // Only the stems this sub-model weighs on get the (costly) iSTFT: one per stem for htdemucs_ft.
      const produces = stemIdx.flatMap((k, j) => (weights[i]![k] !== 0 ? [j] : []));
      const runner = makeRunner(sub, produces.map((j) => stemIdx[j]!), timing, so.signal);
      // A stem made by this lane alone with weight 1 is denormalised in the overlap-add's release: combine()'s
      // formula (fround(1·x)/1)·σ + μ is then exactly fround(x)·σ + μ, and the result is traversed once less.
      const alone = rounds.length === 1 && produces.every((j) => weights[i]![stemIdx[j]!] === 1 && weights.every((w, i2) => i2 === i || w[stemIdx[j]!] === 0));
      const post = alone ? { scale, offset: mu } : undefined;
      const ola = new OlaStream(layout, 2, produces.length, runner, sub.binding.fixedBatch ?? Math.max(1, so.batchSize ?? 1), post);
      lanes.push({ sub: i, ola, produces, denormalised: alone, queues: new Map(produces.map((j) => [j, new PlanarQueue(2)])) });
    }
  }
  const collect = (lane: Lane, out: Float32Array[][]): void => {
    lane.produces.forEach((j, li) => lane.queues.get(j)!.push(out[li]!));
  };

  const combine = (): StemBlocks => {
    if (lanes.length === 0) return {};
    // All queues of a lane have the same length; release what every lane has produced.
    const n = Math.min(...lanes.map((l) => l.queues.get(l.produces[0]!)!.length));
    const result: StemBlocks = {};
    stemIdx.forEach((k, j) => {
      const parts: Array<{ part: Float32Array[]; rw: number; done: boolean }> = [];
      let total = 0;
      for (let i = 0; i < subs.length; i++) {
        const w = weights[i]![k]!;
        if (w === 0) continue;
        total += w;
        const sublanes = lanes.filter((l) => l.sub === i);
        const rw = w / sublanes.length;
        for (const l of sublanes) parts.push({ part: l.queues.get(j)!.shift(n), rw, done: l.denormalised });
      }
      // Denormalise (§1.5 step 5): stems·(σ + 1e-8) + μ. One contribution (no bag, no shifts): in place in the
      // queue's fresh copy, with the same float32 rounding as the weighted sum below, unless its overlap-add did.
      const only = parts.length === 1 ? parts[0]! : undefined;
      const acc = only ? only.part : [new Float32Array(n), new Float32Array(n)];
      if (only) {
        if (!only.done) for (const a of acc) for (let t = 0; t < n; t++) a[t] = (Math.fround(only.rw * a[t]!) / total) * scale + mu;
      } else {
        for (const { part, rw } of parts) for (let c = 0; c < 2; c++) for (let t = 0; t < n; t++) acc[c]![t] = acc[c]![t]! + rw * part[c]![t]!;
        for (let c = 0; c < 2; c++) for (let t = 0; t < n; t++) acc[c]![t] = (acc[c]![t]! / total) * scale + mu;
      }
      result[stems[k]!] = { channels: acc, sampleRate: HT.sampleRate };
    });
    // Lanes of stems nobody asked for are not kept: their queues were never filled.
    return result;
  };

  /** The one lane, when it denormalises its own output: its fresh blocks are the result, with no queue between. */
  const direct = lanes.length === 1 && lanes[0]!.denormalised ? lanes[0]! : undefined;
  const finish = (lane: Lane, out: Float32Array[][]): StemBlocks => {
    progress();
    const result: StemBlocks = {};
    lane.produces.forEach((j, li) => {
      result[stems[stemIdx[j]!]!] = { channels: out[li]!, sampleRate: HT.sampleRate };
    });
    return result;
  };

  const progress = (): void => {
    if (lanes.length > 0) so.onInferProgress?.(Math.min(...lanes.map((l) => l.ola.doneFrames)));
  };

  return {
    get inferSeconds() {
      return timing.seconds;
    },
    async push(block: RawAudio): Promise<StemBlocks> {
      throwIfAborted(so.signal);
      // Track normalisation (§1.5 step 1): (wav − μ)/(σ + 1e-8) with the whole-track statistics of the first pass.
      const norm = block.channels.map((ch) => {
        const o = new Float32Array(ch.length);
        for (let i = 0; i < ch.length; i++) o[i] = (ch[i]! - mu) / scale;
        return o;
      });
      if (direct) return finish(direct, await direct.ola.push(norm));
      for (const lane of lanes) collect(lane, await lane.ola.push(norm));
      progress();
      return combine();
    },
    async flush(): Promise<StemBlocks> {
      if (direct) return finish(direct, await direct.ola.flush());
      for (const lane of lanes) collect(lane, await lane.ola.flush());
      progress();
      return combine();
    },
  };
}
