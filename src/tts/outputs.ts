/**
 * The timing outputs of a job: a timestamps JSON document and SRT/VTT subtitles, each written atomically
 * (temp file + rename) once the audio is complete.
 */
import { atomicWriteFile } from '../util/atomic.js';
import type { TtsJobResult } from './job.js';
import { formatSubtitles, subtitleFormatOf, type SubtitleFormat } from './subtitles.js';
import type { Timestamps } from './timing.js';

export interface TimingOutputs {
  /** Path of the timestamps JSON document. */
  timestamps?: string;
  /** Path of the subtitles; `.srt` or `.vtt`. */
  subtitles?: string;
  /** Most characters per subtitle cue (subtitles.ts). */
  maxCueChars?: number;
}

/** What was written, for result records. */
export interface TimingWritten {
  timestamps?: string;
  subtitles?: { path: string; format: SubtitleFormat; cues: number };
}

/** True when the outputs need timestamps collected. */
export function wantsTimestamps(o: TimingOutputs): boolean {
  return o.timestamps !== undefined || o.subtitles !== undefined;
}

/** Writes the requested files from a finished job's timestamps; `text` is the input they point into. */
export async function writeTimingOutputs(ts: Timestamps, text: string, o: TimingOutputs): Promise<TimingWritten> {
  const written: TimingWritten = {};
  if (o.timestamps !== undefined) {
    await atomicWriteFile(o.timestamps, `${JSON.stringify(ts, null, 1)}\n`);
    written.timestamps = o.timestamps;
  }
  if (o.subtitles !== undefined) {
    const format = subtitleFormatOf(o.subtitles) ?? 'srt';
    const { content, cues } = formatSubtitles(ts, text, format, o.maxCueChars);
    await atomicWriteFile(o.subtitles, content);
    written.subtitles = { path: o.subtitles, format, cues };
  }
  return written;
}

/** The fields a result record carries for its timing outputs (`timestamps` inline, files by path). */
export function timingRecord(r: TtsJobResult, w: TimingWritten): Record<string, unknown> {
  return {
    ...(r.timestamps ? { timestamps: r.timestamps, estimated: r.timestamps.estimated } : {}),
    ...(w.timestamps ? { timestampsFile: w.timestamps } : {}),
    ...(w.subtitles ? { subtitles: w.subtitles } : {}),
  };
}
