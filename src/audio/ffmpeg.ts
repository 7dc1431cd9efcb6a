/**
 * Everything that is not WAV goes through ffmpeg: ffprobe for the stream facts, ffmpeg decoding to raw
 * float32 (f32le) over a pipe, ffmpeg encoding from an f32le pipe, and video remuxing.
 * Arguments come from pure builders (tested with exact arrays) and are passed as arrays, never a shell string.
 * Each open source/sink owns one child process, so any number can be open at once.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { delimiter, dirname, join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import {
  DataError,
  ExitCode,
  InternalError,
  InterruptedError,
  OutputError,
  StemkitError,
  UnavailableError,
  type ExitCodeValue,
  throwIfAborted,
} from '../errors.js';
import { commitTemp, discardTemp, tempPathFor, trackTemp } from '../util/atomic.js';
import type { AudioInfo, AudioSink, AudioSource, RawAudio } from './raw-audio.js';
import { checkSinkBlock } from './raw-audio.js';
import { decodeInterleaved } from './wav.js';

/** Output formats stemkit writes. `wav` is written natively; the others need ffmpeg. */
export type AudioFormat = 'wav' | 'flac' | 'mp3' | 'opus' | 'ogg' | 'm4a';
export type EncodedFormat = Exclude<AudioFormat, 'wav'>;

/** Default bitrates for lossy formats (MP3 at its maximum; the others at commonly transparent rates). */
export const DEFAULT_BITRATES: Record<Exclude<EncodedFormat, 'flac'>, string> = {
  mp3: '320k',
  opus: '192k',
  ogg: '256k',
  m4a: '256k',
};

/** Options for buildFfmpegArgs. Paths are made absolute so a name like `-x.mp3` or `a:b.mp3` is never read as an option or protocol. */
export type FfmpegArgsOptions =
  | { mode: 'decode'; input: string; sampleRate: number; channels: number }
  | {
      mode: 'encode';
      output: string;
      format: EncodedFormat;
      sampleRate: number;
      channels: number;
      /** Lossy formats only, e.g. '320k'. */
      bitrate?: string;
      /** FLAC only: 16 (default) or 24 (32 is written as 24: FLAC has no float samples). */
      bits?: 16 | 24 | 32;
    }
  | {
      mode: 'remux';
      video: string;
      audio: string[];
      output: string;
      /** ffmpeg muxer name (-f), e.g. 'mp4', 'matroska'. */
      muxer: string;
      /** Audio encoder arguments, e.g. ['-c:a', 'aac', '-b:a', '256k']. */
      audioCodec: string[];
    };

const COMMON = ['-hide_banner', '-nostdin', '-v', 'error'];

/** Builds the ffmpeg argument array for a decode, encode or remux. Pure. */
export function buildFfmpegArgs(opts: FfmpegArgsOptions): string[] {
  switch (opts.mode) {
    case 'decode':
      return [
        ...COMMON,
        '-i', resolve(opts.input),
        '-map', '0:a:0', '-vn', '-sn', '-dn',
        '-ac', String(opts.channels), '-ar', String(opts.sampleRate),
        '-c:a', 'pcm_f32le', '-f', 'f32le', 'pipe:1',
      ];
    case 'encode': {
      const input = ['-f', 'f32le', '-ar', String(opts.sampleRate), '-ac', String(opts.channels), '-i', 'pipe:0'];
      let codec: string[];
      let muxer: string;
      switch (opts.format) {
        case 'flac':
          // ffmpeg's FLAC encoder takes s16 or s32; s32 with 24 raw bits gives a 24-bit FLAC.
          codec = opts.bits === 24 || opts.bits === 32 ? ['-c:a', 'flac', '-sample_fmt', 's32', '-bits_per_raw_sample', '24'] : ['-c:a', 'flac', '-sample_fmt', 's16'];
          muxer = 'flac';
          break;
        case 'mp3':
          codec = ['-c:a', 'libmp3lame', '-b:a', opts.bitrate ?? DEFAULT_BITRATES.mp3];
          muxer = 'mp3';
          break;
        case 'opus':
          // libopus accepts only 8/12/16/24/48 kHz; ffmpeg resamples to 48 kHz automatically.
          codec = ['-c:a', 'libopus', '-b:a', opts.bitrate ?? DEFAULT_BITRATES.opus];
          muxer = 'opus';
          break;
        case 'ogg':
          codec = ['-c:a', 'libvorbis', '-b:a', opts.bitrate ?? DEFAULT_BITRATES.ogg];
          muxer = 'ogg';
          break;
        case 'm4a':
          codec = ['-c:a', 'aac', '-b:a', opts.bitrate ?? DEFAULT_BITRATES.m4a];
          muxer = 'ipod';
          break;
        default: {
          const never: never = opts.format;
          throw new InternalError(`unknown encode format ${String(never)}`);
        }
      }
      // The temp file has no meaningful extension, so the muxer is always named with -f.
      return [...COMMON, ...input, '-vn', ...codec, '-f', muxer, '-y', resolve(opts.output)];
    }
    case 'remux': {
      const inputs = ['-i', resolve(opts.video), ...opts.audio.flatMap((a) => ['-i', resolve(a)])];
      const n = opts.audio.length;
      // Several stems are summed (amix with normalize=0), so stems that add up to the mix give back the mix.
      const audioMap =
        n === 1
          ? ['-map', '1:a:0']
          : ['-filter_complex', `${opts.audio.map((_, i) => `[${i + 1}:a:0]`).join('')}amix=inputs=${n}:duration=longest:normalize=0[aout]`, '-map', '[aout]'];
      return [
        ...COMMON, ...inputs,
        '-map', '0:v', ...audioMap,
        '-map_metadata', '0',
        '-c:v', 'copy', ...opts.audioCodec,
        '-f', opts.muxer, '-y', resolve(opts.output),
      ];
    }
    default: {
      const never: never = opts;
      throw new InternalError(`unknown ffmpeg mode ${JSON.stringify(never)}`);
    }
  }
}

/** Builds the ffprobe arguments that print streams and format as JSON. Pure. */
export function buildFfprobeArgs(input: string): string[] {
  return ['-hide_banner', '-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', resolve(input)];
}

/** What ffprobe says about a media file. */
export interface MediaProbe {
  /** Container, e.g. 'mp3', 'mov' (first name of ffprobe's format_name). */
  container: string;
  /** Codec of the first audio stream, e.g. 'aac'; undefined when there is no audio stream. */
  audioCodec: string | undefined;
  sampleRate: number;
  channels: number;
  /** Seconds, when known. */
  duration: number | undefined;
  /** True when a real video stream exists (cover art pictures do not count). */
  hasVideo: boolean;
  /** Codec of the first video stream, if any. */
  videoCodec: string | undefined;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  sample_rate?: string;
  channels?: number;
  duration?: string;
  disposition?: { attached_pic?: number };
}

/** Parses ffprobe's JSON output. Pure; throws DataError when the output makes no sense. */
export function parseFfprobeOutput(json: string, path: string): MediaProbe {
  let data: { streams?: ProbeStream[]; format?: { format_name?: string; duration?: string } };
  try {
    data = JSON.parse(json) as typeof data;
  } catch (e) {
    throw new DataError(`${path}: ffprobe printed unreadable output`, { cause: e, hint: 'check that FFPROBE_PATH points to a working ffprobe' });
  }
  const streams = data.streams ?? [];
  const audio = streams.find((s) => s.codec_type === 'audio');
  const video = streams.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  const num = (v: string | undefined): number | undefined => {
    const x = v === undefined ? NaN : Number(v);
    return Number.isFinite(x) && x > 0 ? x : undefined;
  };
  return {
    container: (data.format?.format_name ?? 'unknown').split(',')[0] ?? 'unknown',
    audioCodec: audio?.codec_name,
    sampleRate: num(audio?.sample_rate) ?? 0,
    channels: audio?.channels ?? 0,
    duration: num(audio?.duration) ?? num(data.format?.duration),
    hasVideo: video !== undefined,
    videoCodec: video?.codec_name,
  };
}

/** Options shared by the ffmpeg-backed functions. */
export interface FfmpegLocateOptions {
  /** Explicit ffmpeg binary (config `ffmpegPath` / env FFMPEG_PATH); otherwise PATH is searched. */
  ffmpegPath?: string;
  /** Explicit ffprobe binary; otherwise beside an explicit ffmpeg, else PATH. */
  ffprobePath?: string;
}

const INSTALL_HINT = 'WAV works without it; install it with `apt-get install ffmpeg` / `brew install ffmpeg`, or set FFMPEG_PATH';

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, fsConstants.X_OK);
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function searchPath(name: string): Promise<string | undefined> {
  const exts = process.platform === 'win32' ? ['.exe', ''] : [''];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const p = join(dir, name + ext);
      if (await isExecutable(p)) return p;
    }
  }
  return undefined;
}

/**
 * Finds the ffmpeg (and ffprobe) binaries.
 * @throws UnavailableError (69, code E_FFMPEG_MISSING) naming how to install or point at them.
 */
export async function locateFfmpeg(opts: FfmpegLocateOptions = {}): Promise<{ ffmpeg: string; ffprobe: string }> {
  let ffmpeg: string | undefined;
  if (opts.ffmpegPath !== undefined && opts.ffmpegPath !== '') {
    if (!(await isExecutable(opts.ffmpegPath))) {
      throw new UnavailableError(`ffmpeg was not found at ${opts.ffmpegPath} (from FFMPEG_PATH or the config's ffmpegPath)`, {
        code: 'E_FFMPEG_MISSING',
        hint: 'fix the path, or unset it to use ffmpeg from PATH; ' + INSTALL_HINT,
      });
    }
    ffmpeg = opts.ffmpegPath;
  } else {
    ffmpeg = await searchPath('ffmpeg');
  }
  if (ffmpeg === undefined) {
    throw new UnavailableError('ffmpeg was not found on PATH; it is needed for formats other than WAV', { code: 'E_FFMPEG_MISSING', hint: INSTALL_HINT });
  }
  let ffprobe: string | undefined;
  if (opts.ffprobePath !== undefined && opts.ffprobePath !== '') {
    ffprobe = (await isExecutable(opts.ffprobePath)) ? opts.ffprobePath : undefined;
  } else if (opts.ffmpegPath !== undefined && opts.ffmpegPath !== '') {
    const sibling = join(dirname(opts.ffmpegPath), process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe');
    ffprobe = (await isExecutable(sibling)) ? sibling : await searchPath('ffprobe');
  } else {
    ffprobe = await searchPath('ffprobe');
  }
  if (ffprobe === undefined) {
    throw new UnavailableError(`ffprobe was not found${opts.ffprobePath ? ` at ${opts.ffprobePath}` : ' on PATH'}; it ships with ffmpeg and is needed to read non-WAV files`, {
      code: 'E_FFMPEG_MISSING',
      hint: 'install ffmpeg (it includes ffprobe) or set FFPROBE_PATH; ' + INSTALL_HINT,
    });
  }
  return { ffmpeg, ffprobe };
}

/** An ffmpeg/ffprobe run that failed. The message ends with the last lines of its stderr. */
export class FfmpegError extends StemkitError {
  /** The last (up to 20) stderr lines. */
  readonly stderrTail: string[];
  constructor(summary: string, exitCode: ExitCodeValue, stderrTail: string[], opts: { hint: string; cause?: unknown }) {
    const tail = stderrTail.length > 0 ? '\n' + stderrTail.map((l) => `  ffmpeg: ${l}`).join('\n') : '';
    super('E_FFMPEG', exitCode, summary + tail, { hint: opts.hint, cause: opts.cause, details: { stderr: stderrTail } });
    this.stderrTail = stderrTail;
  }
}

/** The last `n` non-empty lines of a stderr text. */
export function stderrTail(text: string, n = 20): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-n);
}

interface ExecaFailure {
  isCanceled?: boolean;
  exitCode?: number;
  signal?: string;
  stderr?: unknown;
  shortMessage?: string;
  code?: string;
}

/** Turns an execa rejection into a StemkitError (InterruptedError when our signal cancelled it). */
function mapFailure(e: unknown, what: string, exitCode: ExitCodeValue, hint: string, userSignal: AbortSignal | undefined): StemkitError {
  if (e instanceof StemkitError) return e;
  const f = (e ?? {}) as ExecaFailure;
  if (userSignal?.aborted) return new InterruptedError('interrupted', { cause: e });
  if (f.code === 'ENOENT' || f.code === 'EACCES') {
    return new UnavailableError(`ffmpeg could not be started (${f.code})`, { code: 'E_FFMPEG_MISSING', hint: INSTALL_HINT, cause: e });
  }
  const how = f.exitCode !== undefined ? `exit code ${f.exitCode}` : f.signal !== undefined ? `killed by ${f.signal}` : (f.shortMessage ?? String(e));
  const text = typeof f.stderr === 'string' ? f.stderr : '';
  return new FfmpegError(`${what} (${how})`, exitCode, stderrTail(text), { hint, cause: e });
}

/**
 * Runs ffprobe on a file.
 * @throws DataError (65) when ffprobe cannot read it or it has no audio stream; UnavailableError (69).
 */
export async function probeMedia(path: string, opts: FfmpegLocateOptions & { signal?: AbortSignal } = {}): Promise<MediaProbe> {
  const { ffprobe } = await locateFfmpeg(opts);
  let stdout: string;
  try {
    const r = await execa(ffprobe, buildFfprobeArgs(path), {
      stdin: 'ignore',
      forceKillAfterDelay: 2000,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    });
    stdout = r.stdout;
  } catch (e) {
    throw mapFailure(e, `ffprobe could not read ${path}`, ExitCode.dataErr, 'the file is damaged or not an audio/video format ffmpeg knows', opts.signal);
  }
  const probe = parseFfprobeOutput(stdout, path);
  if (probe.audioCodec === undefined) {
    throw new DataError(`${path}: has no audio track${probe.hasVideo ? ' (video only)' : ''}`, { code: 'E_NO_AUDIO', hint: 'pass a file that contains audio' });
  }
  if (probe.sampleRate <= 0 || probe.channels <= 0) {
    throw new DataError(`${path}: ffprobe reports no sample rate/channel count for the ${probe.audioCodec} audio track`, { hint: 'the file may be damaged; try re-encoding it' });
  }
  return probe;
}

/**
 * Links a caller's signal with a private controller so close()/abort() can kill the child too.
 * The listener is removed when the child ends: a batch shares one signal across many files, and leftover
 * listeners would trigger Node's MaxListenersExceededWarning.
 */
function linkedController(signal: AbortSignal | undefined): { ac: AbortController; unlink: () => void } {
  const ac = new AbortController();
  if (signal === undefined) return { ac, unlink: () => undefined };
  if (signal.aborted) {
    ac.abort();
    return { ac, unlink: () => undefined };
  }
  const onAbort = (): void => ac.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  return { ac, unlink: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * Opens any ffmpeg-readable file (audio, or the first audio track of a video) as a streaming source:
 * ffmpeg writes f32le to a pipe, read on demand (pipe backpressure stops ffmpeg while nobody reads).
 * `info.frames` is ffprobe's duration × rate, an estimate for compressed formats.
 */
export async function openFfmpegSource(
  path: string,
  opts: FfmpegLocateOptions & { signal?: AbortSignal; probe?: MediaProbe } = {},
): Promise<AudioSource> {
  throwIfAborted(opts.signal);
  const { ffmpeg } = await locateFfmpeg(opts);
  const probe = opts.probe ?? (await probeMedia(path, opts));
  const { sampleRate, channels } = probe;
  const info: AudioInfo = {
    sampleRate,
    channels,
    frames: probe.duration === undefined ? undefined : Math.round(probe.duration * sampleRate),
    format: `${probe.container} ${probe.audioCodec ?? ''}`.trim(),
    isVideo: probe.hasVideo,
  };
  const { ac, unlink } = linkedController(opts.signal);
  const sub = execa(ffmpeg, buildFfmpegArgs({ mode: 'decode', input: path, sampleRate, channels }), {
    stdin: 'ignore',
    buffer: { stdout: false, stderr: true },
    cancelSignal: ac.signal,
    forceKillAfterDelay: 2000,
  });
  // Failures are collected at end of stream (or ignored after close); never leave the rejection unhandled.
  let failure: unknown;
  // ffmpeg exits 0 after skipping damaged frames; what it printed on stderr (-v error) is the only trace.
  const diagnostics: string[] = [];
  const done = sub.then(
    (r) => {
      unlink();
      if (typeof r.stderr === 'string') diagnostics.push(...stderrTail(r.stderr, 1000));
    },
    (e: unknown) => {
      unlink();
      failure = e;
    },
  );
  const frameBytes = channels * 4;
  // Read through execa's own iterable, not sub.stdout: with buffer:false execa resumes an unread stdout
  // after one tick and stops reading it once the subprocess exits, so a source opened now and read later
  // (eval opens all of a track's files first; a short file's ffmpeg exits at once) would come back empty.
  // The iterable keeps what ffmpeg wrote and still applies backpressure (events.on with a highWaterMark).
  const it = sub.iterable({ binary: true })[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  const pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let eof = false;
  let closed = false;

  const fail = (e: unknown): StemkitError =>
    mapFailure(e, `ffmpeg could not decode ${path}`, ExitCode.dataErr, 'the file is damaged or uses a codec this ffmpeg lacks', opts.signal);

  const take = (nBytes: number): Uint8Array => {
    const out = new Uint8Array(nBytes);
    let filled = 0;
    while (filled < nBytes) {
      const head = pending[0]!;
      const need = nBytes - filled;
      if (head.length <= need) {
        out.set(head, filled);
        filled += head.length;
        pending.shift();
      } else {
        out.set(head.subarray(0, need), filled);
        pending[0] = head.subarray(need);
        filled += need;
      }
    }
    pendingBytes -= nBytes;
    return out;
  };

  return {
    info,
    diagnostics,
    async read(maxFrames: number): Promise<RawAudio | null> {
      throwIfAborted(opts.signal);
      if (closed) throw new InternalError(`${path}: read after close`);
      const want = Math.max(1, Math.floor(maxFrames)) * frameBytes;
      while (!eof && pendingBytes < want) {
        let r: IteratorResult<Uint8Array>;
        try {
          r = await it.next();
        } catch (e) {
          await done;
          throw fail(failure ?? e);
        }
        if (r.done) {
          eof = true;
          break;
        }
        pending.push(r.value);
        pendingBytes += r.value.length;
      }
      if (eof) {
        // A decode error must not look like a short, successful decode.
        await done;
        if (failure !== undefined) throw fail(failure);
      }
      const frames = Math.floor(Math.min(want, pendingBytes) / frameBytes);
      if (frames === 0) return null; // any trailing partial frame is dropped
      const bytes = take(frames * frameBytes);
      return { channels: decodeInterleaved(bytes, { sampleType: 'float', bitsPerSample: 32, channels }, frames), sampleRate };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (sub.exitCode === null && sub.signalCode === null) ac.abort();
      try {
        await it.return?.();
      } catch {
        // the stream was destroyed by the cancellation we just asked for
      }
      await done;
    },
  };
}

/** Options for createFfmpegSink. */
export interface FfmpegSinkOptions extends FfmpegLocateOptions {
  format: EncodedFormat;
  sampleRate: number;
  channels: number;
  bitrate?: string;
  bits?: 16 | 24 | 32;
  signal?: AbortSignal;
}

/**
 * Creates a sink that pipes f32le into an ffmpeg encoder writing a temp file beside `path`;
 * `finish()` closes the pipe, waits for ffmpeg and renames the file into place.
 */
export async function createFfmpegSink(path: string, opts: FfmpegSinkOptions): Promise<AudioSink> {
  throwIfAborted(opts.signal);
  const { ffmpeg } = await locateFfmpeg(opts);
  const { sampleRate, channels } = opts;
  const tmp = tempPathFor(path);
  await ensureOutputFolder(path);
  trackTemp(tmp);
  const args = buildFfmpegArgs({
    mode: 'encode',
    output: tmp,
    format: opts.format,
    sampleRate,
    channels,
    ...(opts.bitrate === undefined ? {} : { bitrate: opts.bitrate }),
    ...(opts.bits === undefined ? {} : { bits: opts.bits }),
  });
  const { ac, unlink } = linkedController(opts.signal);
  const sub: ResultPromise<{ stdin: 'pipe'; stdout: 'ignore'; cancelSignal: AbortSignal; forceKillAfterDelay: number }> = execa(ffmpeg, args, {
    stdin: 'pipe',
    stdout: 'ignore',
    cancelSignal: ac.signal,
    forceKillAfterDelay: 2000,
  });
  let failure: unknown;
  let exited = false;
  const done = sub.then(
    () => {
      exited = true;
      unlink();
    },
    (e: unknown) => {
      exited = true;
      unlink();
      failure = e;
    },
  );
  const stdin = sub.stdin;
  // EPIPE when ffmpeg dies early: the exit status carries the real reason, reported by write()/finish().
  stdin.on('error', () => undefined);
  let state: 'open' | 'finished' | 'aborted' = 'open';
  const what = `ffmpeg could not encode ${path} as ${opts.format}`;
  const hint = opts.format === 'opus' || opts.format === 'ogg' || opts.format === 'mp3' ? 'check the bitrate option and that this ffmpeg has the encoder (ffmpeg -encoders)' : 'check free disk space and the ffmpeg installation';
  const cleanup = async (): Promise<void> => {
    if (!exited) ac.abort();
    await done;
    await discardTemp(tmp);
  };
  return {
    path,
    async write(block: RawAudio): Promise<void> {
      if (state !== 'open') throw new InternalError(`${path}: write after ${state}`);
      throwIfAborted(opts.signal);
      checkSinkBlock(path, block, channels, sampleRate);
      const frames = block.channels[0]?.length ?? 0;
      if (frames === 0) return;
      const dead = async (): Promise<never> => {
        // A broken pipe comes just before the exit status that explains it: give ffmpeg a moment to exit.
        if (!exited) await Promise.race([done, new Promise((r) => setTimeout(r, 2000).unref())]);
        await cleanup();
        state = 'aborted';
        throw mapFailure(failure ?? new Error('ffmpeg exited early'), what, ExitCode.cantCreate, hint, opts.signal);
      };
      if (exited || stdin.destroyed) return dead();
      const buf = new Float32Array(frames * channels);
      for (let c = 0; c < channels; c++) {
        const ch = block.channels[c]!;
        for (let i = 0, j = c; i < frames; i++, j += channels) buf[j] = ch[i]!;
      }
      const ok = stdin.write(new Uint8Array(buf.buffer));
      if (!ok) {
        // Backpressure: wait until ffmpeg has drained the pipe. If it dies instead, a destroyed stdin may never
        // emit 'drain' (or may have closed already), so the child's exit also ends the wait.
        let onDrain: (() => void) | undefined;
        await Promise.race([
          new Promise<void>((res) => {
            onDrain = res;
            stdin.once('drain', res);
          }),
          done,
        ]);
        if (onDrain) stdin.off('drain', onDrain);
      }
      if (exited && failure !== undefined) return dead();
    },
    async finish(): Promise<void> {
      if (state !== 'open') throw new InternalError(`${path}: finish after ${state}`);
      state = 'finished';
      stdin.end();
      await done;
      if (failure !== undefined) {
        await discardTemp(tmp);
        throw mapFailure(failure, what, ExitCode.cantCreate, hint, opts.signal);
      }
      try {
        await commitTemp(tmp, path);
      } catch (e) {
        await discardTemp(tmp);
        throw new OutputError(`${path}: cannot move the finished file into place (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { hint: 'check permissions of the output folder', cause: e });
      }
    },
    async abort(): Promise<void> {
      if (state !== 'open') return;
      state = 'aborted';
      stdin.destroy();
      await cleanup();
    },
  };
}

/** ffmpeg muxer (-f) and audio codec arguments for a video container, by extension. */
export function videoMuxerFor(ext: string): { muxer: string; audioCodec: string[] } | undefined {
  switch (ext.toLowerCase().replace(/^\./, '')) {
    case 'mp4':
    case 'm4v':
      return { muxer: 'mp4', audioCodec: ['-c:a', 'aac', '-b:a', '256k'] };
    case 'mov':
      return { muxer: 'mov', audioCodec: ['-c:a', 'aac', '-b:a', '256k'] };
    case 'mkv':
      return { muxer: 'matroska', audioCodec: ['-c:a', 'flac'] };
    case 'webm':
      return { muxer: 'webm', audioCodec: ['-c:a', 'libopus', '-b:a', '192k'] };
    case 'avi':
      return { muxer: 'avi', audioCodec: ['-c:a', 'libmp3lame', '-b:a', '320k'] };
    case 'ts':
    case 'mts':
    case 'm2ts':
      return { muxer: 'mpegts', audioCodec: ['-c:a', 'aac', '-b:a', '256k'] };
    case 'flv':
      return { muxer: 'flv', audioCodec: ['-c:a', 'aac', '-b:a', '256k'] };
    default:
      return undefined;
  }
}

/**
 * Runs ffmpeg to completion (no streaming), mapping failures. Used for remuxing.
 * @internal
 */
export async function runFfmpeg(args: string[], opts: FfmpegLocateOptions & { signal?: AbortSignal; what: string; exitCode: ExitCodeValue; hint: string }): Promise<void> {
  const { ffmpeg } = await locateFfmpeg(opts);
  try {
    await execa(ffmpeg, args, { stdin: 'ignore', forceKillAfterDelay: 2000, ...(opts.signal ? { cancelSignal: opts.signal } : {}) });
  } catch (e) {
    throw mapFailure(e, opts.what, opts.exitCode, opts.hint, opts.signal);
  }
}

/** Creates the folder an output goes into. @throws OutputError (73) naming the path. */
export async function ensureOutputFolder(path: string): Promise<void> {
  try {
    await mkdir(dirname(resolve(path)), { recursive: true });
  } catch (e) {
    throw new OutputError(`${path}: cannot create the output folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { hint: 'check the output path and permissions', cause: e });
  }
}

/**
 * Runs one ffmpeg command that writes `out` atomically: the folder is created, ffmpeg writes a tracked temp file
 * (`args` receives its path), which is renamed into place only when ffmpeg succeeded and removed otherwise.
 */
export async function runFfmpegToFile(
  out: string,
  args: (tmp: string) => string[],
  opts: FfmpegLocateOptions & { signal?: AbortSignal; what: string; exitCode: ExitCodeValue; hint: string },
): Promise<void> {
  await ensureOutputFolder(out);
  const tmp = tempPathFor(out);
  trackTemp(tmp);
  try {
    await runFfmpeg(args(tmp), opts);
    await commitTemp(tmp, out);
  } catch (e) {
    await discardTemp(tmp);
    throw e;
  }
}
