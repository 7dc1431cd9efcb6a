/**
 * Checks on audio as it enters stemkit, applied by openAudioSource to every source:
 * - non-finite samples (NaN, ±Inf) are refused with DataError 65 naming the first one's time: one such
 *   sample poisons every later stage (peak rescaling, track statistics, the model) and the stems come out
 *   silent or as noise, so stemkit never guesses a repair;
 * - at end of stream the decoded length is compared with the length the container declared (ffprobe), and
 *   the decoder's error lines are kept: a truncated or damaged compressed file is reported (a warning by
 *   default, DataError 65 with `strict`), never passed off as a complete one.
 */
import { DataError } from '../errors.js';
import type { AudioSource, RawAudio } from './raw-audio.js';

/** Index and channel of the first NaN or ±Inf sample of a block, or undefined when all are finite. */
export function findNonFinite(channels: readonly Float32Array[]): { channel: number; index: number; value: number } | undefined {
  let first: { channel: number; index: number; value: number } | undefined;
  for (let c = 0; c < channels.length; c++) {
    const ch = channels[c]!;
    const end = first ? first.index : ch.length;
    for (let i = 0; i < end; i++) {
      const v = ch[i]!;
      // v − v is 0 for every finite v and NaN for NaN and ±Inf: one subtraction, no call.
      if (v - v !== 0) {
        first = { channel: c, index: i, value: v };
        break;
      }
    }
  }
  return first;
}

/** "1:02.345" style time for messages (seconds with milliseconds, minutes when ≥ 60 s). */
export function formatTime(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(3)} s`;
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - m * 60).toFixed(3).padStart(6, '0')}`;
}

function valueName(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

/**
 * Throws DataError (65, code E_NONFINITE) when a block holds NaN or ±Inf.
 * @param what names the audio in the message, e.g. the input path or `model htdemucs, stem vocals`.
 * @param startFrame the block's first frame within the whole stream, for the time in the message.
 */
export function assertFinite(block: RawAudio, what: string, startFrame: number, hint: string, code = 'E_NONFINITE'): void {
  const bad = findNonFinite(block.channels);
  if (!bad) return;
  const frame = startFrame + bad.index;
  throw new DataError(`${what}: non-finite sample (${valueName(bad.value)}) at ${formatTime(frame / block.sampleRate)} (frame ${frame}, channel ${bad.channel + 1})`, {
    code,
    hint,
    details: { frame, channel: bad.channel + 1, seconds: frame / block.sampleRate },
  });
}

/** What a source's end of stream revealed about its completeness. */
export interface AudioIntegrity {
  /** Frames the container declared (WAV header, ffprobe duration × rate), when it declared any. */
  declaredFrames: number | undefined;
  decodedFrames: number;
  sampleRate: number;
  /** True when the decoded length falls short of the declared one beyond the tolerance. */
  truncated: boolean;
  /** Error lines the decoder printed (damaged frames, bit flips), at most the last 5. */
  decoderErrors: string[];
  /** Total error lines the decoder printed. */
  decoderErrorCount: number;
}

/**
 * How far the decoded length may fall short of the declared one before it counts as truncated:
 * 0.1 s plus 0.5 % of the declared length. Encoder padding and priming account for tens of milliseconds
 * (an MP3's Xing header declares ~1,600 frames more than it decodes) and duration estimates of some
 * containers are rounded; a truncated download misses far more.
 */
export function truncationTolerance(declaredFrames: number, sampleRate: number): number {
  return Math.round(0.1 * sampleRate + 0.005 * declaredFrames);
}

/** A source that also reports its integrity once read() has returned null. */
export interface GuardedSource extends AudioSource {
  /** Undefined until the end of the stream was reached. */
  readonly integrity: AudioIntegrity | undefined;
}

/** Options of guardSource. */
export interface GuardOptions {
  /** Fail (DataError 65, code E_TRUNCATED / E_DECODE_ERRORS) instead of reporting truncation and decoder errors. */
  strict?: boolean;
}

/** Wraps a source with the non-finite and completeness checks described above. */
export function guardSource(source: AudioSource, path: string, opts: GuardOptions = {}): GuardedSource {
  let frames = 0;
  let integrity: AudioIntegrity | undefined;
  const finiteHint = `re-export it from its source, or zero the bad samples: ffmpeg -i in.wav -af "aeval='if(isnan(val(ch))+isinf(val(ch)),0,val(ch))':c=same" -c:a pcm_f32le fixed.wav`;
  const finish = (): AudioIntegrity => {
    const declared = source.info.frames;
    const errors = source.diagnostics ?? [];
    const rate = source.info.sampleRate;
    const truncated = declared !== undefined && declared - frames > truncationTolerance(declared, rate);
    return { declaredFrames: declared, decodedFrames: frames, sampleRate: rate, truncated, decoderErrors: errors.slice(-5), decoderErrorCount: errors.length };
  };
  return {
    get info() {
      return source.info;
    },
    get integrity() {
      return integrity;
    },
    async read(maxFrames: number): Promise<RawAudio | null> {
      const block = await source.read(maxFrames);
      if (block === null) {
        integrity ??= finish();
        if (opts.strict) {
          if (integrity.truncated) {
            throw new DataError(`${path}: ${describeTruncation(integrity)}`, { code: 'E_TRUNCATED', hint: 'the file was cut short (incomplete copy or download); get a complete copy (without strict mode what decodes is separated, with a warning)' });
          }
          if (integrity.decoderErrorCount > 0) {
            throw new DataError(`${path}: the decoder reported ${integrity.decoderErrorCount} error${integrity.decoderErrorCount === 1 ? '' : 's'} (${integrity.decoderErrors[0] ?? ''})`, { code: 'E_DECODE_ERRORS', hint: 'the file is damaged; get a clean copy (without strict mode what decodes is separated, with a warning)' });
          }
        }
        return null;
      }
      assertFinite(block, path, frames, finiteHint);
      frames += block.channels[0]?.length ?? 0;
      return block;
    },
    close: () => source.close(),
  };
}

/** "the container declares 2.04 s but only 0.58 s decode (28 %)" */
export function describeTruncation(i: AudioIntegrity): string {
  const d = (i.declaredFrames ?? 0) / i.sampleRate;
  const got = i.decodedFrames / i.sampleRate;
  return `truncated: the container declares ${d.toFixed(2)} s but only ${got.toFixed(2)} s decode (${d > 0 ? Math.round((100 * got) / d) : 0} %)`;
}
