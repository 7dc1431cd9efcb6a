/**
 * The contract between the separation engine (separate.ts: decode, resample, normalise, write)
 * and each model adapter (htdemucs.ts, mdxnet.ts, speech.ts, classic.ts: the model-rate DSP + inference).
 * The engine streams model-rate audio blocks in; an adapter streams stem blocks out, in input order,
 * with bounded internal buffering (memory must not grow with track length).
 */
import type { RawAudio } from '../audio/raw-audio.js';

export type StemBlocks = Record<string, RawAudio>;

/** Whole-track statistics of the mono reference (mean of channels), from the engine's first pass. */
export interface TrackStats {
  frames: number;
  mean: number;
  /** Unbiased (N−1) standard deviation. */
  std: number;
}

export interface StemStreamOptions {
  /** Present when the model declared `needsTrackStats`. */
  trackStats?: TrackStats;
  /** Stems the caller will write; an adapter may skip work for the others (e.g. htdemucs_ft sub-models). */
  wantedStems?: readonly string[];
  /** Total model-rate frames when known, for progress. */
  totalFrames?: number;
  shifts?: number;
  seed?: number;
  overlap?: number;
  batchSize?: number;
  signal?: AbortSignal;
  /** Called after each model call with the model-rate frames fully processed so far. */
  onInferProgress?(doneFrames: number): void;
  /** Which of a file's per-channel streams this is (0 for the first or only one). */
  lane?: number;
}

export interface StemStream {
  /** Feeds the next block; returns the stem audio that is complete so far (may have zero frames). */
  push(block: RawAudio): Promise<StemBlocks>;
  /** End of input: returns the remaining stem audio. Total output frames per stem = total input frames. */
  flush(): Promise<StemBlocks>;
  /** Seconds spent inside model inference so far (for the per-phase timing line). */
  readonly inferSeconds: number;
  /**
   * Optional, for streams that finish audio out of step with their input (worker threads): what `push(block)` (or,
   * for null, `flush()`) would return, as a sequence of smaller pieces, each handed on as soon as it is ready. A
   * caller can then write a long stretch block by block, some of it while the model still works on the rest,
   * instead of waiting for and allocating one concatenation. Use either this or push/flush for a given call.
   */
  pieces?(block: RawAudio | null): AsyncIterable<StemBlocks>;
}

export interface StemModel {
  readonly id: string;
  readonly stems: readonly string[];
  /** The rate the model runs at; the engine resamples in and out. */
  readonly sampleRate: number;
  /** Channels the model expects (2 for music models, 1 for speech models); the engine adapts. */
  readonly channels: 1 | 2;
  readonly provider: string;
  readonly threads: number;
  /** HTDemucs normalises by whole-track statistics (model-io.md §1.5 step 1), so it needs a first pass. */
  readonly needsTrackStats: boolean;
  /** A file's per-channel streams (lanes) run on different threads and may be pushed at the same time. */
  readonly concurrentLanes?: boolean;
  createStream(opts: StemStreamOptions): StemStream;
  dispose(): Promise<void>;
}
