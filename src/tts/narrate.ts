/**
 * Narrated video: speech laid over a clip (its video stream copied, not re-encoded) or over a still image,
 * with the subtitles as a soft track, or drawn into the picture (`burn`, which re-encodes the video with
 * ffmpeg's subtitles filter). The argument builder is pure (tested with exact arrays); `narrateVideo` runs
 * it into a temp file beside the output and renames it when complete.
 */
import { extname, resolve } from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { locateFfmpeg, probeMedia, runFfmpegToFile, videoMuxerFor } from '../audio/ffmpeg.js';

/** How the speech meets the clip's own sound. */
export type VideoAudioMode = 'replace' | 'duck' | 'mix';
export const VIDEO_AUDIO_MODES: readonly VideoAudioMode[] = ['replace', 'duck', 'mix'];

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff']);

/** True when a path names a still image (which becomes a video as long as the speech). */
export function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase());
}

/** The subtitle codec a container carries as a soft track. */
export function subtitleCodecFor(muxer: string): string | undefined {
  switch (muxer) {
    case 'mp4':
    case 'mov':
      return 'mov_text';
    case 'matroska':
      return 'srt';
    case 'webm':
      return 'webvtt';
    default:
      return undefined;
  }
}

export interface NarrationArgs {
  /** The clip or still image. */
  visual: string;
  image: boolean;
  speech: string;
  /** An SRT file (for the soft track and for burning); none: no subtitles. */
  subtitles?: string;
  mode: VideoAudioMode;
  /** True when the clip has an audio stream (mix and duck need one). */
  clipHasAudio: boolean;
  burn: boolean;
  /** Output duration in seconds: the clip's, or the speech's for an image. */
  duration: number;
  muxer: string;
  audioCodec: string[];
  output: string;
}

/**
 * Escapes a path for a filter option value inside a filtergraph: first the option level (`\ ' :`), then the
 * graph level (`\ ' , ; [ ]`), each with a backslash (ffmpeg-filters "Notes on filtergraph escaping").
 */
export function filterPath(path: string): string {
  return path.replace(/[\\':]/g, '\\$&').replace(/[\\',;[\]]/g, '\\$&');
}

/**
 * ffmpeg arguments for a narrated video. Audio: the speech padded with silence to the output duration;
 * `mix` adds the clip's sound unchanged; `duck` lowers it while the speech sounds (a sidechain compressor keyed
 * by the speech: threshold 0.02, ratio 8, 20 ms attack, 400 ms release) and adds the speech. Video: copied, or
 * for an image or `burn` encoded with libx264 (CRF 20; stills tuned for still images, even sizes, yuv420p).
 */
export function buildNarrationArgs(a: NarrationArgs): string[] {
  const d = a.duration.toFixed(3);
  const args = ['-hide_banner', '-nostdin', '-y', '-v', 'error'];
  if (a.image) args.push('-loop', '1', '-framerate', '25');
  args.push('-i', a.visual, '-i', a.speech);
  const softCodec = subtitleCodecFor(a.muxer);
  const soft = a.subtitles !== undefined && !a.burn && softCodec !== undefined;
  if (soft) args.push('-i', a.subtitles!);
  // All audio at 48 kHz stereo float so the filters meet on one format.
  const fmt = 'aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo';
  const speech = `[1:a]${fmt},apad=whole_dur=${d}`;
  let graph: string;
  if (a.mode === 'replace' || !a.clipHasAudio) graph = `${speech}[aout]`;
  else if (a.mode === 'mix') graph = `[0:a]${fmt}[bg];${speech}[sp];[bg][sp]amix=inputs=2:duration=first:normalize=0[aout]`;
  else graph = `[0:a]${fmt}[bg];${speech},asplit=2[sp][key];[bg][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[ducked];[ducked][sp]amix=inputs=2:duration=first:normalize=0[aout]`;
  const vf: string[] = [];
  if (a.image) vf.push('scale=trunc(iw/2)*2:trunc(ih/2)*2', 'format=yuv420p');
  if (a.burn && a.subtitles !== undefined) vf.push(`subtitles=filename=${filterPath(a.subtitles)}`);
  if (vf.length > 0) graph = `[0:v:0]${vf.join(',')}[vout];${graph}`;
  args.push('-filter_complex', graph, '-map', vf.length > 0 ? '[vout]' : '0:v:0', '-map', '[aout]');
  if (soft) args.push('-map', '2:s:0');
  if (vf.length > 0) args.push('-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', ...(a.image ? ['-tune', 'stillimage', '-r', '25'] : []));
  else args.push('-c:v', 'copy');
  args.push(...a.audioCodec);
  if (soft) args.push('-c:s', softCodec!);
  args.push('-t', d, '-f', a.muxer, a.output);
  return args;
}

export interface NarrateVideoOptions {
  /** A video clip, or a still image (png, jpg, webp, …). */
  visual: string;
  /** The speech audio file. */
  speech: string;
  /** Seconds of speech (the output length for an image). */
  speechSec: number;
  /** An SRT file, for the soft track or burning. */
  subtitles?: string;
  mode?: VideoAudioMode;
  burn?: boolean;
  out: string;
  ffmpegPath?: string;
  signal?: AbortSignal;
}

export interface NarrateResult {
  durationSec: number;
  /** The speech was longer than the clip and was cut at its end. */
  speechCut: boolean;
  /** mix/duck asked for, but the clip has no sound: the speech alone. */
  noClipAudio: boolean;
  softSubtitles: boolean;
}

/**
 * Writes `out` (temp file + rename).
 * @throws UsageError (64) for an output container that is not a video one or an output that would overwrite the
 *   visual; InputError/DataError via probing (66/65); UnavailableError (69) without ffmpeg; FfmpegError (73).
 */
export async function narrateVideo(o: NarrateVideoOptions): Promise<NarrateResult> {
  const mux = videoMuxerFor(extname(o.out));
  if (mux === undefined) throw new UsageError(`cannot write a video with extension "${extname(o.out)}"`, { code: 'E_BAD_OPTION', hint: 'use .mp4, .mov, .mkv, .webm, .avi, .ts or .flv' });
  if (resolve(o.out) === resolve(o.visual)) throw new UsageError(`the output would overwrite the input ${o.visual}`, { code: 'E_BAD_OPTION', hint: 'choose another output path' });
  const locate = o.ffmpegPath === undefined ? {} : { ffmpegPath: o.ffmpegPath };
  await locateFfmpeg(locate);
  const image = isImagePath(o.visual);
  const probe = image ? undefined : await probeMedia(o.visual, { ...locate, ...(o.signal ? { signal: o.signal } : {}) });
  if (probe && !probe.hasVideo) throw new UsageError(`${o.visual} has no video stream`, { code: 'E_BAD_OPTION', hint: 'give a video clip or a still image (png, jpg, webp)' });
  const duration = image ? o.speechSec : probe!.duration ?? o.speechSec;
  const mode = o.mode ?? 'replace';
  const clipHasAudio = probe?.audioCodec !== undefined;
  const soft = o.subtitles !== undefined && !o.burn && subtitleCodecFor(mux.muxer) !== undefined;
  await runFfmpegToFile(
    o.out,
    (tmp) =>
      buildNarrationArgs({
        visual: o.visual,
        image,
        speech: o.speech,
        ...(o.subtitles !== undefined ? { subtitles: o.subtitles } : {}),
        mode,
        clipHasAudio,
        burn: o.burn ?? false,
        duration,
        muxer: mux.muxer,
        audioCodec: mux.audioCodec,
        output: tmp,
      }),
    {
      ...locate,
      ...(o.signal ? { signal: o.signal } : {}),
      what: `ffmpeg could not write the narrated video ${o.out}`,
      exitCode: ExitCode.cantCreate,
      hint: 'check the input clip or image, the output folder and free disk space',
    },
  );
  return { durationSec: duration, speechCut: !image && o.speechSec > duration + 0.05, noClipAudio: mode !== 'replace' && !clipHasAudio, softSubtitles: soft };
}
