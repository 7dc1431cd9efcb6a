/**
 * The one audio type that flows between every stage: planar float channels plus a sample rate.
 * Long tracks never exist as one RawAudio: sources and sinks move them in blocks.
 */
import { InternalError } from '../errors.js';

export interface RawAudio {
  /** One Float32Array per channel, all the same length (frames). */
  channels: Float32Array[];
  sampleRate: number;
}

export interface AudioInfo {
  sampleRate: number;
  /** Channel count of the stream as decoded. */
  channels: number;
  /** Total frames when known up front (WAV header, ffprobe); undefined for unbounded streams. */
  frames: number | undefined;
  /** Container/codec description for messages, e.g. 'wav pcm_s16le', 'mp3'. */
  format: string;
  /** True when the input is a video container whose audio track is being read. */
  isVideo: boolean;
}

/** A streaming reader. `read` returns null at end of stream; blocks may be shorter than asked. */
export interface AudioSource {
  readonly info: AudioInfo;
  read(maxFrames: number): Promise<RawAudio | null>;
  close(): Promise<void>;
  /** Error lines the decoder printed while reading (damaged frames); complete once read() returned null. */
  readonly diagnostics?: readonly string[];
}

/**
 * A streaming writer. Data goes to a temporary file beside the destination;
 * `finish` renames it into place, `abort` removes it. Nothing half-written ever has the final name.
 */
export interface AudioSink {
  readonly path: string;
  write(block: RawAudio): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/** A block written to a sink must match the sink's layout; a mismatch is a bug in the caller (70). */
export function checkSinkBlock(path: string, block: RawAudio, channels: number, sampleRate: number): void {
  if (block.channels.length !== channels) throw new InternalError(`${path}: sink expects ${channels} channels, got ${block.channels.length}`);
  if (block.sampleRate !== sampleRate) throw new InternalError(`${path}: sink expects ${sampleRate} Hz, got ${block.sampleRate} Hz`);
}

export function frameCount(audio: RawAudio): number {
  return audio.channels[0]?.length ?? 0;
}

export function createSilence(channels: number, frames: number, sampleRate: number): RawAudio {
  return { channels: Array.from({ length: channels }, () => new Float32Array(frames)), sampleRate };
}
