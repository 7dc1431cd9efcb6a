/**
 * Speech-enhancement adapters (16 kHz mono, frame by frame with recurrent state): GTCRN and DTLN.
 * Both give the stems `speech` and `noise` = input − speech, aligned sample for sample with the input.
 *
 * GTCRN (Xiaobin-Rong/gtcrn stream/): torch.stft(x, 512, 256, 512, sqrt(hann_window(512))) with
 * center=True (reflect padding), one frame [1, 257, 1, 2] (re, im last) per call with three caches fed back,
 * then the inverse with the same window. DTLN (breizhn/DTLN real_time_processing_onnx.py): block 512,
 * shift 128, no analysis window; stage 1 maps |rfft(block)| to a mask, stage 2 maps the masked block (time
 * domain) to an output block that is overlap-added.
 */
import { DataError, throwIfAborted } from '../errors.js';
import type { RawAudio } from '../audio/raw-audio.js';
import { readFile } from 'node:fs/promises';
import type { ModelSession, SessionOptions, TensorData, ValueInfo } from '../runtime/onnx.js';
import type { ScanNames } from '../onnx/scan.js';
import { loadSimdFft } from '../dsp/fft-simd.js';
import { getRealFFT, steadyStateEnvelope } from '../dsp/stft.js';
import { sqrtHannPeriodic } from '../dsp/windows.js';
import { PlanarQueue } from './chunking.js';
import type { StemBlocks, StemModel, StemStream } from './types.js';

const RATE = 16000;
const STEMS = ['speech', 'noise'] as const;

/**
 * The speech models keep ORT's own memory settings (arena and memory patterns, unlike the default): their tensors
 * are a few KB, so the arena costs no memory (same peak RSS either way, scripts/bench-memory.mjs), while without
 * them every call allocates afresh (DTLN +7–12 % CPU time measured).
 *
 * And one ORT thread whatever the budget: a step is a few hundred tiny kernels, too small to split, and the
 * threads' hand-offs only cost. A second intra-op thread made 60 s of speech slower, not faster (quiet 2-core
 * machine, medians of 3: GTCRN wall ×0.89 and +20 % CPU time, DTLN ×0.71 and +65 %).
 */
function smallModelSession(session: SessionOptions): SessionOptions {
  return { ...session, threads: 1, memory: session.memory ?? { cpuArena: true, memPattern: true } };
}

function contractError(path: string, why: string, model: string): DataError {
  return new DataError(`${path} does not match the ${model} contract: ${why}`, {
    code: 'E_MODEL_CONTRACT',
    hint: `use the upstream ${model} ONNX file (see \`stemkit models info ${model.toLowerCase()}\`)`,
  });
}

function fixedShape(v: ValueInfo, path: string, model: string): number[] {
  const dims = v.shape.map((d) => (typeof d === 'number' && d > 0 ? d : NaN));
  if (dims.some((d) => Number.isNaN(d))) throw contractError(path, `state ${v.name} has a symbolic shape [${v.shape.join(',')}]`, model);
  return dims;
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** A recurrent state: the input it feeds, the output it comes back from, and its current value. */
interface State {
  input: string;
  output: string;
  dims: number[];
  value: Float32Array;
}

/**
 * Pairs state inputs with state outputs: by name (`x` ↔ `x_out`, GTCRN's convention) when possible,
 * otherwise by position among the non-signal tensors.
 */
function bindStates(ins: readonly ValueInfo[], outs: readonly ValueInfo[], path: string, model: string): State[] {
  if (ins.length !== outs.length) throw contractError(path, `${ins.length} state inputs but ${outs.length} state outputs`, model);
  return ins.map((v, i) => {
    const out = outs.find((o) => o.name === `${v.name}_out`) ?? outs[i]!;
    const dims = fixedShape(v, path, model);
    return { input: v.name, output: out.name, dims, value: new Float32Array(product(dims)) };
  });
}

/** Keeps the input until the matching speech arrives, then returns speech and noise = input − speech. */
function speechAndNoise(mix: PlanarQueue, speech: Float32Array, wanted: readonly string[]): StemBlocks {
  const n = speech.length;
  const m = mix.shift(n)[0]!;
  const res: StemBlocks = {};
  if (wanted.includes('speech')) res['speech'] = { channels: [speech], sampleRate: RATE };
  if (wanted.includes('noise')) {
    const noise = new Float32Array(n);
    for (let i = 0; i < n; i++) noise[i] = m[i]! - speech[i]!;
    res['noise'] = { channels: [noise], sampleRate: RATE };
  }
  return res;
}

// ---------------------------------------------------------------------------------------------------------
// GTCRN

const G_N = 512;
const G_HOP = 256;
const G_BINS = G_N / 2 + 1;
/** Values per spectrum frame [1, 257, 1, 2]. */
const G_FRAME = G_BINS * 2;

export interface SpeechModelOptions {
  id: string;
  session: SessionOptions;
  createSession(path: string, opts: SessionOptions): Promise<ModelSession>;
  /**
   * 'scan' runs a block of frames per session.run through the step graph(s) wrapped in a Scan, and fails with
   * E_MODEL_CONTRACT when a graph cannot be wrapped; 'frame' runs one session.run per frame (the reference the Scan
   * path is tested against). Unset (the default): the Scan where the graphs allow it, else frame by frame.
   */
  stepping?: 'scan' | 'frame';
}

/**
 * Loads GTCRN's streaming graph (`gtcrn_simple.onnx`). The signal input is the one shaped [1, 257, 1, 2];
 * every other input is a cache whose shape is read from the session and fed back from the matching output.
 * @throws DataError (65) when the graph does not have that contract.
 */
export async function createGtcrnModel(path: string, opts: SpeechModelOptions): Promise<StemModel> {
  await loadSimdFft();
  // One session.run per block of frames instead of per 16 ms frame: the step graph wrapped in a Scan carries the
  // caches inside ORT (same kernels, same values). It is wired from the file alone, as DTLN's stages: opening the
  // plain graph first only to read its inputs cost a second session's load (≈ 3 % of a minute of speech's CPU time).
  const scan = opts.stepping === 'frame' ? undefined : await gtcrnScan(path, smallModelSession(opts.session));
  if (scan) return gtcrnModel(opts.id, path, scan.session, scan.io, (states, signal) => scanStepper(scan.session, scan.names, states, signal.dims));
  // Frame by frame (asked for, or a graph that cannot be wrapped): the plain session, which also names what is wrong
  // with a file that is not GTCRN.
  const session = await opts.createSession(path, smallModelSession(opts.session));
  try {
    const io = gtcrnIO(session, path);
    if (opts.stepping === 'scan') throw contractError(path, 'its step graph cannot be wrapped in a Scan', 'GTCRN');
    return gtcrnModel(opts.id, path, session, io, (states, signal) => frameStepper(session, signal, states));
  } catch (e) {
    await session.dispose();
    throw e;
  }
}

/** GTCRN's signal (the [1,257,1,2] spectrum frame in and out) and its caches (every other input and output). */
interface GtcrnIO {
  signal: StepSignal;
  stateIns: readonly ValueInfo[];
  stateOuts: readonly ValueInfo[];
}

function gtcrnIO(io: GraphIO, path: string): GtcrnIO {
  const isFrame = (v: ValueInfo): boolean => v.shape.length === 4 && v.shape[1] === G_BINS && v.shape[3] === 2;
  const mixIn = io.inputs.find(isFrame);
  const enhOut = io.outputs.find(isFrame);
  if (!mixIn || !enhOut) throw contractError(path, 'no [1,257,1,2] spectrum frame input/output', 'GTCRN');
  const res = { signal: { input: mixIn.name, output: enhOut.name, dims: [1, G_BINS, 1, 2] }, stateIns: io.inputs.filter((v) => v !== mixIn), stateOuts: io.outputs.filter((v) => v !== enhOut) };
  bindStates(res.stateIns, res.stateOuts, path, 'GTCRN');
  return res;
}

/** The step graph wrapped in a Scan, wired from the file; undefined when it cannot be (the frame path says why). */
async function gtcrnScan(path: string, session: SessionOptions): Promise<{ session: ModelSession; names: ScanNames; io: GtcrnIO } | undefined> {
  try {
    const { graphSignature } = await import('../onnx/scan.js');
    const bytes = await readFile(path);
    const io = gtcrnIO(graphSignature(bytes), path);
    const scan = await scanSession(bytes, io.signal, bindStates(io.stateIns, io.stateOuts, path, 'GTCRN'), session);
    return scan && { ...scan, io };
  } catch {
    return undefined;
  }
}

function gtcrnModel(id: string, path: string, run: ModelSession, io: GtcrnIO, stepper: (states: State[], signal: StepSignal) => Stepper): StemModel {
  return {
    id,
    stems: [...STEMS],
    sampleRate: RATE,
    channels: 1,
    provider: run.provider,
    threads: run.threads,
    needsTrackStats: false,
    createStream(so) {
      const step = stepper(bindStates(io.stateIns, io.stateOuts, path, 'GTCRN'), io.signal);
      return new GtcrnStream(step, so.wantedStems ?? STEMS, so.signal, so.onInferProgress);
    },
    async dispose() {
      await run.dispose();
    },
  };
}

/**
 * Advances a recurrent model by `frames` steps: `input` holds the step inputs back to back, the result the step
 * outputs back to back (same size per step); the states are carried from call to call.
 */
type Stepper = (input: Float32Array, frames: number) => Promise<Float32Array>;

/** A step graph's signal tensors and the dims of one step (without the Scan's leading `steps` axis). */
interface StepSignal {
  input: string;
  output: string;
  dims: readonly number[];
}

/**
 * Wraps the step graph (a file or its bytes) in a Scan (src/onnx/scan.ts) and opens it; undefined when the graph cannot be
 * wrapped or the wrapped graph does not load (the caller then runs it frame by frame).
 */
async function scanSession(model: string | Uint8Array, signal: StepSignal, states: readonly State[], session: SessionOptions): Promise<{ session: ModelSession; names: ScanNames } | undefined> {
  let wrapped: { model: Uint8Array; names: ScanNames };
  try {
    const { wrapInScan } = await import('../onnx/scan.js');
    wrapped = wrapInScan(typeof model === 'string' ? await readFile(model) : model, { states: states.map((st) => ({ input: st.input, output: st.output })), stepInput: signal.input, stepOutput: signal.output });
  } catch {
    return undefined; // not a plain step graph: per-frame runs
  }
  const { createSession } = await import('../runtime/onnx.js');
  try {
    return { session: await createSession(wrapped.model, session), names: wrapped.names };
  } catch {
    return undefined;
  }
}

function scanStepper(session: ModelSession, names: ScanNames, states: State[], dims: readonly number[]): Stepper {
  const size = product(dims);
  return async (input, frames) => {
    const feeds: Record<string, TensorData> = { [names.stepsInput]: { data: input.subarray(0, frames * size), dims: [frames, ...dims] } };
    states.forEach((st, i) => (feeds[names.states[i]!.input] = { data: st.value, dims: st.dims }));
    const out = await session.run(feeds);
    states.forEach((st, i) => (st.value = out[names.states[i]!.output]!.data as Float32Array));
    return out[names.stepsOutput]!.data as Float32Array;
  };
}

function frameStepper(session: ModelSession, signal: StepSignal, states: State[]): Stepper {
  const size = product(signal.dims);
  const dims = [...signal.dims];
  let outputs = new Float32Array(0);
  return async (input, frames) => {
    if (outputs.length < frames * size) outputs = new Float32Array(frames * size);
    for (let f = 0; f < frames; f++) {
      const feeds: Record<string, TensorData> = { [signal.input]: { data: input.subarray(f * size, (f + 1) * size), dims } };
      for (const st of states) feeds[st.input] = { data: st.value, dims: st.dims };
      const out = await session.run(feeds);
      for (const st of states) st.value = out[st.output]!.data as Float32Array;
      outputs.set(out[signal.output]!.data as Float32Array, f * size);
    }
    return outputs;
  };
}

class GtcrnStream implements StemStream {
  inferSeconds = 0;
  private readonly window = sqrtHannPeriodic(G_N);
  private readonly env = steadyStateEnvelope(this.window, G_HOP);
  // float32 FFT (WASM SIMD once loaded): the model's spectrum frames are float32.
  private readonly fft = getRealFFT(G_N, 'float32');
  /** The reflect-padded signal: padded position p = original position + 256. */
  private readonly padded = new PlanarQueue(1, 1 << 14);
  /** The first samples, held until the 256-sample reflect prefix can be built. */
  private head: Float32Array[] = [];
  private headLen = 0;
  private started = false;
  private readonly mix = new PlanarQueue(1, 1 << 14);
  /** Overlap-add buffer in original positions, from `olaBase`. */
  private ola = new Float64Array(4 * G_N);
  private olaBase = -G_HOP;
  private released = 0;
  private nextFrame = 0;
  private total = 0;
  private readonly re = new Float64Array(G_BINS);
  private readonly im = new Float64Array(G_BINS);
  /** Spectrum frames of one model call, [frames, 1, 257, 1, 2]; grows to the largest batch. */
  private framesIn = new Float32Array(0);

  constructor(
    private readonly step: Stepper,
    private readonly wanted: readonly string[],
    private readonly signal: AbortSignal | undefined,
    private readonly onProgress: ((frames: number) => void) | undefined,
  ) {}

  private start(): void {
    const x = concat(this.head, this.headLen);
    this.head = [];
    const pre = new Float32Array(G_HOP);
    // Reflect (x[256], …, x[1]) like torch's center padding; inputs shorter than 257 samples get zeros instead.
    if (x.length > G_HOP) for (let i = 0; i < G_HOP; i++) pre[i] = x[G_HOP - i]!;
    this.padded.push([pre]);
    this.padded.push([x]);
    this.started = true;
  }

  async push(block: RawAudio): Promise<StemBlocks> {
    throwIfAborted(this.signal);
    const x = block.channels[0]!;
    this.total += x.length;
    this.mix.push([x]);
    if (!this.started) {
      this.head.push(x);
      this.headLen += x.length;
      if (this.headLen <= G_HOP) return {};
      this.start();
    } else this.padded.push([x]);
    // Frame f reads padded [f·256, f·256 + 512).
    await this.frames(Math.floor((this.padded.end - G_N) / G_HOP) + 1);
    return this.release(false);
  }

  async flush(): Promise<StemBlocks> {
    if (!this.started) this.start();
    const n = this.total;
    // Reflect suffix (x[N−2], …) for the centred last frames, then zeros for the extra frame that covers the tail.
    const tail = new Float32Array(G_HOP);
    if (n > G_HOP) {
      const last = new Float32Array(G_HOP + 1);
      this.padded.copyTo(G_HOP + n - (G_HOP + 1), G_HOP + 1, [last]);
      for (let i = 0; i < G_HOP; i++) tail[i] = last[G_HOP - 1 - i]!;
    }
    this.padded.push([tail]);
    // Frames up to ⌊(N−1)/256⌋ + 1, so every output sample lies under two frames (full window-square envelope).
    const frames = n === 0 ? 0 : Math.floor((n - 1) / G_HOP) + 2;
    this.padded.pushZeros(Math.max(0, (frames - 1) * G_HOP + G_N - this.padded.end));
    await this.frames(frames);
    return this.release(true);
  }

  /** Runs frames nextFrame..upTo−1 in one model call (in chunks of at most 1024 frames, ~16 s of audio). */
  private async frames(upTo: number): Promise<void> {
    while (this.nextFrame < upTo) {
      const first = this.nextFrame;
      const n = Math.min(upTo - first, 1024);
      if (this.framesIn.length < n * G_FRAME) this.framesIn = new Float32Array(n * G_FRAME);
      const frame = new Float32Array(G_N);
      for (let i = 0; i < n; i++) {
        this.padded.copyTo((first + i) * G_HOP, G_N, [frame]);
        this.fft.forwardWindowed(frame, 0, this.window, 1, this.re, this.im);
        // Layout [1, 257, 1, 2] per frame: bin-major, (re, im) innermost.
        const o = i * G_FRAME;
        for (let k = 0; k < G_BINS; k++) {
          this.framesIn[o + 2 * k] = this.re[k]!;
          this.framesIn[o + 2 * k + 1] = this.im[k]!;
        }
      }
      const t0 = performance.now();
      const enh = await this.step(this.framesIn, n);
      this.inferSeconds += (performance.now() - t0) / 1000;
      // Frame f covers original positions [f·256 − 256, f·256 + 256).
      const end = (first + n - 1) * G_HOP - G_HOP - this.olaBase + G_N;
      if (end > this.ola.length) {
        const bigger = new Float64Array(Math.max(this.ola.length * 2, end));
        bigger.set(this.ola);
        this.ola = bigger;
      }
      for (let i = 0; i < n; i++) {
        const o = i * G_FRAME;
        for (let k = 0; k < G_BINS; k++) {
          this.re[k] = enh[o + 2 * k]!;
          this.im[k] = enh[o + 2 * k + 1]!;
        }
        this.fft.inverseWindowedAdd(this.re, this.im, this.window, 1, this.ola, (first + i) * G_HOP - G_HOP - this.olaBase);
      }
      this.nextFrame = first + n;
      // Keep one hop more than the next frame needs: flush's reflect suffix reads the last 257 input samples.
      this.padded.discardBefore((this.nextFrame - 1) * G_HOP);
      this.onProgress?.(Math.min(this.total, Math.max(0, (this.nextFrame - 1) * G_HOP)));
    }
  }

  private release(final: boolean): StemBlocks {
    // After frame f, original samples before f·256 are final (frame f+1 starts there).
    const upTo = final ? this.total : Math.min(this.total, Math.max(0, (this.nextFrame - 1) * G_HOP));
    const n = upTo - this.released;
    if (n <= 0) return speechAndNoise(this.mix, new Float32Array(0), this.wanted);
    const speech = new Float32Array(n);
    const from = this.released - this.olaBase;
    for (let i = 0; i < n; i++) {
      const pos = this.released + i;
      // Every output sample lies under two frames, so the steady-state window-square envelope applies.
      speech[i] = this.ola[from + i]! / this.env[((pos % G_HOP) + G_HOP) % G_HOP]!;
    }
    this.released = upTo;
    const drop = upTo - this.olaBase;
    this.ola.copyWithin(0, drop);
    this.ola.fill(0, this.ola.length - drop);
    this.olaBase = upTo;
    if (final) this.onProgress?.(this.total);
    return speechAndNoise(this.mix, speech, this.wanted);
  }
}

function concat(parts: Float32Array[], n: number): Float32Array {
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// DTLN

const D_BLOCK = 512;
const D_SHIFT = 128;
const D_BINS = D_BLOCK / 2 + 1;
/** Output block idx ends at (idx+1)·shift but its first `shift` samples describe time idx·shift − 384. */
const D_DELAY = D_BLOCK - D_SHIFT;
/** Steps per model call (≈ 4 s of audio): bounds the spectra and blocks held between the two stages. */
const D_MAX_STEPS = 512;

/** One DTLN stage: its signal tensors and its one state. */
interface DtlnStage {
  signal: StepSignal;
  stateIn: ValueInfo;
  stateOut: ValueInfo;
}

/** A graph's inputs and outputs: an open session's, or read from the file (scan.ts's graphSignature). */
interface GraphIO {
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
}

function bindDtlnStage(io: GraphIO, path: string, width: number): DtlnStage {
  const isSignal = (v: ValueInfo): boolean => v.shape[v.shape.length - 1] === width;
  const sigIn = io.inputs.find(isSignal);
  const sigOut = io.outputs.find(isSignal);
  const stIn = io.inputs.find((v) => v !== sigIn);
  const stOut = io.outputs.find((v) => v !== sigOut);
  if (!sigIn || !sigOut || !stIn || !stOut || io.inputs.length !== 2 || io.outputs.length !== 2) {
    throw contractError(path, `expected a [1,1,${width}] signal and one state in and out`, 'DTLN');
  }
  fixedShape(stIn, path, 'DTLN');
  return { signal: { input: sigIn.name, output: sigOut.name, dims: [1, 1, width] }, stateIn: stIn, stateOut: stOut };
}

const dtlnStates = (st: DtlnStage, path: string): State[] => bindStates([st.stateIn], [st.stateOut], path, 'DTLN');

/** Signal widths of the two stages: the magnitude spectrum, then the time block. */
const D_WIDTHS = [D_BINS, D_BLOCK] as const;

/** A loaded DTLN: its sessions and, per stream, a stepper for each stage. */
function dtlnModel(id: string, runs: readonly ModelSession[], steppers: () => [Stepper, Stepper]): StemModel {
  return {
    id,
    stems: [...STEMS],
    sampleRate: RATE,
    channels: 1,
    provider: runs[0]!.provider,
    threads: runs[0]!.threads,
    needsTrackStats: false,
    createStream: (so) => new DtlnStream(...steppers(), so.wantedStems ?? STEMS, so.signal, so.onInferProgress),
    async dispose() {
      await Promise.all(runs.map((r) => r.dispose()));
    },
  };
}

/**
 * Loads DTLN's two stages (`model_1.onnx`: magnitude [1,1,257] + state → mask + state; `model_2.onnx`:
 * block [1,1,512] + state → block + state), binding tensors by shape.
 *
 * Stage 1 never reads stage 2's results, so each stage can advance a whole block of steps per session.run: both
 * step graphs are wrapped in a Scan (unless `stepping: 'frame'`), stage 1 runs over the block, the masking and
 * inverse FFTs run in JavaScript, then stage 2 runs over the block: two runs per block instead of two per 8 ms
 * step, with the same kernels and the same JavaScript FFTs. Graphs that cannot be wrapped run step by step.
 * @throws DataError (65) when a stage does not have that contract.
 */
export async function createDtlnModel(stage1Path: string, stage2Path: string, opts: SpeechModelOptions): Promise<StemModel> {
  await loadSimdFft();
  const sessionOpts = smallModelSession(opts.session);
  const paths = [stage1Path, stage2Path] as const;
  if (opts.stepping !== 'frame') {
    const scans = await dtlnScans(paths, sessionOpts);
    if (scans) {
      const [a, b] = scans;
      return dtlnModel(opts.id, [a.session, b.session], () => [
        scanStepper(a.session, a.names, dtlnStates(a.stage, stage1Path), a.stage.signal.dims),
        scanStepper(b.session, b.names, dtlnStates(b.stage, stage2Path), b.stage.signal.dims),
      ]);
    }
  }
  // Step by step: the plain graphs, whose sessions also report a file that is missing or not a DTLN stage.
  const s1 = await opts.createSession(stage1Path, sessionOpts);
  let s2: ModelSession | undefined;
  try {
    s2 = await opts.createSession(stage2Path, sessionOpts);
    const st1 = bindDtlnStage(s1, stage1Path, D_WIDTHS[0]);
    const st2 = bindDtlnStage(s2, stage2Path, D_WIDTHS[1]);
    if (opts.stepping === 'scan') throw contractError(stage1Path, 'its stages cannot be wrapped in a Scan', 'DTLN');
    const plain2 = s2;
    return dtlnModel(opts.id, [s1, s2], () => [frameStepper(s1, st1.signal, dtlnStates(st1, stage1Path)), frameStepper(plain2, st2.signal, dtlnStates(st2, stage2Path))]);
  } catch (e) {
    await Promise.all([s1.dispose(), s2?.dispose()]);
    throw e;
  }
}

/**
 * Opens both stages wrapped in a Scan, wired from the files alone (opening the plain graphs as well cost ≈ 13 MiB
 * of peak memory that ORT kept after disposing them); undefined when a stage cannot be wrapped or does not load.
 */
async function dtlnScans(paths: readonly [string, string], session: SessionOptions): Promise<Array<{ stage: DtlnStage; session: ModelSession; names: ScanNames }> | undefined> {
  const opened: Array<{ stage: DtlnStage; session: ModelSession; names: ScanNames }> = [];
  try {
    const { graphSignature } = await import('../onnx/scan.js');
    for (const [i, path] of paths.entries()) {
      const bytes = await readFile(path);
      const stage = bindDtlnStage(graphSignature(bytes), path, D_WIDTHS[i]!);
      const scan = await scanSession(bytes, stage.signal, dtlnStates(stage, path), session);
      if (!scan) break;
      opened.push({ stage, ...scan });
    }
  } catch {
    // Unreadable, not a model, or not a DTLN stage: the step-by-step path opens the files and says which.
  }
  if (opened.length === paths.length) return opened;
  await Promise.all(opened.map((o) => o.session.dispose()));
  return undefined;
}

class DtlnStream implements StemStream {
  inferSeconds = 0;
  // float32 FFT (WASM SIMD once loaded): the blocks and the mask are float32.
  private readonly fft = getRealFFT(D_BLOCK, 'float32');
  private readonly inBuf = new Float32Array(D_BLOCK);
  private readonly outBuf = new Float32Array(D_BLOCK);
  private readonly pending = new PlanarQueue(1, 1 << 14);
  private readonly mix = new PlanarQueue(1, 1 << 14);
  private readonly re = new Float64Array(D_BINS);
  private readonly im = new Float64Array(D_BINS);
  private readonly block = new Float64Array(D_BLOCK);
  private readonly chunk = [new Float32Array(D_SHIFT)];
  /** Per step of one model call, grown to the largest call: the spectra, stage 1's input and stage 2's input. */
  private specRe = new Float64Array(0);
  private specIm = new Float64Array(0);
  private mags = new Float32Array(0);
  private est = new Float32Array(0);
  /** Output samples produced so far (upstream's out_file index), of which the first D_DELAY are dropped. */
  private produced = 0;
  private total = 0;
  private emitted = 0;

  constructor(
    private readonly stage1: Stepper,
    private readonly stage2: Stepper,
    private readonly wanted: readonly string[],
    private readonly signal: AbortSignal | undefined,
    private readonly onProgress: ((frames: number) => void) | undefined,
  ) {}

  async push(block: RawAudio): Promise<StemBlocks> {
    throwIfAborted(this.signal);
    const x = block.channels[0]!;
    this.total += x.length;
    this.mix.push([x]);
    this.pending.push([x]);
    return this.run(false);
  }

  async flush(): Promise<StemBlocks> {
    // Enough zeros for the delayed output to reach the last input sample.
    const needed = this.total + D_DELAY;
    const fed = this.pending.end;
    const blocks = Math.ceil(needed / D_SHIFT);
    this.pending.pushZeros(blocks * D_SHIFT - fed);
    return this.run(true);
  }

  private reserve(steps: number): void {
    if (this.mags.length >= steps * D_BINS) return;
    this.specRe = new Float64Array(steps * D_BINS);
    this.specIm = new Float64Array(steps * D_BINS);
    this.mags = new Float32Array(steps * D_BINS);
    this.est = new Float32Array(steps * D_BLOCK);
  }

  private async run(final: boolean): Promise<StemBlocks> {
    // One output array per call; the input is read in place and dropped once at the end.
    const steps = Math.floor(this.pending.length / D_SHIFT);
    const out = new Float32Array(steps * D_SHIFT);
    let n = 0;
    let pos = this.pending.start;
    for (let first = 0; first < steps; first += D_MAX_STEPS) {
      const m = Math.min(D_MAX_STEPS, steps - first);
      this.reserve(m);
      for (let i = 0; i < m; i++) {
        this.pending.copyTo(pos, D_SHIFT, this.chunk);
        pos += D_SHIFT;
        this.analyse(this.chunk[0]!, i);
      }
      const t0 = performance.now();
      const masks = await this.stage1(this.mags, m);
      const t1 = performance.now();
      for (let i = 0; i < m; i++) this.masked(masks, i);
      const t2 = performance.now();
      const blocks = await this.stage2(this.est, m);
      this.inferSeconds += (t1 - t0 + performance.now() - t2) / 1000;
      for (let i = 0; i < m; i++) {
        this.overlapAdd(blocks, i * D_BLOCK);
        // Upstream's out_file index j describes input time j − 384: drop the first 384 to align.
        const skip = Math.max(0, Math.min(D_SHIFT, D_DELAY - this.produced));
        this.produced += D_SHIFT;
        const end = Math.min(D_SHIFT, skip + this.total - this.emitted);
        if (end > skip) {
          out.set(this.outBuf.subarray(skip, end), n);
          n += end - skip;
          this.emitted += end - skip;
        }
      }
      this.onProgress?.(Math.min(this.total, this.emitted));
    }
    this.pending.discardBefore(pos);
    if (final) this.onProgress?.(this.total);
    return speechAndNoise(this.mix, out.subarray(0, n), this.wanted);
  }

  /** Upstream's loop up to stage 1 for step `i` of a call: shift the block in, keep its spectrum and magnitude. */
  private analyse(chunk: Float32Array, i: number): void {
    this.inBuf.copyWithin(0, D_SHIFT);
    this.inBuf.set(chunk, D_BLOCK - D_SHIFT);
    this.fft.forward(this.inBuf, this.re, this.im);
    const o = i * D_BINS;
    for (let k = 0; k < D_BINS; k++) {
      const re = this.re[k]!;
      const im = this.im[k]!;
      this.specRe[o + k] = re;
      this.specIm[o + k] = im;
      this.mags[o + k] = Math.sqrt(re * re + im * im);
    }
  }

  /** Stage 2's input for step `i`: the time block of mask·X (= |X|·mask·e^{i∠X}, without computing the phase). */
  private masked(masks: Float32Array, i: number): void {
    const o = i * D_BINS;
    for (let k = 0; k < D_BINS; k++) {
      this.re[k] = this.specRe[o + k]! * masks[o + k]!;
      this.im[k] = this.specIm[o + k]! * masks[o + k]!;
    }
    this.fft.inverse(this.re, this.im, this.block);
    this.est.set(this.block, i * D_BLOCK);
  }

  /** Upstream's overlap-add: out_buffer[:128] afterwards is `outBuf[0, 128)`. */
  private overlapAdd(blocks: Float32Array, from: number): void {
    this.outBuf.copyWithin(0, D_SHIFT);
    this.outBuf.fill(0, D_BLOCK - D_SHIFT);
    for (let i = 0; i < D_BLOCK; i++) this.outBuf[i] = this.outBuf[i]! + blocks[from + i]!;
  }
}
