/**
 * The oracle ideal-ratio-mask baseline: the best a magnitude mask on this STFT could do, given the
 * true stems. Per stem k the mask is |S_k| / (|S_k| + |X − S_k|), target against the rest of the mix X,
 * applied to X's STFT. Masking against "the rest" rather than Σ_j |S_j| keeps the baseline right when a
 * dataset's stems overlap (a 4-stem `other` that is piano + guitar + other6, as in 6-stem sets).
 * It needs every stem of one track in memory (one track at a time), unlike the streaming metrics.
 */
import type { AudioSource } from '../audio/raw-audio.js';
import { hannPeriodic } from '../dsp/windows.js';
import { istft, stft, type StftOptions } from '../dsp/stft.js';
import { throwIfAborted } from '../errors.js';
import type { TrackFiles } from './layout.js';
import { PairAccumulator } from './metrics.js';

/** The STFT the oracle uses (stated in reports so numbers are comparable). */
export const ORACLE_STFT = { nFft: 4096, hop: 1024, window: 'hann-periodic', center: true, mask: '|S_k| / (|S_k| + |X - S_k|)' } as const;

async function readChannels(source: AudioSource, frames: number): Promise<Float32Array[]> {
  const out = Array.from({ length: source.info.channels }, () => new Float32Array(frames));
  let filled = 0;
  while (filled < frames) {
    const block = await source.read(Math.min(1 << 16, frames - filled));
    if (!block) break;
    const n = Math.min(block.channels[0]?.length ?? 0, frames - filled);
    for (let c = 0; c < out.length; c++) out[c]!.set(block.channels[c]!.subarray(0, n), filled);
    filled += n;
  }
  return out;
}

export async function oracleIrm(
  track: TrackFiles,
  stems: readonly string[],
  frames: number,
  open: (path: string) => Promise<AudioSource>,
  signal: AbortSignal | undefined,
): Promise<Record<string, PairAccumulator>> {
  const load = async (path: string): Promise<Float32Array[]> => {
    const src = await open(path);
    try {
      return await readChannels(src, frames);
    } finally {
      await src.close();
    }
  };
  const mixture = await load(track.mixture!);
  const refs: Record<string, Float32Array[]> = {};
  for (const s of stems) refs[s] = await load(track.stems[s]!);
  const opts: StftOptions = { nFft: ORACLE_STFT.nFft, hop: ORACLE_STFT.hop, window: hannPeriodic(ORACLE_STFT.nFft), center: true };
  const acc: Record<string, PairAccumulator> = Object.fromEntries(stems.map((s) => [s, new PairAccumulator()]));
  for (let c = 0; c < mixture.length; c++) {
    throwIfAborted(signal);
    const x = stft(mixture[c]!, opts);
    for (const s of stems) {
      const S = stft(refs[s]![c]!, opts);
      const re = new Float32Array(x.re.length);
      const im = new Float32Array(x.im.length);
      for (let i = 0; i < re.length; i++) {
        const target = Math.hypot(S.re[i]!, S.im[i]!);
        const rest = Math.hypot(x.re[i]! - S.re[i]!, x.im[i]! - S.im[i]!);
        // Where target and rest are both silent the mask is undefined and the mixture bin is zero anyway.
        const g = target + rest > 1e-12 ? target / (target + rest) : 0;
        re[i] = x.re[i]! * g;
        im[i] = x.im[i]! * g;
      }
      const est = istft({ re, im, bins: x.bins, frames: x.frames }, { ...opts, length: frames });
      acc[s]!.add([refs[s]![c]!], [est]);
    }
  }
  return acc;
}
