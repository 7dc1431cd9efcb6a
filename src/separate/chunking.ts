/**
 * Streaming segment overlap-add, shared by the HTDemucs and MDX-Net adapters.
 *
 * Both models run on fixed-length segments of a (possibly padded) track and join the segment outputs with
 * a weighted overlap-add (model-io.md §1.5 step 3 and §2.4). The track length is only known at the end of
 * the stream, so segments whose window lies entirely inside the audio received so far are run as soon as
 * the audio arrives, and the remaining ones (whose length or padding depends on the track length) at flush.
 * Output before the next segment's offset can no longer change, so it is released at once: memory is
 * bounded by a couple of segments, whatever the track length.
 */
import { InternalError } from '../errors.js';

/** A growable planar sample buffer addressed by absolute position, dropping its head as it is consumed. */
export class PlanarQueue {
  private data: Float32Array[];
  /** Absolute position of data[·][0]. */
  private base = 0;
  private len = 0;

  constructor(readonly channels: number, initialCapacity = 1 << 16) {
    this.data = Array.from({ length: channels }, () => new Float32Array(initialCapacity));
  }

  /** Absolute position one past the last sample held. */
  get end(): number {
    return this.base + this.len;
  }

  /** Absolute position of the first sample held. */
  get start(): number {
    return this.base;
  }

  get length(): number {
    return this.len;
  }

  private reserve(extra: number): void {
    const cap = this.data[0]!.length;
    if (this.len + extra <= cap) return;
    const next = Math.max(cap * 2, this.len + extra);
    this.data = this.data.map((ch) => {
      const n = new Float32Array(next);
      n.set(ch.subarray(0, this.len));
      return n;
    });
  }

  /** Appends one block (one array per channel, equal lengths). */
  push(block: readonly Float32Array[]): void {
    const n = block[0]?.length ?? 0;
    if (n === 0) return;
    this.reserve(n);
    for (let c = 0; c < this.channels; c++) this.data[c]!.set(block[c]!, this.len);
    this.len += n;
  }

  pushZeros(n: number): void {
    if (n <= 0) return;
    this.reserve(n);
    for (let c = 0; c < this.channels; c++) this.data[c]!.fill(0, this.len, this.len + n);
    this.len += n;
  }

  /**
   * Copies [from, from+n) into `out` (one array per channel, at `outOffset`); positions outside the held
   * range read as zeros (the zero padding beyond the array of demucs' TensorChunk.padded).
   */
  copyTo(from: number, n: number, out: Float32Array[], outOffset = 0): void {
    const lo = Math.max(from, this.base);
    const hi = Math.min(from + n, this.end);
    for (let c = 0; c < this.channels; c++) {
      const dst = out[c]!;
      dst.fill(0, outOffset, outOffset + n);
      if (hi > lo) dst.set(this.data[c]!.subarray(lo - this.base, hi - this.base), outOffset + (lo - from));
    }
  }

  /** Removes and returns the first n samples (n ≤ length). */
  shift(n: number): Float32Array[] {
    if (n > this.len) throw new InternalError(`PlanarQueue.shift(${n}) with ${this.len} held`);
    const out = this.data.map((ch) => ch.slice(0, n));
    this.drop(n);
    return out;
  }

  /** Drops every sample before absolute position `pos`. */
  discardBefore(pos: number): void {
    const n = Math.min(this.len, pos - this.base);
    if (n > 0) this.drop(n);
  }

  private drop(n: number): void {
    if (n <= 0) return;
    // copyWithin keeps the buffer; the cost is amortised because blocks are large compared with what remains.
    for (const ch of this.data) ch.copyWithin(0, n, this.len);
    this.base += n;
    this.len -= n;
  }
}

/** How segments are laid over the track (one instance per model family). */
export interface SegmentLayout {
  /** Model input length in samples. */
  segment: number;
  /** Distance between segment offsets. */
  step: number;
  /** Zeros placed before the track (MDX: trim; HTDemucs shift trick: max_shift − offset). */
  leftPad: number;
  /** Zeros placed after the track, given the track length (MDX: pad; HTDemucs: 0). */
  rightPad(trackFrames: number): number;
  /**
   * 'centred' (demucs): chunk_len = min(segment, M − offset); the model window of `segment` samples is
   * centred on the chunk (start = offset − (segment − chunk_len)//2), reads zeros beyond the padded track,
   * and its output is centre-trimmed back to chunk_len.
   * 'left' (MDX): the model input is padded[offset : offset+segment] zero-filled past the end; output[:chunk_len].
   */
  align: 'centred' | 'left';
  /** Overlap-add weights for a chunk of `chunkLen` samples. */
  weight(chunkLen: number): Float32Array;
  /** Samples of the padded result to drop at the start (MDX trim, HTDemucs max_shift − offset). */
  dropFront: number;
}

/**
 * Runs a batch of model segments: input [chunk][channel] (each `segment` samples) → output
 * [chunk][stem][channel] (each `segment` samples).
 */
export type SegmentRunner = (segments: Float32Array[][]) => Promise<Float32Array[][][]>;

/**
 * One overlap-add lane: feed the track (model rate, model channels), get the stems back in order.
 * The total output per stem equals the track length.
 */
export class OlaStream {
  private readonly input: PlanarQueue;
  /** Weighted sums and weight totals, starting at absolute position `accBase`. */
  private acc: Float32Array[][];
  private wsum: Float32Array;
  private accBase = 0;
  private nextOffset = 0;
  private trackFrames = 0;
  /** Samples of the result (after dropFront) released so far. */
  private released = 0;
  private flushed = false;
  /** Model-rate frames of the track fully processed (for progress). */
  doneFrames = 0;
  /** Input segments handed to the runner, one per batch slot, reused. */
  private readonly segBufs: Float32Array[][] = [];

  constructor(
    private readonly layout: SegmentLayout,
    private readonly channels: number,
    private readonly stems: number,
    private readonly run: SegmentRunner,
    private readonly batchSize = 1,
    /**
     * An affine map applied to each released sample, y = fround(ola)·scale + offset (HTDemucs' denormalisation),
     * fused into the release so that the result is not traversed again.
     */
    private readonly post: { scale: number; offset: number } = { scale: 1, offset: 0 },
  ) {
    if (layout.step < 1 || layout.step > layout.segment) throw new InternalError(`bad segment step ${layout.step}`);
    this.input = new PlanarQueue(channels, layout.segment * 2);
    this.input.pushZeros(layout.leftPad);
    const cap = layout.segment * 2;
    this.acc = Array.from({ length: stems }, () => Array.from({ length: channels }, () => new Float32Array(cap)));
    this.wsum = new Float32Array(cap);
  }

  /** Feeds track samples; returns the stems [stem][channel] that became final. */
  async push(block: readonly Float32Array[]): Promise<Float32Array[][]> {
    this.trackFrames += block[0]?.length ?? 0;
    this.input.push(block);
    const ready: number[] = [];
    while (this.nextOffset + this.layout.segment <= this.input.end) {
      ready.push(this.nextOffset);
      this.nextOffset += this.layout.step;
      if (ready.length >= this.batchSize) {
        await this.process(ready.splice(0), undefined);
      }
    }
    if (ready.length > 0) await this.process(ready, undefined);
    return this.release(false);
  }

  /** End of the track: runs the remaining segments and returns the rest of the stems. */
  async flush(): Promise<Float32Array[][]> {
    if (this.flushed) throw new InternalError('OlaStream.flush() called twice');
    this.flushed = true;
    this.input.pushZeros(this.layout.rightPad(this.trackFrames));
    const total = this.input.end; // M: padded length
    const pending: number[] = [];
    while (this.nextOffset < total) {
      pending.push(this.nextOffset);
      this.nextOffset += this.layout.step;
      if (pending.length >= this.batchSize) await this.process(pending.splice(0), total);
    }
    if (pending.length > 0) await this.process(pending, total);
    return this.release(true);
  }

  private ensureAcc(end: number): void {
    const need = end - this.accBase;
    if (need <= this.wsum.length) return;
    const cap = Math.max(need, this.wsum.length * 2);
    this.acc = this.acc.map((st) =>
      st.map((ch) => {
        const n = new Float32Array(cap);
        n.set(ch);
        return n;
      }),
    );
    const w = new Float32Array(cap);
    w.set(this.wsum);
    this.wsum = w;
  }

  /** Runs the segments at `offsets`; `total` is the padded length once known (flush), else undefined. */
  private async process(offsets: number[], total: number | undefined): Promise<void> {
    const { segment, align } = this.layout;
    const chunkLens = offsets.map((off) => (total === undefined ? segment : Math.min(segment, total - off)));
    const inputs = offsets.map((off, i) => {
      // The segment buffers are reused from call to call: runners read them during the call and keep nothing.
      const seg = (this.segBufs[i] ??= Array.from({ length: this.channels }, () => new Float32Array(segment)));
      const start = align === 'centred' ? off - Math.floor((segment - chunkLens[i]!) / 2) : off;
      // 'left' chunks past the end of the padded track read zeros too (part zero-padded to chunk_size).
      const readLen = align === 'left' && total !== undefined ? Math.min(segment, total - off) : segment;
      this.input.copyTo(start, readLen, seg);
      if (readLen < segment) for (const ch of seg) ch.fill(0, readLen);
      return seg;
    });
    const outputs = await this.run(inputs);
    if (outputs.length !== offsets.length) throw new InternalError(`segment runner returned ${outputs.length} results for ${offsets.length} segments`);
    for (let i = 0; i < offsets.length; i++) {
      const off = offsets[i]!;
      const len = chunkLens[i]!;
      const src0 = align === 'centred' ? Math.floor((segment - len) / 2) : 0;
      const w = this.layout.weight(len);
      this.ensureAcc(off + len);
      const base = off - this.accBase;
      for (let s = 0; s < this.stems; s++) {
        for (let c = 0; c < this.channels; c++) {
          const dst = this.acc[s]![c]!;
          const src = outputs[i]![s]![c]!;
          for (let j = 0; j < len; j++) dst[base + j] = dst[base + j]! + w[j]! * src[src0 + j]!;
        }
      }
      for (let j = 0; j < len; j++) this.wsum[base + j] = this.wsum[base + j]! + w[j]!;
    }
    // Keep the input a future centred window can still read (it starts at most `segment` before its offset).
    this.input.discardBefore(this.nextOffset - segment);
    const lastEnd = Math.max(...offsets.map((o, i) => o + chunkLens[i]!));
    this.doneFrames = Math.max(this.doneFrames, Math.min(this.trackFrames, lastEnd - this.layout.leftPad));
  }

  /** Releases the result before the next offset (everything at flush), dropping `dropFront` and the padding. */
  private release(final: boolean): Float32Array[][] {
    const upTo = final ? this.input.end : Math.min(this.nextOffset, this.input.end);
    const { dropFront } = this.layout;
    // Result samples [released, limit) correspond to absolute positions dropFront + [released, limit).
    const limit = Math.max(this.released, Math.min(this.trackFrames, upTo - dropFront));
    const n = limit - this.released;
    const out = Array.from({ length: this.stems }, () => Array.from({ length: this.channels }, () => new Float32Array(n)));
    const from = dropFront + this.released - this.accBase;
    const { scale, offset } = this.post;
    const affine = scale !== 1 || offset !== 0;
    const wsum = this.wsum;
    for (let s = 0; s < this.stems; s++) {
      for (let c = 0; c < this.channels; c++) {
        const src = this.acc[s]![c]!;
        const dst = out[s]![c]!;
        for (let j = 0; j < n; j++) {
          const w = wsum[from + j]!;
          // 0/0 only happens where every window is zero (the very first/last padded sample with symmetric Hann).
          const v = w > 0 ? src[from + j]! * (1 / w) : 0;
          dst[j] = affine ? Math.fround(v) * scale + offset : v;
        }
      }
    }
    this.released = limit;
    // Drop accumulator samples that are released or belong to the dropped front padding.
    const keepFrom = Math.min(dropFront + this.released, upTo);
    const drop = keepFrom - this.accBase;
    if (drop > 0) {
      for (const st of this.acc) for (const ch of st) {
        ch.copyWithin(0, drop);
        ch.fill(0, ch.length - drop);
      }
      this.wsum.copyWithin(0, drop);
      this.wsum.fill(0, this.wsum.length - drop);
      this.accBase += drop;
    }
    return out;
  }
}

/** demucs' triangular chunk weight (apply.py, transition_power 1): 1..seg/2 then down to 1, over its maximum. */
export function triangleWeight(segment: number): Float32Array {
  const half = Math.floor(segment / 2);
  const w = new Float32Array(segment);
  for (let i = 0; i < half; i++) w[i] = i + 1;
  for (let i = half; i < segment; i++) w[i] = segment - i;
  let max = 0;
  for (let i = 0; i < segment; i++) max = Math.max(max, w[i]!);
  for (let i = 0; i < segment; i++) w[i] = w[i]! / max;
  return w;
}

/** A small seeded PRNG (mulberry32) so that `--shifts` runs are reproducible with `--seed`. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
