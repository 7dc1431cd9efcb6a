/**
 * One TTS job end to end (text → model → sink) with per-phase timing, a sink that streams 16-bit PCM or
 * WAV to a pipe (stdout), and the JSONL batch format.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { AudioSink, RawAudio } from '../audio/raw-audio.js';
import { assertFinite } from '../audio/guard.js';
import { encodeInterleaved } from '../audio/wav.js';
import { DataError, OutputError, isStemkitError } from '../errors.js';
import type { Observer } from '../progress.js';
import { createResampler, type Resampler } from '../dsp/resample.js';
import { loadSimdFft } from '../dsp/fft-simd.js';
import type { SynthesisStats, SynthesizeOptions, TtsModel } from './synthesize.js';
import { sec, sentenceTimestamps, type SentenceTimestamps, type Timestamps } from './timing.js';

/** Seconds per phase. `load` is the model load (shared by a batch; 0 for later jobs of a batch). */
export interface TtsTimes {
  load: number;
  phonemize: number;
  infer: number;
  write: number;
  /** Wall time of the job, load excluded. */
  total: number;
}

export interface TtsJobResult {
  status: 'ok' | 'failed';
  /** Output path, or `-` for stdout. */
  output: string;
  model: string;
  voice: string | undefined;
  characters: number;
  sentences: number;
  /** Seconds of audio written. */
  durationSec: number;
  sampleRate: number;
  times: TtsTimes;
  /** Characters per second of processing time (load excluded). */
  charsPerSec: number;
  /** Real-time factor: processing time (load excluded) ÷ audio duration; < 1 is faster than real time. */
  rtf: number;
  provider: string;
  threads: number;
  stats?: SynthesisStats;
  /** When asked for (`timestamps: true` or `onSentence`): when each sentence, word and phoneme is spoken in the output. */
  timestamps?: Timestamps;
  error?: { code: string; message: string; hint?: string | undefined; exitCode: number };
}

/** Options of one job on top of the synthesis options. */
export interface SinkJobOptions extends SynthesizeOptions {
  /** Model load seconds to report (0 for later jobs of a batch). */
  loadSeconds?: number;
  /** Resample to this rate before the sink (the sink must be opened at it). Default: the model's rate. */
  outputRate?: number;
  /** Collect timestamps into the result. */
  timestamps?: boolean;
  /** Called with each sentence's timestamps once its audio has been handed to the sink (streaming). */
  onSentence?: (s: SentenceTimestamps) => void;
}

const now = (): number => performance.now() / 1000;

/**
 * Synthesises `text` into `sink` (finishing or aborting it) and reports timing.
 * Errors propagate after the sink is aborted; nothing half-written keeps the final name.
 */
export async function synthesizeToSink(model: TtsModel, text: string, sink: AudioSink, opts: SinkJobOptions = {}): Promise<TtsJobResult> {
  const t0 = now();
  let write = 0;
  const { loadSeconds, outputRate, timestamps: wantTimestamps, onSentence, ...synthOpts } = opts;
  const rate = model.sampleRate;
  // float32 (both stages in WASM, dsp/resample.ts): the voices' audio is float32, and that resampler's passband,
  // images and aliases stay below soxr's at a third of the float64 one's time.
  const resampling = outputRate !== undefined && outputRate !== rate;
  if (resampling) await loadSimdFft();
  const resampler: Resampler | undefined = resampling ? createResampler(rate, outputRate, 1, { precision: 'float32' }) : undefined;
  const run = model.synthesize(text, synthOpts);
  const sentences: SentenceTimestamps[] = [];
  // Samples (model rate) before the current block: times are model-rate sample counts over the model rate,
  // which the resampler (zero group delay, dsp/resample.ts) keeps true at any output rate.
  let offset = 0;
  let frames = 0;
  try {
    for await (const block of run) {
      // Model output leaving the engine: NaN/Inf would be written as silence or clicks under a success.
      assertFinite(block, `model ${model.id} produced broken audio`, frames, 'the model file may be damaged; re-download it (stemkit models verify) or try another voice', 'E_MODEL_NONFINITE');
      frames += block.channels[0]?.length ?? 0;
      const w0 = now();
      await sink.write(resampler ? { channels: resampler.process(block.channels), sampleRate: outputRate! } : block);
      write += now() - w0;
      if (wantTimestamps || onSentence) {
        const st = sentenceTimestamps(text, block.timing, offset, rate);
        if (wantTimestamps) sentences.push(st);
        onSentence?.(st);
      }
      offset += block.channels[0]!.length;
    }
    const w0 = now();
    if (resampler) await sink.write({ channels: resampler.flush(), sampleRate: outputRate! });
    await sink.finish();
    write += now() - w0;
  } catch (e) {
    await sink.abort().catch(() => undefined);
    throw e;
  }
  const total = now() - t0;
  const s = run.stats;
  const durationSec = s.samples / s.sampleRate;
  const outRate = outputRate ?? s.sampleRate;
  return {
    status: 'ok',
    output: sink.path,
    model: model.id,
    voice: model.kind === 'kokoro' ? opts.voice : opts.speaker === undefined ? undefined : String(opts.speaker),
    characters: s.characters,
    sentences: s.sentences,
    durationSec,
    sampleRate: outRate,
    times: { load: loadSeconds ?? 0, phonemize: s.phonemizeSec, infer: s.inferSec, write, total },
    charsPerSec: total > 0 ? s.characters / total : 0,
    rtf: durationSec > 0 ? total / durationSec : 0,
    provider: model.provider,
    threads: model.threads,
    stats: s,
    ...(wantTimestamps
      ? { timestamps: { version: 1, sampleRate: outRate, durationSec: sec(s.samples, s.sampleRate), estimated: sentences.some((x) => x.estimated), sentences } satisfies Timestamps }
      : {}),
  };
}

/** A failed job's result record (for batches and --json). */
export function failedJob(output: string, model: TtsModel | undefined, error: unknown): TtsJobResult {
  const e = isStemkitError(error)
    ? { code: error.code, message: error.message, hint: error.hint, exitCode: error.exitCode }
    : { code: 'E_INTERNAL', message: error instanceof Error ? error.message : String(error), exitCode: 70 };
  return {
    status: 'failed',
    output,
    model: model?.id ?? '',
    voice: undefined,
    characters: 0,
    sentences: 0,
    durationSec: 0,
    sampleRate: model?.sampleRate ?? 0,
    times: { load: 0, phonemize: 0, infer: 0, write: 0, total: 0 },
    charsPerSec: 0,
    rtf: 0,
    provider: model?.provider ?? '',
    threads: model?.threads ?? 0,
    error: e,
  };
}

/** A 44-byte PCM WAV header. With `frames` undefined the sizes are the maximum (a stream of unknown length). */
export function wavHeader(sampleRate: number, channels: number, frames?: number): Uint8Array {
  const b = new Uint8Array(44);
  const v = new DataView(b.buffer);
  const data = frames === undefined ? 0xffffffff - 36 : frames * channels * 2;
  b.set([0x52, 0x49, 0x46, 0x46], 0); // RIFF
  v.setUint32(4, frames === undefined ? 0xffffffff : 36 + data, true);
  b.set([0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20], 8); // WAVEfmt␠
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  b.set([0x64, 0x61, 0x74, 0x61], 36); // data
  v.setUint32(40, data, true);
  return b;
}

/** Float → interleaved 16-bit little-endian PCM (×32768, clamped: the WAV writer's rule and code). */
export function toPcm16(block: RawAudio): Uint8Array {
  return encodeInterleaved(block.channels, 16, block.channels[0]?.length ?? 0);
}

/**
 * A sink that streams audio to a pipe as it is produced, sentence by sentence: raw 16-bit PCM
 * (`raw`, like piper's --output-raw) or a WAV whose header carries the maximum sizes (`wav`), since a
 * pipe cannot be rewound to patch them. Players (ffplay, aplay, sox) accept such headers.
 */
export function createStreamSink(stream: Writable, o: { format: 'raw' | 'wav'; sampleRate: number; channels: number }): AudioSink {
  let started = false;
  let failed: unknown;
  const onError = (e: unknown): void => {
    failed ??= e;
  };
  stream.on('error', onError);
  const put = async (bytes: Uint8Array): Promise<void> => {
    if (failed) throw streamFailed(failed);
    if (!stream.write(bytes)) {
      try {
        // events.once rejects when the stream emits 'error' first (e.g. EPIPE when the reader exits).
        await once(stream, 'drain');
      } catch (e) {
        throw streamFailed(e);
      }
    }
    if (failed) throw streamFailed(failed);
  };
  return {
    path: '-',
    async write(block) {
      if (!started) {
        started = true;
        if (o.format === 'wav') await put(wavHeader(o.sampleRate, o.channels));
      }
      await put(toPcm16(block));
    },
    async finish() {
      if (!started && o.format === 'wav') await put(wavHeader(o.sampleRate, o.channels, 0));
      stream.off('error', onError);
    },
    async abort() {
      stream.off('error', onError);
    },
  };
}

function streamFailed(cause: unknown): OutputError {
  const code = (cause as { code?: string } | undefined)?.code;
  return new OutputError(code === 'EPIPE' ? 'the program reading stdout closed the pipe' : `cannot write to stdout: ${(cause as Error)?.message ?? String(cause)}`, {
    code: 'E_OUTPUT',
    cause,
    hint: 'Keep the reading program running until stemkit ends, or write to a file with -o.',
  });
}

/** One line of a `--jsonl` batch. */
export interface TtsBatchJob
  extends Pick<SynthesizeOptions, 'voice' | 'speed' | 'speaker' | 'lengthScale' | 'noiseScale' | 'noiseW' | 'sentenceSilence' | 'lang'> {
  /** 1-based line number in the JSONL file. */
  line: number;
  text?: string;
  file?: string;
  output: string;
  /** Timing outputs (outputs.ts): a timestamps JSON path, an .srt/.vtt path, the cue length. */
  timestamps?: string;
  subtitles?: string;
  maxCueChars?: number;
}

export type ParsedJobLine = { ok: true; job: TtsBatchJob } | { ok: false; line: number; output: string; error: DataError };

const JOB_KEYS = new Set(['text', 'file', 'output', 'timestamps', 'subtitles', 'maxCueChars', 'voice', 'speed', 'speaker', 'lengthScale', 'noiseScale', 'noiseW', 'sentenceSilence', 'lang']);

/**
 * Parses a JSONL batch: one object per non-empty line with `text` or `file`, `output`, and optional
 * `voice`, `speed`, `speaker`, `lengthScale`, `noiseScale`, `noiseW`, `sentenceSilence`, `lang`, and the timing
 * outputs `timestamps` (a .json path), `subtitles` (an .srt/.vtt path) and `maxCueChars`.
 * A bad line becomes a failed entry (DataError 65) so the other lines still run.
 */
export function parseJobLines(content: string, source: string): ParsedJobLine[] {
  const out: ParsedJobLine[] = [];
  content.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const fail = (why: string, output = ''): void => {
      out.push({ ok: false, line, output, error: new DataError(`${source}:${line}: ${why}`, { code: 'E_BAD_JOB', hint: 'Each line: {"text": "...", "output": "out.wav"} or {"file": "in.txt", "output": "out.mp3"}, optional voice/speed/speaker.' }) });
    };
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      fail(`not valid JSON (${(e as Error).message})`);
      return;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('expected a JSON object');
    const o = v as Record<string, unknown>;
    const output = typeof o['output'] === 'string' ? o['output'] : '';
    const unknown = Object.keys(o).filter((k) => !JOB_KEYS.has(k));
    if (unknown.length) return fail(`unknown key(s) ${unknown.join(', ')}`, output);
    if (output === '') return fail('"output" (a file path) is required', output);
    const hasText = typeof o['text'] === 'string';
    const hasFile = typeof o['file'] === 'string';
    if (hasText === hasFile) return fail('give exactly one of "text" or "file"', output);
    const job: TtsBatchJob = { line, output };
    if (hasText) job.text = o['text'] as string;
    if (hasFile) job.file = o['file'] as string;
    for (const k of ['voice', 'lang', 'timestamps', 'subtitles'] as const) {
      if (o[k] !== undefined) {
        if (typeof o[k] !== 'string') return fail(`"${k}" must be a string`, output);
        job[k] = o[k];
      }
    }
    for (const k of ['speed', 'lengthScale', 'noiseScale', 'noiseW', 'sentenceSilence'] as const) {
      if (o[k] !== undefined) {
        if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) return fail(`"${k}" must be a number`, output);
        job[k] = o[k];
      }
    }
    if (job.subtitles !== undefined && !/\.(srt|vtt)$/i.test(job.subtitles)) return fail('"subtitles" must name an .srt or .vtt file', output);
    if (o['maxCueChars'] !== undefined) {
      const m = o['maxCueChars'];
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 10 || m > 1000) return fail('"maxCueChars" must be a whole number from 10 to 1000', output);
      job.maxCueChars = m;
    }
    if (o['speaker'] !== undefined) {
      if (typeof o['speaker'] !== 'string' && typeof o['speaker'] !== 'number') return fail('"speaker" must be a name or an id', output);
      job.speaker = o['speaker'];
    }
    out.push({ ok: true, job });
  });
  return out;
}

/** Observer fields copied into SynthesizeOptions without undefined members (exactOptionalPropertyTypes). */
export function observerOf(o: Observer): Observer {
  return { ...(o.onProgress ? { onProgress: o.onProgress } : {}), ...(o.onLog ? { onLog: o.onLog } : {}), ...(o.signal ? { signal: o.signal } : {}) };
}
