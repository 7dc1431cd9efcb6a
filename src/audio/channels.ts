/**
 * Channel adaptation between a file's layout and what a model expects.
 *
 * Downmix of more than two channels (ITU-R BS.775 style, WAVE/SMPTE channel order assumed from the count):
 *   L = (FL + a·FC + a·BL + a·SL) / (1 + a·nC + a·nL),   R likewise,   a = 1/√2, LFE dropped,
 * where nC is 1 when a centre exists and nL the number of left surrounds. Dividing by the sum of the
 * coefficients keeps full-scale input at or below full scale (ffmpeg's `-ac 2` normalises the same way).
 * Layouts by count: 3 = FL FR FC; 4 = FL FR BL BR; 5 = FL FR FC BL BR; 6 = FL FR FC LFE BL BR (5.1);
 * 7 = FL FR FC LFE BC SL SR (6.1, BC feeds both sides); 8 = FL FR FC LFE BL BR SL SR (7.1).
 * More than 8 channels have no standard layout: the first two channels are used (as demucs does).
 */
import type { RawAudio } from './raw-audio.js';

const A = Math.SQRT1_2;

interface Row {
  /** [channel index, coefficient] pairs feeding one output side. */
  terms: Array<[number, number]>;
}

/** Left and right downmix rows by input channel count (indices into the planar channels). */
const LAYOUTS: Record<number, [Row, Row]> = {
  3: [{ terms: [[0, 1], [2, A]] }, { terms: [[1, 1], [2, A]] }],
  4: [{ terms: [[0, 1], [2, A]] }, { terms: [[1, 1], [3, A]] }],
  5: [{ terms: [[0, 1], [2, A], [3, A]] }, { terms: [[1, 1], [2, A], [4, A]] }],
  6: [{ terms: [[0, 1], [2, A], [4, A]] }, { terms: [[1, 1], [2, A], [5, A]] }],
  7: [{ terms: [[0, 1], [2, A], [4, A], [5, A]] }, { terms: [[1, 1], [2, A], [4, A], [6, A]] }],
  8: [{ terms: [[0, 1], [2, A], [4, A], [6, A]] }, { terms: [[1, 1], [2, A], [5, A], [7, A]] }],
};

/** The downmix coefficients used for `channels` inputs: [left row, right row], each a list of [index, gain]. */
export function downmixMatrix(channels: number): [Array<[number, number]>, Array<[number, number]>] {
  const rows = LAYOUTS[channels];
  if (rows === undefined) return [[[0, 1]], [[1, 1]]];
  return rows.map((r) => {
    const sum = r.terms.reduce((s, [, g]) => s + g, 0);
    return r.terms.map(([i, g]) => [i, g / sum] as [number, number]);
  }) as [Array<[number, number]>, Array<[number, number]>];
}

function mixRow(channels: Float32Array[], terms: Array<[number, number]>, frames: number): Float32Array {
  const out = new Float32Array(frames);
  for (const [idx, g] of terms) {
    const src = channels[idx]!;
    for (let i = 0; i < frames; i++) out[i] = out[i]! + g * src[i]!;
  }
  return out;
}

/**
 * Returns two channels: mono is duplicated (the copy is a separate array), stereo is returned as is,
 * more channels are downmixed as described in the module comment.
 */
export function toStereo(block: RawAudio): RawAudio {
  const n = block.channels.length;
  if (n === 2) return block;
  if (n === 0) throw new RangeError('toStereo: block has no channels');
  const first = block.channels[0]!;
  if (n === 1) return { channels: [first, first.slice()], sampleRate: block.sampleRate };
  const frames = first.length;
  const [l, r] = downmixMatrix(n);
  return { channels: [mixRow(block.channels, l, frames), mixRow(block.channels, r, frames)], sampleRate: block.sampleRate };
}

/** Returns one channel: the mean of the stereo version ((L + R) / 2 for stereo; mono as is). */
export function downmixToMono(block: RawAudio): RawAudio {
  if (block.channels.length === 1) return block;
  const st = toStereo(block);
  const l = st.channels[0]!;
  const r = st.channels[1]!;
  const out = new Float32Array(l.length);
  for (let i = 0; i < out.length; i++) out[i] = 0.5 * (l[i]! + r[i]!);
  return { channels: [out], sampleRate: block.sampleRate };
}

/**
 * Adapts a block to `n` channels: 1 → downmixToMono, 2 → toStereo, unchanged when equal.
 * For n > 2: mono is copied into every channel; otherwise the first n channels are kept and missing
 * channels are silent (no model in stemkit needs more than two, so this only keeps the function total).
 */
export function adaptChannels(block: RawAudio, n: number): RawAudio {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`adaptChannels: invalid channel count ${n}`);
  const have = block.channels.length;
  if (have === n) return block;
  if (n === 1) return downmixToMono(block);
  if (n === 2) return toStereo(block);
  const frames = block.channels[0]?.length ?? 0;
  const channels = Array.from({ length: n }, (_, i) => {
    if (have === 1) return block.channels[0]!.slice();
    return i < have ? block.channels[i]! : new Float32Array(frames);
  });
  return { channels, sampleRate: block.sampleRate };
}
