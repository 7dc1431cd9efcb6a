/**
 * The audio entry points every other module uses: open a source, create a sink, remux a video.
 * WAV (detected by content, so a mislabelled WAV still works without ffmpeg) is read natively; everything
 * else goes through ffmpeg. Compressed WAV codecs (ADPCM, µ-law, …) fall back to ffmpeg when it exists.
 */
import { extname, resolve } from 'node:path';
import { DataError, ExitCode, StemkitError, UsageError, throwIfAborted } from '../errors.js';
import {
  type AudioFormat,
  buildFfmpegArgs,
  createFfmpegSink,
  locateFfmpeg,
  openFfmpegSource,
  probeMedia,
  runFfmpegToFile,
  videoMuxerFor,
} from './ffmpeg.js';
import type { AudioSink, AudioSource, RawAudio } from './raw-audio.js';
import { guardSource, type GuardedSource } from './guard.js';
import { E_WAV_CODEC, createWavSink, looksLikeWav, openInputFile, openWavSource } from './wav.js';

export type { AudioFormat } from './ffmpeg.js';

/** Formats createAudioSink accepts. */
export const AUDIO_FORMATS: readonly AudioFormat[] = ['wav', 'flac', 'mp3', 'opus', 'ogg', 'm4a'];

const FORMAT_BY_EXT: Record<string, AudioFormat> = {
  '.wav': 'wav',
  '.wave': 'wav',
  '.flac': 'flac',
  '.mp3': 'mp3',
  '.opus': 'opus',
  '.ogg': 'ogg',
  '.oga': 'ogg',
  '.m4a': 'm4a',
};

const VIDEO_EXTS = new Set(['.mp4', '.m4v', '.mkv', '.mov', '.webm', '.avi', '.flv', '.wmv', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts', '.3gp', '.ogv', '.vob', '.mxf']);

/** True when the path's extension is a video container (the audio track is then read or replaced). */
export function isVideoPath(path: string): boolean {
  return VIDEO_EXTS.has(extname(path).toLowerCase());
}

/** The output format implied by a path's extension, or undefined. */
export function formatFromPath(path: string): AudioFormat | undefined {
  return FORMAT_BY_EXT[extname(path).toLowerCase()];
}

/** Options for openAudioSource. */
export interface OpenAudioOptions {
  ffmpegPath?: string;
  ffprobePath?: string;
  signal?: AbortSignal;
  /** Fail (DataError 65) on a truncated or damaged input instead of reporting it in `integrity`. */
  strict?: boolean;
}

function locateOpts(opts: OpenAudioOptions): { ffmpegPath?: string; ffprobePath?: string } {
  return {
    ...(opts.ffmpegPath === undefined ? {} : { ffmpegPath: opts.ffmpegPath }),
    ...(opts.ffprobePath === undefined ? {} : { ffprobePath: opts.ffprobePath }),
  };
}

/**
 * Opens an audio (or video) file for streaming reads.
 * RIFF/RF64 WAV content is decoded natively; anything else needs ffmpeg + ffprobe. Every source is guarded
 * (audio/guard.ts): a NaN or infinite sample fails the read with DataError 65 naming its time, and at the end
 * of the stream `integrity` says whether the decoded length fell short of the declared one.
 * @throws InputError (66) missing/unreadable/directory/pipe; DataError (65) malformed; UnavailableError (69) no ffmpeg.
 */
export async function openAudioSource(path: string, opts: OpenAudioOptions = {}): Promise<GuardedSource> {
  return guardSource(await openUnguarded(path, opts), path, opts.strict === undefined ? {} : { strict: opts.strict });
}

async function openUnguarded(path: string, opts: OpenAudioOptions): Promise<AudioSource> {
  throwIfAborted(opts.signal);
  // Opening first gives the same 66 errors for every format, and the first bytes decide native vs ffmpeg.
  const { fh, size } = await openInputFile(path);
  let head: Uint8Array;
  try {
    const buf = new Uint8Array(12);
    const { bytesRead } = await fh.read(buf, 0, 12, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const ext = extname(path).toLowerCase();
  const signalOpt = opts.signal ? { signal: opts.signal } : {};
  if (looksLikeWav(head) || ext === '.wav' || ext === '.wave') {
    try {
      return await openWavSource(path, signalOpt);
    } catch (e) {
      if (!(e instanceof StemkitError) || e.code !== E_WAV_CODEC) throw e;
      // A compressed codec inside a WAV container: ffmpeg can usually decode it.
      try {
        await locateFfmpeg(locateOpts(opts));
      } catch {
        throw e;
      }
      return openFfmpegSource(path, { ...locateOpts(opts), ...signalOpt });
    }
  }
  if (size === 0) throw new DataError(`${path}: empty file (0 bytes)`, { hint: 'the file is damaged or was not written completely' });
  const probe = await probeMedia(path, { ...locateOpts(opts), ...signalOpt });
  return openFfmpegSource(path, { ...locateOpts(opts), ...signalOpt, probe });
}

/** Options for createAudioSink. */
export interface AudioSinkOptions {
  sampleRate: number;
  channels: number;
  /** Default: from the extension of `path`. */
  format?: AudioFormat;
  /** WAV: 16 (default) / 24 integer or 32 float. FLAC: 16 (default) or 24 (32 → 24). Ignored by lossy formats. */
  bits?: 16 | 24 | 32;
  /** Lossy formats, e.g. '320k'. Defaults: mp3 320k, opus 192k, ogg (Vorbis) 256k, m4a (AAC) 256k. */
  bitrate?: string;
  ffmpegPath?: string;
  signal?: AbortSignal;
}

/**
 * Creates a streaming writer. Data goes to a temp file beside `path`; `finish()` renames it into place,
 * `abort()` removes it. WAV is written natively, the other formats through ffmpeg.
 * @throws UsageError (64) for an unknown format/extension or a malformed bitrate; UnavailableError (69) when ffmpeg is needed but absent;
 *   OutputError (73) when the file cannot be created.
 */
export async function createAudioSink(path: string, opts: AudioSinkOptions): Promise<AudioSink> {
  const format = opts.format ?? formatFromPath(path);
  if (format === undefined || !AUDIO_FORMATS.includes(format)) {
    throw new UsageError(
      opts.format === undefined
        ? `cannot tell the output format from "${extname(path) || path}"`
        : `unknown output format "${String(opts.format)}"`,
      { hint: `use one of: ${AUDIO_FORMATS.join(', ')}` },
    );
  }
  if (opts.bitrate !== undefined && !/^\d+(\.\d+)?[kKM]?$/.test(opts.bitrate)) {
    throw new UsageError(`invalid bitrate "${opts.bitrate}"`, { hint: 'give bits per second, e.g. 320k, 192k or 128000' });
  }
  const common = { sampleRate: opts.sampleRate, channels: opts.channels, ...(opts.signal ? { signal: opts.signal } : {}) };
  if (format === 'wav') return createWavSink(path, { ...common, ...(opts.bits === undefined ? {} : { bits: opts.bits }) });
  return createFfmpegSink(path, {
    ...common,
    format,
    ...(opts.bits === undefined ? {} : { bits: opts.bits }),
    ...(opts.bitrate === undefined ? {} : { bitrate: opts.bitrate }),
    ...(opts.ffmpegPath === undefined ? {} : { ffmpegPath: opts.ffmpegPath }),
  });
}

/** Reads a whole source into memory and closes it. Only for short audio (tests, TTS pieces). */
export async function readAll(source: AudioSource): Promise<RawAudio> {
  const parts: Float32Array[][] = [];
  let frames = 0;
  try {
    for (;;) {
      const block = await source.read(65536);
      if (block === null) break;
      parts.push(block.channels);
      frames += block.channels[0]?.length ?? 0;
    }
  } finally {
    await source.close();
  }
  const channels = Array.from({ length: source.info.channels }, (_, c) => {
    const out = new Float32Array(frames);
    let off = 0;
    for (const p of parts) {
      const ch = p[c]!;
      out.set(ch, off);
      off += ch.length;
    }
    return out;
  });
  return { channels, sampleRate: source.info.sampleRate };
}

/** Options for remuxVideo. */
export interface RemuxVideoOptions {
  /** The original video file; its video stream(s) are copied without re-encoding. */
  video: string;
  /** Audio files for the new soundtrack; several are summed (amix, no normalisation). */
  audio: string[];
  /** Output path; same container as `video` (taken from `out`'s extension, else `video`'s). */
  out: string;
  ffmpegPath?: string;
  signal?: AbortSignal;
}

/**
 * Writes `out`: the video stream(s) of `video` copied (-c:v copy) with a soundtrack made from `audio`
 * (encoded as AAC for mp4/mov/ts/flv, FLAC for mkv, Opus for webm, MP3 for avi). Temp file + rename.
 * @throws UsageError (64) for no audio files or an unsupported container; UnavailableError (69); FfmpegError (73).
 */
export async function remuxVideo(opts: RemuxVideoOptions): Promise<void> {
  if (opts.audio.length === 0) throw new UsageError('remuxVideo: no audio files given', { hint: 'pass at least one stem to put under the video' });
  const mux = videoMuxerFor(extname(opts.out)) ?? videoMuxerFor(extname(opts.video));
  if (mux === undefined) {
    throw new UsageError(`cannot write a video with extension "${extname(opts.out)}"`, { hint: 'use .mp4, .mov, .mkv, .webm, .avi, .ts or .flv' });
  }
  const locate = opts.ffmpegPath === undefined ? {} : { ffmpegPath: opts.ffmpegPath };
  await locateFfmpeg(locate);
  if (resolve(opts.out) === resolve(opts.video)) {
    throw new UsageError(`remuxVideo: the output would overwrite the input video ${opts.video}`, { hint: 'choose another output path' });
  }
  await runFfmpegToFile(opts.out, (tmp) => buildFfmpegArgs({ mode: 'remux', video: opts.video, audio: opts.audio, output: tmp, muxer: mux.muxer, audioCodec: mux.audioCodec }), {
    ...locate,
    ...(opts.signal ? { signal: opts.signal } : {}),
    what: `ffmpeg could not write the video ${opts.out}`,
    exitCode: ExitCode.cantCreate,
    hint: 'check that the input video is readable and has a video stream',
  });
}
