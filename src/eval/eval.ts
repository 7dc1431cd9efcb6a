/**
 * `stemkit eval`: scores separations against reference stems (MUSDB18-HQ layout), streaming every
 * file in blocks, with the mixture-as-estimate and oracle ideal-ratio-mask baselines.
 */
import { join } from 'node:path';
import type { AudioSource } from '../audio/raw-audio.js';
import { openAudioSource } from '../audio/open.js';
import { DataError, InputError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';
import { audioFilesIn, findReferenceTracks, type TrackFiles } from './layout.js';
import { PairAccumulator, isSilent, mean, median } from './metrics.js';
import { oracleIrm, ORACLE_STFT } from './oracle.js';

export type Baseline = 'mixture' | 'oracle-irm';
export const BASELINES: readonly Baseline[] = ['mixture', 'oracle-irm'];

export interface EvaluateOptions extends Observer {
  referenceDir: string;
  /** Folder with `<track>/<stem>.*` estimates; omit to score only baselines. */
  estimatesDir?: string | undefined;
  /** Name of the estimates in the report (a model id, or 'estimates'). */
  systemName?: string;
  /** Score only these reference stems (default: all). */
  stems?: readonly string[] | undefined;
  /** reference stem → estimate stem file name */
  map?: Record<string, string>;
  baselines?: readonly Baseline[];
  ffmpegPath?: string | undefined;
  ffprobePath?: string | undefined;
}

export interface StemScore {
  system: string;
  stem: string;
  sdr: number;
  siSdr: number;
  /** Improvement over the mixture-as-estimate baseline, in dB. */
  sdrImprovement: number;
  siSdrImprovement: number;
  /** The reference is (near) digital silence: reported but left out of the aggregates. */
  silent: boolean;
}

export interface TrackReport {
  track: string;
  sampleRate: number;
  channels: number;
  frames: number;
  scores: StemScore[];
  /** Stems whose estimate file was not found. */
  missing: string[];
  /** Files longer than the common length, trimmed before scoring. */
  trimmed: Array<{ file: string; frames: number }>;
}

export interface AggregateRow {
  system: string;
  stem: string;
  count: number;
  sdrMean: number;
  sdrMedian: number;
  siSdrMean: number;
  siSdrMedian: number;
  sdrImprovementMean: number;
  siSdrImprovementMean: number;
}

export interface EvalReport {
  referenceDir: string;
  estimatesDir: string | undefined;
  systems: string[];
  tracks: TrackReport[];
  aggregate: AggregateRow[];
  missing: Array<{ track: string; stem: string }>;
  oracleStft: typeof ORACLE_STFT | undefined;
}

const BLOCK = 1 << 16;

/** Pulls exactly-sized blocks from a source (sources may return shorter blocks). */
class BlockReader {
  private pending: Float32Array[] | undefined;
  private offset = 0;
  private ended = false;
  constructor(readonly source: AudioSource) {}

  async read(frames: number): Promise<Float32Array[]> {
    const channels = this.source.info.channels;
    const out = Array.from({ length: channels }, () => new Float32Array(frames));
    let filled = 0;
    while (filled < frames) {
      if (!this.pending || this.offset >= (this.pending[0]?.length ?? 0)) {
        if (this.ended) break;
        const block = await this.source.read(Math.max(frames - filled, 4096));
        if (!block) {
          this.ended = true;
          break;
        }
        this.pending = block.channels;
        this.offset = 0;
        continue;
      }
      const take = Math.min(frames - filled, this.pending[0]!.length - this.offset);
      for (let c = 0; c < channels; c++) out[c]!.set(this.pending[c]!.subarray(this.offset, this.offset + take), filled);
      this.offset += take;
      filled += take;
    }
    return filled === frames ? out : out.map((ch) => ch.subarray(0, filled));
  }
}

interface OpenedTrack {
  mixture: AudioSource;
  refs: Record<string, AudioSource>;
  ests: Record<string, AudioSource>;
}

async function closeAll(t: Partial<OpenedTrack>): Promise<void> {
  const all = [t.mixture, ...Object.values(t.refs ?? {}), ...Object.values(t.ests ?? {})];
  await Promise.all(all.map((s) => s?.close().catch(() => undefined)));
}

/** Scores one track: every estimate and every baseline against every reference stem. */
async function scoreTrack(track: TrackFiles, opts: EvaluateOptions, systemName: string): Promise<TrackReport> {
  const audioOpts = { ffmpegPath: opts.ffmpegPath, ffprobePath: opts.ffprobePath, signal: opts.signal };
  const open = (p: string): Promise<AudioSource> =>
    openAudioSource(p, Object.fromEntries(Object.entries(audioOpts).filter(([, v]) => v !== undefined)));
  if (!track.mixture) throw new InputError(`track "${track.name}" has no mixture file`, { hint: `Add ${join(track.dir, 'mixture.wav')} (or .flac).` });
  const estFiles = opts.estimatesDir ? estimateFiles(opts.estimatesDir, track.name) : {};
  const map = opts.map ?? {};
  const stems = Object.keys(track.stems);
  const missing = opts.estimatesDir ? stems.filter((s) => (!opts.stems || opts.stems.includes(s)) && !estFiles[map[s] ?? s]) : [];

  const opened: Partial<OpenedTrack> = { refs: {}, ests: {} };
  try {
    opened.mixture = await open(track.mixture);
    for (const s of stems) opened.refs![s] = await open(track.stems[s]!);
    for (const s of stems) {
      const f = estFiles[map[s] ?? s];
      if (f) opened.ests![s] = await open(f);
    }
    const { sampleRate, channels } = opened.mixture.info;
    const files: Array<[string, AudioSource]> = [
      [track.mixture, opened.mixture],
      ...stems.map((s): [string, AudioSource] => [track.stems[s]!, opened.refs![s]!]),
      ...Object.entries(opened.ests!).map(([s, src]): [string, AudioSource] => [estFiles[map[s] ?? s]!, src]),
    ];
    for (const [file, src] of files) {
      if (src.info.sampleRate !== sampleRate) {
        throw new DataError(`${file}: sample rate ${src.info.sampleRate} Hz differs from the mixture's ${sampleRate} Hz`, {
          code: 'E_EVAL_MISMATCH',
          hint: 'Write estimates at the reference rate (stemkit separate keeps the input rate by default).',
        });
      }
      if (src.info.channels !== channels) {
        throw new DataError(`${file}: ${src.info.channels} channel(s), but the mixture has ${channels}`, {
          code: 'E_EVAL_MISMATCH',
          hint: 'Estimates and references must have the same channel count.',
        });
      }
    }
    const readers = new Map<AudioSource, BlockReader>(files.map(([, s]) => [s, new BlockReader(s)]));
    const wanted = opts.stems ? stems.filter((s) => opts.stems!.includes(s)) : stems;
    const accEst: Record<string, PairAccumulator> = {};
    const accMix: Record<string, PairAccumulator> = {};
    for (const s of wanted) {
      accMix[s] = new PairAccumulator();
      if (opened.ests![s]) accEst[s] = new PairAccumulator();
    }
    // One pass over every file at once; the common length is where the first file ends (lengths are not
    // always known up front: ffmpeg-decoded inputs report an estimate at best).
    const expected = opened.mixture.info.frames ?? 0;
    let frames = 0;
    for (;;) {
      throwIfAborted(opts.signal);
      const blocks = new Map<AudioSource, Float32Array[]>();
      for (const [, src] of files) blocks.set(src, await readers.get(src)!.read(BLOCK));
      const n = Math.min(...[...blocks.values()].map((b) => b[0]?.length ?? 0));
      const cut = (b: Float32Array[]): Float32Array[] => (b[0]!.length === n ? b : b.map((c) => c.subarray(0, n)));
      const mix = cut(blocks.get(opened.mixture)!);
      for (const s of wanted) {
        const ref = cut(blocks.get(opened.refs![s]!)!);
        accMix[s]!.add(ref, mix);
        const est = opened.ests![s];
        if (est) accEst[s]!.add(ref, cut(blocks.get(est)!));
      }
      frames += n;
      opts.onProgress?.({ stage: 'eval', status: 'progress', file: track.name, done: frames, total: Math.max(expected, frames), unit: 'frames' });
      if (n < BLOCK) {
        // Whatever the other files still hold past the common length is trimmed: count it for the report.
        const trimmed: Array<{ file: string; frames: number }> = [];
        for (const [file, src] of files) {
          let extra = (blocks.get(src)![0]?.length ?? 0) - n;
          for (;;) {
            const more = (await readers.get(src)!.read(BLOCK))[0]?.length ?? 0;
            extra += more;
            if (more < BLOCK) break;
          }
          if (extra > 0) trimmed.push({ file, frames: extra });
        }
        return finishTrack(track, opts, systemName, wanted, missing, trimmed, frames, sampleRate, channels, accEst, accMix, open);
      }
    }
  } finally {
    await closeAll(opened);
  }
}

async function finishTrack(
  track: TrackFiles,
  opts: EvaluateOptions,
  systemName: string,
  stems: readonly string[],
  missing: string[],
  trimmed: Array<{ file: string; frames: number }>,
  frames: number,
  sampleRate: number,
  channels: number,
  accEst: Record<string, PairAccumulator>,
  accMix: Record<string, PairAccumulator>,
  open: (p: string) => Promise<AudioSource>,
): Promise<TrackReport> {
  const scores: StemScore[] = [];
  const push = (system: string, stem: string, acc: PairAccumulator): void => {
    const base = accMix[stem]!;
    scores.push({
      system,
      stem,
      sdr: acc.sdr(),
      siSdr: acc.siSdr(),
      sdrImprovement: acc.sdr() - base.sdr(),
      siSdrImprovement: acc.siSdr() - base.siSdr(),
      silent: isSilent(base, channels),
    });
  };
  for (const s of stems) if (accEst[s]) push(systemName, s, accEst[s]!);
  if (opts.baselines?.includes('mixture')) for (const s of stems) push('mixture', s, accMix[s]!);
  if (opts.baselines?.includes('oracle-irm')) {
    const oracle = await oracleIrm(track, stems, frames, open, opts.signal);
    for (const s of stems) push('oracle-irm', s, oracle[s]!);
  }
  return { track: track.name, sampleRate, channels, frames, scores, missing, trimmed };
}

function estimateFiles(estimatesDir: string, track: string): Record<string, string> {
  try {
    return audioFilesIn(join(estimatesDir, track));
  } catch {
    return {};
  }
}

export function aggregate(tracks: readonly TrackReport[]): AggregateRow[] {
  const groups = new Map<string, StemScore[]>();
  for (const t of tracks) {
    for (const s of t.scores) {
      if (s.silent) continue;
      const key = `${s.system}\u0000${s.stem}`;
      const list = groups.get(key) ?? [];
      list.push(s);
      groups.set(key, list);
    }
  }
  return [...groups.entries()].map(([key, list]) => {
    const [system, stem] = key.split('\u0000') as [string, string];
    return {
      system,
      stem,
      count: list.length,
      sdrMean: mean(list.map((s) => s.sdr)),
      sdrMedian: median(list.map((s) => s.sdr)),
      siSdrMean: mean(list.map((s) => s.siSdr)),
      siSdrMedian: median(list.map((s) => s.siSdr)),
      sdrImprovementMean: mean(list.map((s) => s.sdrImprovement)),
      siSdrImprovementMean: mean(list.map((s) => s.siSdrImprovement)),
    };
  });
}

/** Scores every track of a reference folder. */
export async function evaluate(opts: EvaluateOptions): Promise<EvalReport> {
  const tracks = findReferenceTracks(opts.referenceDir);
  const systemName = opts.systemName ?? 'estimates';
  const reports: TrackReport[] = [];
  for (const [i, t] of tracks.entries()) {
    opts.onProgress?.({ stage: 'batch', status: i === 0 ? 'start' : 'progress', done: i, total: tracks.length, unit: 'tracks' });
    reports.push(await scoreTrack(t, opts, systemName));
  }
  opts.onProgress?.({ stage: 'batch', status: 'done', done: tracks.length, total: tracks.length, unit: 'tracks' });
  const systems = [...new Set(reports.flatMap((r) => r.scores.map((s) => s.system)))];
  return {
    referenceDir: opts.referenceDir,
    estimatesDir: opts.estimatesDir,
    systems,
    tracks: reports,
    aggregate: aggregate(reports),
    missing: reports.flatMap((r) => r.missing.map((stem) => ({ track: r.track, stem }))),
    oracleStft: opts.baselines?.includes('oracle-irm') ? ORACLE_STFT : undefined,
  };
}
