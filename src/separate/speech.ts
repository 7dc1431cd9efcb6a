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
 */
function smallModelSession(session: SessionOptions): SessionOptions {
  return { ...session, memory: session.memory ?? { cpuArena: true, memPattern: true } };
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
   * GTCRN: 'scan' (default) runs a block of frames per session.run through the step graph wrapped in a Scan;
   * 'frame' runs one session.run per frame (the reference the Scan path is tested against).
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
  const session = await opts.createSession(path, smallModelSession(opts.session));
  try {
    const isFrame = (v: ValueInfo): boolean => v.shape.length === 4 && v.shape[1] === G_BINS && v.shape[3] === 2;
    const mixIn = session.inputs.find(isFrame);
    const enhOut = session.outputs.find(isFrame);
    if (!mixIn || !enhOut) throw contractError(path, 'no [1,257,1,2] spectrum frame input/output', 'GTCRN');
    bindStates(
      session.inputs.filter((v) => v !== mixIn),
      session.outputs.filter((v) => v !== enhOut),
      path,
      'GTCRN',
    );
    const names = { mix: mixIn.name, enh: enhOut.name };
    const stateInfo = { ins: session.inputs.filter((v) => v.name !== names.mix), outs: session.outputs.filter((v) => v.name !== names.enh) };
    // One session.run per block of frames instead of per 16 ms frame: the step graph wrapped in a Scan carries the
    // caches inside ORT (same kernels, same values). A graph that cannot be wrapped runs frame by frame.
    const scan = opts.stepping === 'frame' ? undefined : await gtcrnScanSession(path, names, bindStates(stateInfo.ins, stateInfo.outs, path, 'GTCRN'), smallModelSession(opts.session));
    if (scan) await session.dispose();
    const run = scan?.session ?? session;
    return {
      id: opts.id,
      stems: [...STEMS],
      sampleRate: RATE,
      channels: 1,
      provider: run.provider,
      threads: run.threads,
      needsTrackStats: false,
      createStream(so) {
        const states = bindStates(stateInfo.ins, stateInfo.outs, path, 'GTCRN');
        const step = scan ? scanStepper(scan.session, scan.names, states) : frameStepper(session, names, states);
        return new GtcrnStream(step, so.wantedStems ?? STEMS, so.signal, so.onInferProgress);
      },
      async dispose() {
        await run.dispose();
      },
    };
  } catch (e) {
    await session.dispose();
    throw e;
  }
}

/** Runs `frames` spectrum frames ([frames, 1, 257, 1, 2]) through the model; returns the enhanced frames, same layout. */
type GtcrnStepper = (input: Float32Array, frames: number) => Promise<Float32Array>;

async function gtcrnScanSession(
  path: string,
  names: { mix: string; enh: string },
  states: readonly State[],
  session: SessionOptions,
): Promise<{ session: ModelSession; names: ScanNames } | undefined> {
  let wrapped: { model: Uint8Array; names: ScanNames };
  try {
    const { wrapInScan } = await import('../onnx/scan.js');
    wrapped = wrapInScan(await readFile(path), { states: states.map((st) => ({ input: st.input, output: st.output })), stepInput: names.mix, stepOutput: names.enh });
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

function scanStepper(session: ModelSession, names: ScanNames, states: State[]): GtcrnStepper {
  return async (input, frames) => {
    const feeds: Record<string, TensorData> = { [names.stepsInput]: { data: input.subarray(0, frames * G_FRAME), dims: [frames, 1, G_BINS, 1, 2] } };
    states.forEach((st, i) => (feeds[names.states[i]!.input] = { data: st.value, dims: st.dims }));
    const out = await session.run(feeds);
    states.forEach((st, i) => (st.value = out[names.states[i]!.output]!.data as Float32Array));
    return out[names.stepsOutput]!.data as Float32Array;
  };
}

function frameStepper(session: ModelSession, names: { mix: string; enh: string }, states: State[]): GtcrnStepper {
  let enh = new Float32Array(0);
  return async (input, frames) => {
    if (enh.length < frames * G_FRAME) enh = new Float32Array(frames * G_FRAME);
    for (let f = 0; f < frames; f++) {
      const feeds: Record<string, TensorData> = { [names.mix]: { data: input.subarray(f * G_FRAME, (f + 1) * G_FRAME), dims: [1, G_BINS, 1, 2] } };
      for (const st of states) feeds[st.input] = { data: st.value, dims: st.dims };
      const out = await session.run(feeds);
      for (const st of states) st.value = out[st.output]!.data as Float32Array;
      enh.set(out[names.enh]!.data as Float32Array, f * G_FRAME);
    }
    return enh;
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
    private readonly step: GtcrnStepper,
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

interface DtlnStage {
  session: ModelSession;
  signalIn: string;
  signalOut: string;
  state: ValueInfo;
  stateOut: string;
}

function bindDtlnStage(session: ModelSession, path: string, width: number): DtlnStage {
  const isSignal = (v: ValueInfo): boolean => v.shape[v.shape.length - 1] === width;
  const sigIn = session.inputs.find(isSignal);
  const sigOut = session.outputs.find(isSignal);
  const stIn = session.inputs.find((v) => v !== sigIn);
  const stOut = session.outputs.find((v) => v !== sigOut);
  if (!sigIn || !sigOut || !stIn || !stOut || session.inputs.length !== 2 || session.outputs.length !== 2) {
    throw contractError(path, `expected a [1,1,${width}] signal and one state in and out`, 'DTLN');
  }
  fixedShape(stIn, path, 'DTLN');
  return { session, signalIn: sigIn.name, signalOut: sigOut.name, state: stIn, stateOut: stOut.name };
}

/**
 * Loads DTLN's two stages (`model_1.onnx`: magnitude [1,1,257] + state → mask + state; `model_2.onnx`:
 * block [1,1,512] + state → block + state), binding tensors by shape.
 * @throws DataError (65) when a stage does not have that contract.
 */
export async function createDtlnModel(stage1Path: string, stage2Path: string, opts: SpeechModelOptions): Promise<StemModel> {
  await loadSimdFft();
  const s1 = await opts.createSession(stage1Path, smallModelSession(opts.session));
  let s2: ModelSession | undefined;
  try {
    s2 = await opts.createSession(stage2Path, smallModelSession(opts.session));
    const st1 = bindDtlnStage(s1, stage1Path, D_BINS);
    const st2 = bindDtlnStage(s2, stage2Path, D_BLOCK);
    return {
      id: opts.id,
      stems: [...STEMS],
      sampleRate: RATE,
      channels: 1,
      provider: s1.provider,
      threads: s1.threads,
      needsTrackStats: false,
      createStream: (so) => new DtlnStream(st1, st2, so.wantedStems ?? STEMS, so.signal, so.onInferProgress),
      async dispose() {
        await Promise.all([s1.dispose(), s2!.dispose()]);
      },
    };
  } catch (e) {
    await Promise.all([s1.dispose(), s2?.dispose()]);
    throw e;
  }
}

class DtlnStream implements StemStream {
  inferSeconds = 0;
  // float32 FFT (WASM SIMD once loaded): the blocks and the mask are float32.
  private readonly fft = getRealFFT(D_BLOCK, 'float32');
  private readonly inBuf = new Float32Array(D_BLOCK);
  private readonly outBuf = new Float32Array(D_BLOCK);
  private readonly pending = new PlanarQueue(1, 1 << 14);
  private readonly mix = new PlanarQueue(1, 1 << 14);
  private state1: Float32Array;
  private state2: Float32Array;
  private readonly re = new Float64Array(D_BINS);
  private readonly im = new Float64Array(D_BINS);
  private readonly mag = new Float32Array(D_BINS);
  private readonly block = new Float64Array(D_BLOCK);
  /** model_2's input (the runtime reads it during the call only, so one array serves every step). */
  private readonly est = new Float32Array(D_BLOCK);
  private readonly chunk = [new Float32Array(D_SHIFT)];
  /** Output samples produced so far (upstream's out_file index), of which the first D_DELAY are dropped. */
  private produced = 0;
  private total = 0;
  private emitted = 0;

  constructor(
    private readonly st1: DtlnStage,
    private readonly st2: DtlnStage,
    private readonly wanted: readonly string[],
    private readonly signal: AbortSignal | undefined,
    private readonly onProgress: ((frames: number) => void) | undefined,
  ) {
    this.state1 = new Float32Array(product(fixedShape(st1.state, 'model_1', 'DTLN')));
    this.state2 = new Float32Array(product(fixedShape(st2.state, 'model_2', 'DTLN')));
  }

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

  private async run(final: boolean): Promise<StemBlocks> {
    // One output array per call, written step by step; the input is read in place and dropped once at the end
    // (shifting the queue per 8 ms step copied the rest of the block each time and allocated per step).
    const steps = Math.floor(this.pending.length / D_SHIFT);
    const out = new Float32Array(steps * D_SHIFT);
    let n = 0;
    let pos = this.pending.start;
    for (let i = 0; i < steps; i++) {
      this.pending.copyTo(pos, D_SHIFT, this.chunk);
      pos += D_SHIFT;
      await this.step(this.chunk[0]!);
      // Upstream's out_file index j describes input time j − 384: drop the first 384 to align.
      const skip = Math.max(0, Math.min(D_SHIFT, D_DELAY - this.produced));
      this.produced += D_SHIFT;
      const end = Math.min(D_SHIFT, skip + this.total - this.emitted);
      if (end > skip) {
        out.set(this.outBuf.subarray(skip, end), n);
        n += end - skip;
        this.emitted += end - skip;
      }
      if ((this.produced / D_SHIFT) % 256 === 0) this.onProgress?.(Math.min(this.total, this.emitted));
    }
    this.pending.discardBefore(pos);
    if (final) this.onProgress?.(this.total);
    return speechAndNoise(this.mix, out.subarray(0, n), this.wanted);
  }

  /** One 128-sample step of upstream's loop; out_buffer[:128] after the overlap-add is `outBuf[0, 128)`. */
  private async step(chunk: Float32Array): Promise<void> {
    this.inBuf.copyWithin(0, D_SHIFT);
    this.inBuf.set(chunk, D_BLOCK - D_SHIFT);
    this.fft.forward(this.inBuf, this.re, this.im);
    for (let k = 0; k < D_BINS; k++) this.mag[k] = Math.sqrt(this.re[k]! * this.re[k]! + this.im[k]! * this.im[k]!);
    const t0 = performance.now();
    const o1 = await this.st1.session.run({
      [this.st1.signalIn]: { data: this.mag, dims: [1, 1, D_BINS] },
      [this.st1.state.name]: { data: this.state1, dims: this.st1.state.shape as number[] },
    });
    const mask = o1[this.st1.signalOut]!.data as Float32Array;
    this.state1 = o1[this.st1.stateOut]!.data as Float32Array;
    // |X|·mask·e^{i∠X} = mask·X: the masked spectrum without computing the phase.
    for (let k = 0; k < D_BINS; k++) {
      this.re[k] = this.re[k]! * mask[k]!;
      this.im[k] = this.im[k]! * mask[k]!;
    }
    this.fft.inverse(this.re, this.im, this.block);
    this.est.set(this.block);
    const o2 = await this.st2.session.run({
      [this.st2.signalIn]: { data: this.est, dims: [1, 1, D_BLOCK] },
      [this.st2.state.name]: { data: this.state2, dims: this.st2.state.shape as number[] },
    });
    this.inferSeconds += (performance.now() - t0) / 1000;
    const outBlock = o2[this.st2.signalOut]!.data as Float32Array;
    this.state2 = o2[this.st2.stateOut]!.data as Float32Array;
    this.outBuf.copyWithin(0, D_SHIFT);
    this.outBuf.fill(0, D_BLOCK - D_SHIFT);
    for (let i = 0; i < D_BLOCK; i++) this.outBuf[i] = this.outBuf[i]! + outBlock[i]!;
  }
}
