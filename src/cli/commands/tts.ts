/**
 * `stemkit tts [text]`: Kokoro / Piper text-to-speech to a file (any format by extension), to stdout
 * (raw 16-bit PCM or WAV, streamed sentence by sentence), or a JSONL batch with one model load.
 */
import { Command, Option } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DataError, InputError, StemkitError, UnavailableError, UsageError } from '../../errors.js';
import { hintWithFlags, withFlags } from '../messages.js';
import type { AudioSink } from '../../audio/raw-audio.js';
import type { SynthesizeOptions, TtsModel } from '../../tts/synthesize.js';
import type { SinkJobOptions, TtsBatchJob, TtsJobResult } from '../../tts/job.js';
import type { TimingOutputs } from '../../tts/outputs.js';
import { runAction, type CliContext } from '../context.js';
import { addJobOptions, jobOptionsFrom } from '../job-options.js';
import { assertNoOutputConflicts, findOutputConflicts } from '../../util/output-safety.js';
import { addQueueOptions, submitTts } from './queue.js';

interface TtsFlags {
  file?: string;
  output?: string;
  stdout?: boolean;
  stdoutFormat?: string;
  model?: string;
  voices?: string;
  voice?: string;
  speed?: string;
  speaker?: string;
  lengthScale?: string;
  noiseScale?: string;
  noiseW?: string;
  sentenceSilence?: string;
  lang?: string;
  listVoices?: boolean;
  jsonl?: string;
  bits?: string;
  precision?: string;
  espeak?: string;
  wait?: boolean;
  waitTimeout?: string;
  timestamps?: string;
  subtitles?: string;
  maxCueChars?: string;
  timestampsFd?: string;
  sampleRate?: string;
  ssml?: boolean;
  video?: string;
  videoAudio?: string;
  burnSubtitles?: boolean;
  queue?: string | boolean;
}

function num(flag: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a number from ${min} to ${max} (got "${v}")`, { code: 'E_BAD_OPTION' });
  }
  return n;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('reading text from stdin (`-`), but stdin is a terminal', { hint: 'Pipe text in: echo "Hello" | stemkit tts - -o hello.wav' });
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readTextFile(path: string, hint = 'Check the path given to -f/--file.'): Promise<string> {
  if (path === '-') return readStdin();
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new InputError(`text file not found or unreadable: ${path}`, { code: 'E_INPUT_NOT_FOUND', cause, hint });
  }
}

/** Files a tts run reads, which no output may replace: the text file, a model file, the voices. */
function ttsInputs(f: TtsFlags): string[] {
  const model = f.model !== undefined && (/[/\\]/.test(f.model) || /\.onnx$/i.test(f.model)) ? [f.model] : [];
  return [f.file, f.voices, f.video, ...model].filter((p): p is string => p !== undefined && p !== '-' && p !== '').map((p) => resolve(p));
}

function synthOptions(ctx: CliContext, f: TtsFlags, job?: Partial<TtsBatchJob>): SynthesizeOptions {
  const o: SynthesizeOptions = { onLog: ctx.onLog, signal: ctx.signal };
  const voice = job?.voice ?? f.voice;
  if (voice !== undefined) o.voice = voice;
  const speed = job?.speed ?? num('--speed', f.speed, 0.1, 10);
  if (speed !== undefined) o.speed = speed;
  const speaker = job?.speaker ?? f.speaker;
  if (speaker !== undefined) o.speaker = speaker;
  const ls = job?.lengthScale ?? num('--length-scale', f.lengthScale, 0, 100);
  if (ls !== undefined) o.lengthScale = ls;
  const ns = job?.noiseScale ?? num('--noise-scale', f.noiseScale, 0, 100);
  if (ns !== undefined) o.noiseScale = ns;
  const nw = job?.noiseW ?? num('--noise-w', f.noiseW, 0, 100);
  if (nw !== undefined) o.noiseW = nw;
  const ss = job?.sentenceSilence ?? num('--sentence-silence', f.sentenceSilence, 0, 60);
  if (ss !== undefined) o.sentenceSilence = ss;
  const lang = job?.lang ?? f.lang;
  if (lang !== undefined) o.lang = lang;
  if (f.ssml) o.ssml = true;
  return o;
}

/** The timing outputs of the single-text form, validated (flags named in messages). */
function timingOutputsFrom(f: TtsFlags): TimingOutputs {
  const o: TimingOutputs = {};
  if (f.timestamps !== undefined) o.timestamps = resolve(f.timestamps);
  if (f.subtitles !== undefined) {
    if (!/\.(srt|vtt)$/i.test(f.subtitles)) throw new UsageError(`--subtitles must name an .srt or .vtt file (got "${f.subtitles}")`, { code: 'E_BAD_OPTION', hint: 'e.g. --subtitles narration.srt' });
    o.subtitles = resolve(f.subtitles);
  }
  const max = num('--max-cue-chars', f.maxCueChars, 10, 1000);
  if (max !== undefined) {
    if (!Number.isInteger(max)) throw new UsageError(`--max-cue-chars must be a whole number (got "${f.maxCueChars}")`, { code: 'E_BAD_OPTION' });
    o.maxCueChars = max;
  }
  return o;
}

/** --sample-rate: resample the output (8 kHz–192 kHz). */
function outputRateFrom(f: TtsFlags): number | undefined {
  const r = num('--sample-rate', f.sampleRate, 8000, 192000);
  if (r !== undefined && !Number.isInteger(r)) throw new UsageError(`--sample-rate must be a whole number of Hz (got "${f.sampleRate}")`, { code: 'E_BAD_OPTION' });
  return r;
}

/**
 * --timestamps-fd <n>: one JSON line per sentence on file descriptor n (2 = stderr) as its audio is written,
 * then `{"type":"end",…}`; made for --stdout, where the audio owns stdout.
 */
async function sentenceStream(f: TtsFlags): Promise<{ onSentence: NonNullable<SinkJobOptions['onSentence']>; end: (r: TtsJobResult) => Promise<void> } | undefined> {
  if (f.timestampsFd === undefined) return undefined;
  const fd = Number(f.timestampsFd);
  if (!Number.isInteger(fd) || fd < 2) throw new UsageError(`--timestamps-fd must be a file descriptor number ≥ 2 (got "${f.timestampsFd}")`, { code: 'E_BAD_OPTION', hint: 'e.g. --timestamps-fd 3 with 3>times.jsonl, or 2 for stderr' });
  const { fstatSync, createWriteStream } = await import('node:fs');
  try {
    fstatSync(fd);
  } catch (cause) {
    throw new UsageError(`--timestamps-fd ${fd}: that file descriptor is not open`, { code: 'E_BAD_OPTION', cause, hint: `Open it in the shell, e.g. stemkit tts … --timestamps-fd ${fd} ${fd}>times.jsonl` });
  }
  const out = createWriteStream('', { fd, autoClose: false });
  const line = (o: unknown): void => {
    out.write(`${JSON.stringify(o)}\n`);
  };
  let estimated = false;
  return {
    onSentence: (st) => {
      estimated ||= st.estimated;
      line({ type: 'sentence', ...st });
    },
    end: async (r) => {
      line({ type: 'end', durationSec: r.durationSec, sampleRate: r.sampleRate, estimated });
      await new Promise<void>((res) => out.end(res));
    },
  };
}

function fmt(n: number, digits = 2): string {
  return n.toFixed(digits);
}

/** The one-line summary: audio, phases, chars/s and RTF. */
export function summaryLine(r: TtsJobResult): string {
  const t = r.times;
  return (
    `${r.output === '-' ? 'stdout' : r.output}: ${fmt(r.durationSec)} s of audio, ${r.sentences} sentence${r.sentences === 1 ? '' : 's'}, ${r.characters} chars` +
    ` · load ${fmt(t.load)}s · phonemize ${fmt(t.phonemize)}s · infer ${fmt(t.infer)}s · write ${fmt(t.write)}s` +
    ` · ${Math.round(r.charsPerSec)} chars/s · RTF ${fmt(r.rtf, 3)} (${r.provider}${r.provider === 'cpu' ? `, ${r.threads} threads` : ''})`
  );
}

function jsonRecord(r: TtsJobResult, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { stats, ...rest } = r;
  return {
    type: 'tts',
    ...extra,
    ...rest,
    ...(stats ? { calls: stats.calls, tokens: stats.tokens, unspoken: stats.unspoken, dropped: stats.dropped, hardCuts: stats.hardCuts } : {}),
  };
}

function bitsFrom(f: TtsFlags): 16 | 24 | 32 | undefined {
  return f.bits === undefined ? undefined : (Number(f.bits) as 16 | 24 | 32);
}

/** --stdout: a sink that streams to stdout (a file output is opened by the library's runTtsJob). */
async function stdoutSink(ctx: CliContext, f: TtsFlags, sampleRate: number): Promise<AudioSink> {
  const { createStreamSink } = await import('../../tts/job.js');
  return createStreamSink(ctx.stdout, { format: f.stdoutFormat === 'wav' ? 'wav' : 'raw', sampleRate, channels: 1 });
}

async function loadModel(ctx: CliContext, f: TtsFlags): Promise<TtsModel> {
  const { loadVoiceModel } = await import('../../tts/synthesize.js');
  ctx.onProgress({ stage: 'load', status: 'start', done: 0, total: 1, file: f.model ?? 'kokoro' });
  const model = await loadVoiceModel(f.model ?? 'kokoro', {
    config: ctx.config,
    onProgress: ctx.onProgress,
    onLog: ctx.onLog,
    signal: ctx.signal,
    ...(f.voices !== undefined ? { voices: f.voices } : {}),
    ...(f.precision !== undefined ? { precision: f.precision } : {}),
    ...(f.espeak !== undefined ? { espeakPath: f.espeak } : {}),
  });
  ctx.onProgress({ stage: 'load', status: 'done', done: 1, total: 1, file: f.model ?? 'kokoro' });
  // Options of the other engine are ignored; say so instead of silently dropping them.
  const foreign =
    model.kind === 'kokoro'
      ? (['speaker', 'lengthScale', 'noiseScale', 'noiseW'] as const).filter((k) => f[k] !== undefined)
      : (['voice', 'voices'] as const).filter((k) => f[k] !== undefined);
  const flag = (k: string): string => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (foreign.length > 0) ctx.onLog({ level: 'warn', message: `${foreign.map(flag).join(', ')} ${foreign.length === 1 ? 'does' : 'do'} not apply to ${model.kind === 'kokoro' ? 'Kokoro' : 'Piper'} models; ignored` });
  ctx.onLog({ level: 'debug', message: `loaded ${model.kind} model ${model.id} in ${fmt(model.loadSeconds)}s on ${model.provider}` });
  return model;
}

async function listVoices(ctx: CliContext, f: TtsFlags): Promise<number> {
  const model = await loadModel(ctx, f);
  try {
    const voices = model.listVoices();
    ctx.emitJson({ type: 'voices', model: model.id, kind: model.kind, sampleRate: model.sampleRate, voices });
    if (model.kind === 'piper' && voices.length === 0) ctx.print(`${model.id}: a single-speaker Piper voice (no --speaker choices).`);
    else ctx.print(`${model.kind === 'kokoro' ? 'Voices' : 'Speakers'} of ${model.id} (${voices.length}):\n${voices.join('\n')}`);
    return 0;
  } finally {
    await model.dispose();
  }
}

async function withSlots<T>(ctx: CliContext, f: TtsFlags, what: string, fn: () => Promise<T>, pools: Array<'heavy' | 'tts' | 'video'> = ['heavy', 'tts']): Promise<T> {
  const { acquireSlots } = await import('../../jobs/semaphore.js');
  const job = jobOptionsFrom(f);
  const lease = await acquireSlots({
    pools,
    config: ctx.config,
    wait: job.wait,
    ...(job.timeoutSec !== undefined ? { timeoutSec: job.timeoutSec } : {}),
    command: what,
    onProgress: ctx.onProgress,
    onLog: ctx.onLog,
    signal: ctx.signal,
  });
  try {
    return await fn();
  } finally {
    await lease.release();
  }
}

async function single(ctx: CliContext, textArg: string | undefined, f: TtsFlags): Promise<number> {
  if (textArg !== undefined && f.file !== undefined) throw new UsageError('give the text either as an argument or with -f/--file, not both');
  if (textArg === undefined && f.file === undefined) {
    throw new UsageError('no text given', { code: 'E_NO_TEXT', hint: 'stemkit tts "Hello there" -o hello.wav   (or -f chapter.txt, or `-` to read stdin)' });
  }
  const output = f.stdout ? '-' : f.output;
  if (output === undefined) throw new UsageError('no output given', { hint: 'Add -o <file> (wav, flac, mp3, opus, ogg, m4a) or --stdout.' });
  // Before anything loads: the audio, subtitle and timestamp files must not replace the text, the video or the model.
  if (output !== '-') {
    const t = timingOutputsFrom(f);
    const writes = [output, t.subtitles, t.timestamps].filter((p): p is string => p !== undefined).map((p) => ({ output: resolve(p), owner: 'the text' }));
    assertNoOutputConflicts(findOutputConflicts(ttsInputs(f), writes), 'choose other output files (-o, --subtitles, --timestamps)');
  }
  if (f.video !== undefined) return narrated(ctx, textArg, f, output);
  const text = await readText(textArg, f);
  const { onProgress, onLog, signal, ...voice } = synthOptions(ctx, f);
  const timing = timingOutputsFrom(f);
  const outputRate = outputRateFrom(f);
  const bits = bitsFrom(f);
  const stream = await sentenceStream(f);
  return withSlots(ctx, f, `stemkit tts → ${output === '-' ? 'stdout' : output}`, async () => {
    const model = await loadModel(ctx, f);
    try {
      const [{ runTtsJob }, { timingRecord }] = await Promise.all([import('../../tts/batch.js'), import('../../tts/outputs.js')]);
      const { result, written } = await runTtsJob(
        model,
        { text, output, voice, timing, ...(outputRate !== undefined ? { outputRate } : {}), ...(bits !== undefined ? { bits } : {}) },
        {
          config: ctx.config,
          onProgress: ctx.onProgress,
          onLog: ctx.onLog,
          signal: ctx.signal,
          loadSeconds: model.loadSeconds,
          ...(output === '-' ? { sink: await stdoutSink(ctx, f, outputRate ?? model.sampleRate) } : {}),
          ...(stream ? { onSentence: stream.onSentence } : {}),
        },
      );
      await stream?.end(result);
      if (result.timestamps?.estimated) ctx.onLog({ level: 'info', message: 'timings are estimated: this model reports no durations (see README "Timestamps and subtitles")' });
      reportDropped(ctx, result);
      ctx.emitJson(jsonRecord(result, timingRecord(result, written)));
      // With --stdout the audio owns stdout: the summary goes to stderr.
      if (output === '-') ctx.onLog({ level: 'info', message: summaryLine(result) });
      else ctx.print(summaryLine(result));
      return 0;
    } finally {
      await model.dispose();
    }
  });
}

/** The text of the single-text form (argument, -f file or stdin). */
async function readText(textArg: string | undefined, f: TtsFlags): Promise<string> {
  const text = f.file !== undefined ? await readTextFile(f.file) : textArg === '-' ? await readStdin() : textArg!;
  if (text.trim() === '') {
    throw new DataError(`the text${f.file !== undefined && f.file !== '-' ? ` in ${f.file}` : ''} is empty`, { code: 'E_EMPTY_TEXT', hint: 'Give some text to speak.' });
  }
  return text;
}

/**
 * --video: the speech (and its subtitles) laid over a clip or a still image. The speech is synthesised to a
 * temporary WAV under heavy + tts slots, then ffmpeg writes the video under a video slot (as separate --remux).
 */
async function narrated(ctx: CliContext, textArg: string | undefined, f: TtsFlags, output: string): Promise<number> {
  const { VIDEO_AUDIO_MODES, narrateVideo } = await import('../../tts/narrate.js');
  const { videoMuxerFor } = await import('../../audio/ffmpeg.js');
  if (output === '-') throw new UsageError('--video writes a file: give -o narrated.mp4 instead of --stdout');
  const { extname } = await import('node:path');
  if (videoMuxerFor(extname(output)) === undefined) throw new UsageError(`--video needs a video output (.mp4, .mov, .mkv, .webm, …), not "${output}"`, { code: 'E_BAD_OPTION', hint: 'e.g. -o narrated.mp4' });
  const mode = (f.videoAudio ?? 'replace') as (typeof VIDEO_AUDIO_MODES)[number];
  if (!VIDEO_AUDIO_MODES.includes(mode)) throw new UsageError(`--video-audio must be replace, duck or mix (got "${f.videoAudio}")`, { code: 'E_BAD_OPTION' });
  const { existsSync } = await import('node:fs');
  if (!existsSync(f.video!)) throw new InputError(`video or image not found: ${f.video}`, { code: 'E_INPUT_NOT_FOUND', hint: 'Check the path given to --video.' });
  const text = await readText(textArg, f);
  const { onProgress, onLog, signal, ...voice } = synthOptions(ctx, f);
  const timing = timingOutputsFrom(f);
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const work = await mkdtemp(join(tmpdir(), 'stemkit-narrate-'));
  try {
    const speech = join(work, 'speech.wav');
    const srt = join(work, 'subtitles.srt');
    const result = await withSlots(ctx, f, `stemkit tts --video → ${output}`, async () => {
      const model = await loadModel(ctx, f);
      try {
        const { runTtsJob } = await import('../../tts/batch.js');
        // The timing files are written below, with the subtitles cut to the clip.
        const job = await runTtsJob(model, { text, output: speech, voice, timestamps: true }, { config: ctx.config, onProgress: ctx.onProgress, onLog: ctx.onLog, signal: ctx.signal, loadSeconds: model.loadSeconds });
        return job.result;
      } finally {
        await model.dispose();
      }
    });
    const { writeTimingOutputs, timingRecord } = await import('../../tts/outputs.js');
    const { formatSubtitles } = await import('../../tts/subtitles.js');
    // The video keeps the clip's length: subtitles past its end are cut with the speech.
    const { isImagePath } = await import('../../tts/narrate.js');
    const { probeMedia } = await import('../../audio/ffmpeg.js');
    const clipSec = isImagePath(f.video!) ? undefined : (await probeMedia(f.video!, { ...(ctx.config.ffmpegPath ? { ffmpegPath: ctx.config.ffmpegPath } : {}), signal: ctx.signal })).duration;
    const subs = formatSubtitles(result.timestamps!, text, 'srt', timing.maxCueChars, clipSec);
    await writeFile(srt, subs.content);
    const written = await writeTimingOutputs(result.timestamps!, text, timing);
    ctx.onProgress({ stage: 'encode', status: 'start', done: 0, total: 1, file: output });
    const v = await withSlots(
      ctx,
      f,
      `stemkit tts --video → ${output}`,
      () =>
        narrateVideo({
          visual: f.video!,
          speech,
          speechSec: result.durationSec,
          ...(subs.cues > 0 ? { subtitles: srt } : {}),
          mode,
          burn: f.burnSubtitles ?? false,
          out: output,
          ...(ctx.config.ffmpegPath ? { ffmpegPath: ctx.config.ffmpegPath } : {}),
          signal: ctx.signal,
        }),
      ['video'],
    );
    ctx.onProgress({ stage: 'encode', status: 'done', done: 1, total: 1, file: output });
    if (v.speechCut) ctx.onLog({ level: 'warn', message: `the speech (${fmt(result.durationSec)} s) is longer than ${f.video} (${fmt(v.durationSec)} s); it is cut at the end of the video` });
    if (v.noClipAudio) ctx.onLog({ level: 'warn', message: `${f.video} has no sound to ${mode} with; the soundtrack is the speech alone` });
    const subtitlesNote = subs.cues === 0 ? 'no subtitles' : f.burnSubtitles ? `${subs.cues} subtitle cues burnt in` : v.softSubtitles ? `${subs.cues} subtitle cues (soft track)` : 'no subtitle track (the container has none)';
    const video = { path: output, source: f.video, audio: mode, durationSec: v.durationSec, subtitleCues: subs.cues, burnt: f.burnSubtitles ?? false, softSubtitles: v.softSubtitles };
    ctx.emitJson(jsonRecord({ ...result, output }, { video, ...timingRecord(result, written) }));
    ctx.print(`${output}: ${fmt(v.durationSec)} s of video, speech ${fmt(result.durationSec)} s (${mode}), ${subtitlesNote}`);
    return 0;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A failed line's error as the command line says it: options named by the library shown as flags. */
function flagged(r: TtsJobResult, e: unknown): TtsJobResult {
  const details = e instanceof StemkitError ? e.details : undefined;
  if (r.error === undefined || details === undefined) return r;
  return { ...r, error: { ...r.error, message: withFlags(r.error.message, details), ...(r.error.hint !== undefined ? { hint: hintWithFlags(r.error.hint, details) } : {}) } };
}

function reportDropped(ctx: CliContext, r: TtsJobResult): void {
  const d = r.stats?.dropped ?? {};
  const n = Object.values(d).reduce((a, b) => a + b, 0);
  if (n > 0) ctx.onLog({ level: 'debug', message: `${r.output}: ${n} symbol(s) the voice cannot say were dropped: ${Object.entries(d).map(([c, k]) => `"${c}" ×${k}`).join(', ')}` });
}

async function batch(ctx: CliContext, f: TtsFlags): Promise<number> {
  const file = f.jsonl!;
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (cause) {
    throw new InputError(`JSONL batch not found or unreadable: ${file}`, { cause, hint: 'Check the path given to --jsonl.' });
  }
  const [{ parseJobLines }, { checkBatchOutputs, synthesizeBatch }, { timingRecord }] = await Promise.all([import('../../tts/job.js'), import('../../tts/batch.js'), import('../../tts/outputs.js')]);
  const lines = parseJobLines(content, file);
  if (lines.length === 0) throw new DataError(`the JSONL batch ${file} has no jobs`, { code: 'E_EMPTY_BATCH', hint: 'One JSON object per line: {"text": "...", "output": "out.wav"}' });
  // Before the model loads: no line may write over an input of the batch or over another line's output.
  checkBatchOutputs(lines, file, ttsInputs(f));
  const t0 = performance.now();
  const { onProgress, onLog, signal, ...defaults } = synthOptions(ctx, f);
  const outputRate = outputRateFrom(f);
  const bits = bitsFrom(f);
  const jobs = jobOptionsFrom(f);
  const model = await loadModel(ctx, f);
  let results: TtsJobResult[];
  try {
    const ran = await synthesizeBatch({
      config: ctx.config,
      model,
      lines,
      source: file,
      defaults,
      ...(outputRate !== undefined ? { outputRate } : {}),
      ...(bits !== undefined ? { bits } : {}),
      wait: jobs.wait,
      ...(jobs.timeoutSec !== undefined ? { timeoutSec: jobs.timeoutSec } : {}),
      command: `stemkit tts --jsonl ${file}`,
      onProgress: ctx.onProgress,
      onLog: ctx.onLog,
      signal: ctx.signal,
      onResult: (item) => {
        if (item.invalid) {
          ctx.onLog({ level: 'warn', message: item.result.error!.message });
          ctx.emitJson(jsonRecord(item.result, { line: item.line }));
        } else if (item.result.status === 'failed') {
          const r = flagged(item.result, item.error);
          ctx.emitJson(jsonRecord(r, { line: item.line }));
          ctx.onLog({ level: 'warn', message: `line ${item.line} (${item.output}) failed: ${r.error!.message}${r.error!.hint ? ` — ${r.error!.hint}` : ''}` });
        } else {
          reportDropped(ctx, item.result);
          ctx.emitJson(jsonRecord(item.result, { line: item.line, ...timingRecord(item.result, item.written) }));
          ctx.print(summaryLine(item.result));
        }
      },
    });
    results = ran.items.map((i) => i.result);
  } finally {
    await model.dispose();
  }
  const ok = results.filter((r) => r.status === 'ok');
  const failed = results.length - ok.length;
  const audio = ok.reduce((a, r) => a + r.durationSec, 0);
  const wall = (performance.now() - t0) / 1000;
  ctx.emitJson({ type: 'summary', jobs: results.length, ok: ok.length, failed, audioSec: audio, wallSec: wall, loadSec: model.loadSeconds, rtf: audio > 0 ? wall / audio : 0 });
  ctx.print(`Batch ${file}: ${ok.length} ok, ${failed} failed · ${fmt(audio)} s of audio in ${fmt(wall)} s (model load ${fmt(model.loadSeconds)} s, once)`);
  return failed > 0 ? 1 : 0;
}

/** The engine a `-m` value names without loading anything: registry ids and the default; undefined for files. */
async function engineOf(model: string | undefined): Promise<'kokoro' | 'piper' | undefined> {
  if (model === undefined) return 'kokoro';
  if (/\.onnx$/i.test(model) || existsSync(model)) return undefined;
  const { getModel } = await import('../../models/registry.js');
  try {
    const adapter = (getModel(model) as { adapter?: string }).adapter;
    return adapter === 'kokoro' || adapter === 'piper' ? adapter : undefined;
  } catch {
    // An unknown id is reported by the model loader, with suggestions.
    return undefined;
  }
}

/**
 * Checks that need no model, before anything loads or downloads: the speed range of the engine, the output
 * extension, and espeak-ng for a non-English --lang.
 */
async function checkBeforeLoading(f: TtsFlags, outputs: readonly string[]): Promise<void> {
  const engine = await engineOf(f.model);
  if (f.speed !== undefined && engine === 'kokoro') {
    const { KOKORO_SPEED_RANGE } = await import('../../tts/kokoro.js');
    num('--speed', f.speed, KOKORO_SPEED_RANGE[0], KOKORO_SPEED_RANGE[1]);
  }
  if (outputs.length > 0) {
    const { AUDIO_FORMATS, formatFromPath } = await import('../../audio/open.js');
    for (const out of outputs) {
      if (out !== '-' && formatFromPath(out) === undefined) {
        throw new UsageError(`cannot tell the output format from "${out}"`, {
          code: 'E_BAD_OPTION',
          hint: `End the file name with one of: ${AUDIO_FORMATS.map((x) => `.${x}`).join(', ')} (e.g. -o ${out.replace(/\.[^./]*$/, '')}.wav).`,
        });
      }
    }
  }
  if (f.lang !== undefined) {
    const { isPhonemizerVoice } = await import('../../tts/phonemize.js');
    if (!isPhonemizerVoice(f.lang)) {
      const bin = f.espeak ?? 'espeak-ng';
      const probe = spawnSync(bin, ['--version'], { stdio: 'ignore', timeout: 10_000 });
      if (probe.error !== undefined) {
        throw new UnavailableError(`language "${f.lang}" needs the espeak-ng program, which was not found${f.espeak !== undefined ? ` at ${f.espeak}` : ''}`, {
          code: 'E_ESPEAK_MISSING',
          hint: 'Install espeak-ng (Debian/Ubuntu: `sudo apt install espeak-ng`; macOS: `brew install espeak-ng`), or pass its path with --espeak. English works without it.',
        });
      }
    }
  }
}

/** `--queue`: the texts become jobs for `stemkit worker`s (one per text or --jsonl line; a bad line refuses the batch). */
async function queued(ctx: CliContext, textArg: string | undefined, f: TtsFlags, follow: boolean): Promise<number> {
  if (f.stdout || f.listVoices || f.espeak !== undefined) throw new UsageError('--stdout, --list-voices and --espeak do not go with --queue', { hint: 'queued jobs write files on the shared storage; each worker uses its own espeak-ng' });
  const local = (['ssml', 'video', 'videoAudio', 'burnSubtitles', 'timestamps', 'subtitles', 'timestampsFd', 'sampleRate', 'maxCueChars'] as const).filter((k) => f[k] !== undefined && f[k] !== false);
  if (local.length > 0) throw new UsageError(`${local.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} ${local.length === 1 ? 'is' : 'are'} not available with --queue yet`, { hint: 'run it locally (without --queue)' });
  const pick = (o: SynthesizeOptions): Record<string, unknown> => Object.fromEntries((['voice', 'speed', 'speaker', 'lengthScale', 'noiseScale', 'noiseW', 'sentenceSilence', 'lang'] as const).filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
  const texts: Parameters<typeof submitTts>[3] = [];
  if (f.jsonl !== undefined) {
    const { parseJobLines } = await import('../../tts/job.js');
    const content = await readFile(f.jsonl, 'utf8').catch((cause: unknown) => {
      throw new InputError(`JSONL batch not found or unreadable: ${f.jsonl}`, { cause, hint: 'Check the path given to --jsonl.' });
    });
    for (const entry of parseJobLines(content, f.jsonl)) {
      if (!entry.ok) throw entry.error;
      const text = entry.job.text ?? (await readTextFile(resolve(entry.job.file!)));
      texts.push({ text, output: entry.job.output, options: pick(synthOptions(ctx, f, entry.job)) });
    }
  } else {
    const output = f.output;
    if (output === undefined) throw new UsageError('no output given', { hint: 'Add -o <file> on the shared storage.' });
    const text = f.file !== undefined ? await readTextFile(f.file) : textArg === '-' ? await readStdin() : textArg;
    if (text === undefined || text.trim() === '') throw new DataError('the text is empty', { code: 'E_EMPTY_TEXT', hint: 'Give some text to speak.' });
    texts.push({ text, output, options: pick(synthOptions(ctx, f)) });
  }
  return submitTts(ctx, f, follow, texts);
}

async function tts(ctx: CliContext, textArg: string | undefined, f: TtsFlags, follow = false): Promise<number> {
  if (f.queue !== undefined) return queued(ctx, textArg, f, follow);
  if (f.stdout && f.output !== undefined) throw new UsageError('give either -o <file> or --stdout, not both');
  if (f.stdout && ctx.flags.json) throw new UsageError('--json and --stdout both want stdout', { hint: 'Use -o <file> with --json, or drop --json.' });
  if (f.stdoutFormat !== undefined && !['raw', 'wav'].includes(f.stdoutFormat)) throw new UsageError(`--stdout-format must be raw or wav (got "${f.stdoutFormat}")`);
  if (f.bits !== undefined && !['16', '24', '32'].includes(f.bits)) throw new UsageError(`--bits must be 16, 24 or 32 (got "${f.bits}")`);
  if (f.video === undefined && (f.videoAudio !== undefined || f.burnSubtitles)) throw new UsageError(`${f.burnSubtitles ? '--burn-subtitles' : '--video-audio'} needs --video <clip|image>`);
  if (f.listVoices) return listVoices(ctx, f);
  num('--speed', f.speed, 0.1, 10);
  // With --video, -o names a video (checked by narrated() before anything loads).
  await checkBeforeLoading(f, f.output !== undefined && f.video === undefined ? [f.output] : []);
  if (f.jsonl !== undefined) {
    if (textArg !== undefined || f.file !== undefined || f.output !== undefined || f.stdout) {
      throw new UsageError('--jsonl takes texts and outputs from the file; drop the text argument, -f, -o and --stdout');
    }
    if (f.video !== undefined) throw new UsageError('--video narrates one text; it does not apply to --jsonl batches');
    if (f.timestamps !== undefined || f.subtitles !== undefined || f.timestampsFd !== undefined) {
      throw new UsageError('--jsonl takes timing outputs from the file', { hint: 'Add "timestamps": "x.json" and/or "subtitles": "x.srt" to a line.' });
    }
    return batch(ctx, f);
  }
  return single(ctx, textArg, f);
}

/** The `tts` command. */
export function ttsCommand(): Command {
  const cmd = new Command('tts')
    .description('Turn text into speech with Kokoro or Piper voices')
    .argument('[text]', 'the text to speak; `-` reads it from stdin')
    .option('-f, --file <txt>', 'read the text from a file (`-` for stdin)')
    .option('-o, --output <file>', 'output audio file; the format comes from the extension (wav, flac, mp3, opus, ogg, m4a)')
    .option('--stdout', 'stream the audio to stdout sentence by sentence (16-bit PCM; see --stdout-format)')
    .addOption(new Option('--stdout-format <format>', 'raw (16-bit little-endian PCM, mono) or wav (header with maximum sizes)').choices(['raw', 'wav']))
    .option('-m, --model <model>', 'kokoro (default), piper:<voice>, another registry id, or a path to an .onnx file')
    .option('--voices <path>', 'Kokoro voices: voices-v1.0.bin, an .npz/.npy, or a folder of per-voice .bin files')
    .option('--voice <name>', 'Kokoro voice, or a blend such as af_heart:0.7,bf_emma:0.3 (default af_heart)')
    .option('--speed <x>', 'Kokoro: 0.5–2 (> 1 is faster); Piper: divides the length scale')
    .option('--speaker <name|id>', 'Piper multi-speaker voices: a speaker name or id')
    .option('--length-scale <x>', "Piper: phoneme duration scale (default from the voice's .onnx.json)")
    .option('--noise-scale <x>', "Piper: generator noise (default from the voice's .onnx.json)")
    .option('--noise-w <x>', "Piper: duration noise (default from the voice's .onnx.json)")
    .option('--sentence-silence <s>', 'seconds of silence between sentences (default 0.2)')
    .option('--lang <code>', 'espeak-ng language for phonemes when the voice does not imply it (e.g. en-gb, de, fr-fr)')
    .option('--list-voices', 'list the voices (Kokoro) or speakers (Piper) of the selected model and exit')
    .option('--jsonl <file>', 'batch: one JSON object per line with text or file, output, and optional voice/speed/speaker')
    .addOption(new Option('--bits <n>', 'WAV output: 16 (default), 24, or 32 (float)').choices(['16', '24', '32']))
    .option('--precision <p>', 'registry models: auto, fp32, fp16 or int8')
    .option('--offline', 'never download models')
    .option('--espeak <path>', 'the espeak-ng program used for non-English languages (default: espeak-ng on PATH)')
    .option('--timestamps <file>', 'write when each sentence, word and phoneme is spoken (JSON; see README "Timestamps and subtitles")')
    .option('--subtitles <file>', 'write subtitles: .srt or .vtt')
    .option('--max-cue-chars <n>', 'subtitles: most characters per cue, shown on up to 2 lines (default 84)')
    .option('--timestamps-fd <n>', 'stream one JSON line per sentence to file descriptor n as it is spoken (2 = stderr; for --stdout)')
    .option('--sample-rate <hz>', 'resample the output to this rate (default: the model\'s)')
    .option('--ssml', 'read the text as SSML (detected anyway when it starts with <speak>)')
    .option('--video <clip|image>', 'narrate a video: the speech becomes its soundtrack (video copied) with a subtitle track; a still image becomes a video; -o names the video')
    .addOption(new Option('--video-audio <mode>', "with --video: replace the clip's sound (default), duck it under the speech, or mix").choices(['replace', 'duck', 'mix']))
    .option('--burn-subtitles', 'with --video: draw the subtitles into the picture (re-encodes the video)');
  addJobOptions(cmd);
  addQueueOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  stemkit tts "Hello there." -o hello.wav
  stemkit tts -f chapter.txt -o chapter.mp3 --voice af_heart:0.7,bf_emma:0.3 --speed 1.1
  echo "Streaming." | stemkit tts - --stdout | aplay -f S16_LE -r 24000 -c 1
  stemkit tts "Hi" -m piper:en_US-libritts_r-medium --speaker 12 -o hi.wav
  stemkit tts "Hi" -m ./kokoro-v1.0.onnx --voices ./voices-v1.0.bin -o hi.wav
  stemkit tts --jsonl jobs.jsonl
  stemkit tts -f script.txt -o narration.wav --timestamps words.json --subtitles narration.srt
  stemkit tts -f script.txt --stdout --timestamps-fd 3 3>times.jsonl | aplay -f S16_LE -r 24000 -c 1
  stemkit tts -f script.txt --video clip.mp4 --video-audio duck -o narrated.mp4
  stemkit tts '<speak>Hello <break time="500ms"/> <say-as interpret-as="characters">SSML</say-as></speak>' -o hi.wav`,
  );
  return cmd.action(runAction(async (ctx: CliContext, text: string | undefined, f: TtsFlags, command: Command) => tts(ctx, text, f, ctx.typed(command, '--wait') && f.wait === true)));
}
