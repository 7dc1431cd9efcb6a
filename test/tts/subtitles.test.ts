import { describe, expect, it } from 'vitest';
import { buildCues, formatSrt, formatVtt, wrapCue } from '../../src/tts/subtitles.js';
import type { Timestamps } from '../../src/tts/timing.js';

/** Timestamps for `text` with each word lasting 0.5 s, sentences split where the text has `|`. */
function fake(text: string): { ts: Timestamps; input: string } {
  const input = text.replace(/\|/g, ' ');
  let t = 0;
  const sentences = text.split('|').map((part, k, all) => {
    const offset = all.slice(0, k).reduce((a, p) => a + p.length + 1, 0);
    const words = [...part.matchAll(/[\p{L}\p{N}$.']+(?<![.])/gu)].map((m) => {
      const w = { text: m[0], start: offset + m.index, end: offset + m.index + m[0].length, startSec: t, endSec: t + 0.5, estimated: false };
      t += 0.5;
      return w;
    });
    return { text: part, start: offset, end: offset + part.length, startSec: words[0]!.startSec, endSec: words[words.length - 1]!.endSec, estimated: false, words, phonemes: [] };
  });
  return { ts: { version: 1, sampleRate: 24000, durationSec: t, estimated: false, sentences }, input };
}

describe('buildCues', () => {
  it('cuts a long sentence after a phrase end, never across sentences, each cue ≤ N characters', () => {
    const { ts, input } = fake('One two three, four five six seven eight.|Nine ten.');
    const cues = buildCues(ts, input, 30);
    expect(cues.map((c) => c.text.replace('\n', ' '))).toEqual(['One two three,', 'four five six seven eight.', 'Nine ten.']);
    expect(cues.map((c) => [c.startSec, c.endSec])).toEqual([[0, 1.5], [1.5, 4], [4, 5]]);
  });

  it('cuts between words when no phrase end leaves a third of a cue; a word longer than N gets a cue alone', () => {
    const { ts, input } = fake('A, bb cc dd ee ff gg Supercalifragilistic hh');
    const cues = buildCues(ts, input, 12);
    expect(cues.map((c) => c.text.replace('\n', ' '))).toEqual(['A, bb cc dd', 'ee ff gg', 'Supercalifragilistic', 'hh']);
  });

  it('wraps a cue longer than half the limit into two lines at the gap nearest the middle', () => {
    expect(wrapCue('short one', 40)).toBe('short one');
    expect(wrapCue('this line is rather long for one', 40)).toBe('this line is rather\nlong for one');
  });
});

describe('formatSrt / formatVtt', () => {
  const cues = [
    { startSec: 0.0293, endSec: 1.5, text: 'Hello world,' },
    { startSec: 3661.0019, endSec: 3662.25, text: 'two\nlines' },
  ];
  it('SRT: numbered cues, comma milliseconds', () => {
    expect(formatSrt(cues)).toBe('1\n00:00:00,029 --> 00:00:01,500\nHello world,\n\n2\n01:01:01,002 --> 01:01:02,250\ntwo\nlines\n');
  });
  it('VTT: header, dot milliseconds, a NOTE when estimated', () => {
    expect(formatVtt(cues, false)).toBe('WEBVTT\n\n00:00:00.029 --> 00:00:01.500\nHello world,\n\n01:01:01.002 --> 01:01:02.250\ntwo\nlines\n');
    expect(formatVtt(cues, true)).toMatch(/^WEBVTT\n\nNOTE estimated: true — .*\n\n00:00:00\.029/);
  });
});
