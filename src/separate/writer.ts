/**
 * Writes one stem, streaming, with demucs' clipping policy (demucs/audio.py `prevent_clip`):
 * - 'rescale' (default): the whole stem is divided by max(1.01·peak, 1). The peak is only known at the end,
 *   so the stem is spooled to a raw float32 temp file beside the destination and copied into the final
 *   format with the gain: memory stays flat whatever the length. With `eager`, the final file is also written
 *   as the blocks come, for as long as the peak keeps the gain at 1 (most stems): then the finished file is
 *   already there and the copy, the one pass that cannot start before the model's last block, is skipped.
 * - 'clamp': samples limited to ±0.99, written directly.
 * - 'none': written as is (formats with integer samples still saturate at full scale).
 * Nothing carries the final name before the stem is complete (the sink writes a temp file and renames it).
 */
import { mkdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AudioSink, RawAudio } from '../audio/raw-audio.js';
import { OutputError, fromSystemError } from '../errors.js';
import { discardTemp, openTemp, tempPathFor } from '../util/atomic.js';

export type ClipMode = 'rescale' | 'clamp' | 'none';
export const CLIP_MODES: readonly ClipMode[] = ['rescale', 'clamp', 'none'];

export interface StemWriterOptions {
  path: string;
  sampleRate: number;
  channels: number;
  clip: ClipMode;
  createSink(path: string, sampleRate: number, channels: number): Promise<AudioSink>;
  /**
   * 'rescale' only: also write the final file while the gain stays 1 (see above). For in-process formats (WAV),
   * where that costs one cheap encoding pass; an external encoder per stem would compete with the model.
   */
  eager?: boolean;
}

/** Frames per block when copying the spool into the final format. */
const COPY_BLOCK = 65536;

export class StemWriter {
  private sink: AudioSink | undefined;
  private spool: { path: string; fh: FileHandle; pos: number } | undefined;
  private scratch = new Float32Array(0);
  /** 'rescale' with `eager`: `sink` holds every block so far at gain 1. */
  private eager = false;
  private peak = 0;
  private frames = 0;
  /** Stop writing after this many frames (the input length), once known. */
  limit = Infinity;
  /** Seconds spent writing (for the per-phase timing). */
  seconds = 0;
  /** The gain that was applied by 'rescale' (1 when none). */
  gain = 1;

  private constructor(private readonly opts: StemWriterOptions) {}

  static async create(opts: StemWriterOptions): Promise<StemWriter> {
    const w = new StemWriter(opts);
    const t0 = performance.now();
    try {
      await mkdir(dirname(opts.path), { recursive: true });
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException | undefined)?.code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw fromSystemError(cause, { path: dirname(opts.path), role: 'output' });
      const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EEXIST' || code === 'ENOTDIR' ? 'a part of the path is a file' : (code ?? String(cause));
      throw new OutputError(`cannot create the folder ${dirname(opts.path)} (${why})`, { cause, hint: 'check the permissions of the output folder (-o)' });
    }
    if (opts.clip === 'rescale') {
      const path = `${tempPathFor(opts.path)}.f32`;
      try {
        w.spool = { path, fh: await openTemp(path), pos: 0 };
      } catch (cause) {
        await discardTemp(path);
        throw new OutputError(`cannot write a temporary file beside ${opts.path}`, { cause, hint: 'check free space and permissions of the output folder' });
      }
      if (opts.eager) {
        try {
          w.sink = await opts.createSink(opts.path, opts.sampleRate, opts.channels);
        } catch (e) {
          await w.abort();
          throw e;
        }
        w.eager = true;
      }
    } else {
      w.sink = await opts.createSink(opts.path, opts.sampleRate, opts.channels);
    }
    w.seconds += (performance.now() - t0) / 1000;
    return w;
  }

  /** Frames written so far. */
  get written(): number {
    return this.frames;
  }

  /** Peak absolute sample value seen so far. */
  get peakValue(): number {
    return this.peak;
  }

  async write(channels: Float32Array[]): Promise<void> {
    const n = Math.min(channels[0]?.length ?? 0, this.limit - this.frames);
    if (n <= 0) return;
    const t0 = performance.now();
    const chans = n === channels[0]!.length ? channels : channels.map((c) => c.subarray(0, n));
    if (this.spool) {
      const C = chans.length;
      // Reused: a fresh buffer per block is a fresh mapping for a large block, page faults on every write.
      if (this.scratch.length < n * C) this.scratch = new Float32Array(n * C);
      const buf = this.scratch.subarray(0, n * C);
      let peak = this.peak;
      for (let c = 0; c < C; c++) {
        const ch = chans[c]!;
        for (let i = 0; i < n; i++) {
          const v = ch[i]!;
          buf[i * C + c] = v;
          const a = v < 0 ? -v : v;
          if (a > peak) peak = a;
        }
      }
      this.peak = peak;
      const bytes = new Uint8Array(buf.buffer, 0, n * C * 4);
      try {
        await this.spool.fh.write(bytes, 0, bytes.length, this.spool.pos);
      } catch (e) {
        // ENOSPC here is the same full disk the final file would meet: 73 naming the output, not 70.
        throw fromSystemError(e, { path: this.opts.path, role: 'output' });
      }
      this.spool.pos += bytes.length;
      if (this.eager) {
        if (gainOf(peak) === 1) {
          await this.sink!.write({ channels: chans, sampleRate: this.opts.sampleRate });
        } else {
          // From here the gain is below 1: the file is made from the spool at the end.
          this.eager = false;
          const sink = this.sink!;
          this.sink = undefined;
          await sink.abort();
        }
      }
    } else {
      let block = chans;
      if (this.opts.clip === 'clamp') {
        block = chans.map((ch) => {
          const o = new Float32Array(n);
          for (let i = 0; i < n; i++) o[i] = Math.max(-0.99, Math.min(0.99, ch[i]!));
          return o;
        });
      }
      let peak = this.peak;
      for (const ch of chans) {
        for (let i = 0; i < n; i++) {
          const v = ch[i]!;
          const a = v < 0 ? -v : v;
          if (a > peak) peak = a;
        }
      }
      this.peak = peak;
      await this.sink!.write({ channels: block, sampleRate: this.opts.sampleRate });
    }
    this.frames += n;
    this.seconds += (performance.now() - t0) / 1000;
  }

  /** Pads with silence up to `frames` (when the resampled stream came out a sample short), then completes the file. */
  async finish(frames?: number): Promise<void> {
    if (frames !== undefined && this.frames < frames) {
      const pad = Array.from({ length: this.opts.channels }, () => new Float32Array(frames - this.frames));
      await this.write(pad);
    }
    const t0 = performance.now();
    if (this.spool && this.eager) {
      // The gain stayed 1: the sink has the whole stem.
      const { fh, path } = this.spool;
      this.spool = undefined;
      await fh.close();
      await discardTemp(path);
    } else if (this.spool) {
      const { fh, path } = this.spool;
      this.gain = gainOf(this.peak);
      const sink = await this.opts.createSink(this.opts.path, this.opts.sampleRate, this.opts.channels);
      this.sink = sink;
      const C = this.opts.channels;
      const buf = new Float32Array(COPY_BLOCK * C);
      const bytes = new Uint8Array(buf.buffer);
      for (let pos = 0; pos < this.frames; pos += COPY_BLOCK) {
        const n = Math.min(COPY_BLOCK, this.frames - pos);
        await fh.read(bytes, 0, n * C * 4, pos * C * 4);
        const chans = Array.from({ length: C }, () => new Float32Array(n));
        for (let c = 0; c < C; c++) {
          const ch = chans[c]!;
          for (let i = 0; i < n; i++) ch[i] = buf[i * C + c]! * this.gain;
        }
        await sink.write({ channels: chans, sampleRate: this.opts.sampleRate } satisfies RawAudio);
      }
      await fh.close();
      await discardTemp(path);
      this.spool = undefined;
    }
    await this.sink!.finish();
    this.seconds += (performance.now() - t0) / 1000;
  }

  /** Removes everything this writer created (temp files); the final path is never touched. */
  async abort(): Promise<void> {
    if (this.spool) {
      await this.spool.fh.close().catch(() => undefined);
      await discardTemp(this.spool.path);
      this.spool = undefined;
    }
    await this.sink?.abort().catch(() => undefined);
  }
}

/** demucs prevent_clip 'rescale': wav / max(1.01·peak, 1). */
function gainOf(peak: number): number {
  return 1 / Math.max(1.01 * peak, 1);
}
