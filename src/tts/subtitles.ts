/**
 * Subtitles from word timestamps: cues of at most `maxChars` characters shown on at most two lines, never
 * spanning two sentences, cut where a phrase ends (after `,;:—` and the like) when a sentence is too long
 * for one cue, else between words. A cue runs from its first word's start to its last word's end.
 */
import type { Timestamps, WordTimestamps } from './timing.js';

export type SubtitleFormat = 'srt' | 'vtt';

export interface Cue {
  startSec: number;
  endSec: number;
  /** One or two lines joined by "\n". */
  text: string;
}

/** Default cue length: two lines of 42 characters, the common broadcast line limit. */
export const DEFAULT_MAX_CUE_CHARS = 84;

/** What a word shows in a subtitle: its input text with any markup removed, plus the punctuation that follows it. */
function shownWord(text: string, w: WordTimestamps): string {
  // Markup between the word and its punctuation (SSML: `<sub …>WWW</sub>,`) is looked through.
  const after = text.slice(w.end, w.end + 200).replace(/^(?:<[^>]*>)+/, '');
  const before = text.slice(Math.max(0, w.start - 200), w.start).replace(/(?:<[^>]*>)+$/, '');
  const trailing = /^[^\s<\p{L}\p{N}]*/u.exec(after)?.[0] ?? '';
  const leading = /[^\s>\p{L}\p{N}]*$/u.exec(before)?.[0] ?? '';
  return decodeEntities(`${leading}${w.text}${trailing}`.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim());
}

function decodeEntities(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[e]!);
}

/** Breaks a cue's text into at most two lines at the word gap nearest the middle (one line when it fits half the limit). */
export function wrapCue(text: string, maxChars: number): string {
  if (text.length <= Math.ceil(maxChars / 2)) return text;
  let best = -1;
  for (let i = text.indexOf(' '); i >= 0; i = text.indexOf(' ', i + 1)) {
    if (best < 0 || Math.abs(i - text.length / 2) < Math.abs(best - text.length / 2)) best = i;
  }
  return best < 0 ? text : `${text.slice(0, best)}\n${text.slice(best + 1)}`;
}

const PHRASE_END = /[,;:—–…)\]"”]$/u;

/**
 * Cues for a synthesis. `text` is the input the timestamps point into.
 * @param maxChars most characters per cue (line break excluded); a single longer word gets a cue of its own.
 */
export function buildCues(ts: Timestamps, text: string, maxChars: number = DEFAULT_MAX_CUE_CHARS): Cue[] {
  const cues: Cue[] = [];
  for (const s of ts.sentences) {
    const words = s.words.map((w) => ({ w, shown: shownWord(text, w) })).filter((x) => x.shown !== '');
    let cur: typeof words = [];
    const len = (ws: typeof words): number => ws.reduce((a, x) => a + x.shown.length, 0) + Math.max(0, ws.length - 1);
    const flush = (ws: typeof words): void => {
      if (ws.length === 0) return;
      const line = ws.map((x) => x.shown).join(' ');
      cues.push({ startSec: ws[0]!.w.startSec, endSec: ws[ws.length - 1]!.w.endSec, text: wrapCue(line, maxChars) });
    };
    for (const x of words) {
      if (cur.length > 0 && len([...cur, x]) > maxChars) {
        // Cut after the last phrase end that leaves at least a third of a cue, else before this word.
        let cut = cur.length;
        for (let i = cur.length - 1; i > 0; i--) {
          if (PHRASE_END.test(cur[i - 1]!.shown) && len(cur.slice(0, i)) >= maxChars / 3) {
            cut = i;
            break;
          }
        }
        flush(cur.slice(0, cut));
        cur = cur.slice(cut);
      }
      cur.push(x);
    }
    flush(cur);
  }
  return cues;
}

function clock(seconds: number, sep: ',' | '.'): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(ms % 1000, 3)}`;
}

/** SubRip text. */
export function formatSrt(cues: readonly Cue[]): string {
  return cues.map((c, i) => `${i + 1}\n${clock(c.startSec, ',')} --> ${clock(c.endSec, ',')}\n${c.text}\n`).join('\n');
}

/** WebVTT text; estimated timings are said so in a NOTE block (SRT has no place for it). */
export function formatVtt(cues: readonly Cue[], estimated: boolean): string {
  const note = estimated ? 'NOTE estimated: true — the model reports no durations; cue times are shared out by phoneme counts\n\n' : '';
  return `WEBVTT\n\n${note}${cues.map((c) => `${clock(c.startSec, '.')} --> ${clock(c.endSec, '.')}\n${c.text}\n`).join('\n')}`;
}

/** The subtitle format of a path (`.srt` / `.vtt`), or undefined. */
export function subtitleFormatOf(path: string): SubtitleFormat | undefined {
  const m = /\.(srt|vtt)$/i.exec(path);
  return m ? (m[1]!.toLowerCase() as SubtitleFormat) : undefined;
}

/**
 * Subtitles in a format. `untilSec` cuts them at a length (a narrated video shorter than the speech): later cues
 * are dropped, one running past it ends there.
 */
export function formatSubtitles(ts: Timestamps, text: string, format: SubtitleFormat, maxChars?: number, untilSec?: number): { content: string; cues: number } {
  let cues = buildCues(ts, text, maxChars);
  if (untilSec !== undefined) cues = cues.filter((c) => c.startSec < untilSec).map((c) => ({ ...c, endSec: Math.min(c.endSec, untilSec) }));
  return { content: format === 'srt' ? formatSrt(cues) : formatVtt(cues, ts.estimated), cues: cues.length };
}
