/**
 * The one audio type that flows between every stage: planar float channels plus a sample rate.
 * Long tracks never exist as one RawAudio: sources and sinks move them in blocks.
 */
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

export function frameCount(audio: RawAudio): number {
  return audio.channels[0]?.length ?? 0;
}

export function createSilence(channels: number, frames: number, sampleRate: number): RawAudio {
  return { channels: Array.from({ length: channels }, () => new Float32Array(frames)), sampleRate };
}
