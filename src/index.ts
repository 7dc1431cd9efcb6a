/**
 * stemkit's library API. Everything here reports through Observer callbacks and never prints; the CLI
 * (src/cli) is a thin adapter over it. onnxruntime-node is loaded only when a model is first used.
 */
export * from './errors.js';
export type { ProgressEvent, ProgressStage, LogEvent, Observer, ProgressCallback, LogCallback } from './progress.js';

// Configuration
export { BUILTIN_PROFILES, DEFAULT_PROFILE, DEVICES, computeThreads } from './config/schema.js';
export type { ResolvedConfig, Device, GpuConfig, ProfileValues, BenchTarget } from './config/schema.js';
export { homeDirectory, resolveConfig } from './config/resolve.js';
export type { UserConfig, CliOverrides, ResolveInput } from './config/resolve.js';
export { loadConfigFile, loadUserConfigFile, userConfigDir } from './config/load.js';

// Audio and DSP
export type { RawAudio, AudioInfo, AudioSource, AudioSink } from './audio/raw-audio.js';
export { openAudioSource, createAudioSink, readAll, isVideoPath, remuxVideo, AUDIO_FORMATS } from './audio/open.js';
export type { AudioFormat } from './audio/open.js';
export { RealFFT } from './dsp/fft.js';
export type { RealTransform } from './dsp/fft.js';
export { loadSimdFft } from './dsp/fft-simd.js';
export { stft, istft, getRealFFT } from './dsp/stft.js';
export type { StftOptions, Spectrogram, FftPrecision } from './dsp/stft.js';
export { hannPeriodic, hannSymmetric, sqrtHannPeriodic } from './dsp/windows.js';
export { createResampler, resampleAudio } from './dsp/resample.js';
export type { Resampler, ResamplerOptions } from './dsp/resample.js';

// Runtime
export { createSession, withSession } from './runtime/onnx.js';
export type { ModelSession, SessionOptions, TensorData, Provider } from './runtime/onnx.js';

// Models
export { getModel, listModels, defaultModelForMode } from './models/registry.js';
export type { ModelEntry, ModelFile, InstalledModel, Precision } from './models/registry.js';
export { ensureModel, importModel } from './models/ensure.js';
export { listCache, verifyModel, removeModel, isInstalled } from './models/cache.js';

// Separation
export { loadSeparator } from './separate/separate.js';
export type { Separator, SeparatorSpec, SeparateFileOptions, FileResult, PhaseTimes } from './separate/separate.js';
export { separateBatch, formatTimingLine } from './separate/batch.js';
export type { SeparateBatchOptions, BatchResult } from './separate/batch.js';
export type { StemModel, StemStream, StemBlocks, TrackStats } from './separate/types.js';

// Text to speech
export { loadVoiceModel } from './tts/synthesize.js';
export type { TtsModel, TtsRun, SpeechBlock, SynthesizeOptions, SynthesisStats, VoiceModelSpec, LoadVoiceModelOptions } from './tts/synthesize.js';
export { synthesizeToSink, parseJobLines } from './tts/job.js';
export type { SinkJobOptions, TtsJobResult, TtsBatchJob, ParsedJobLine } from './tts/job.js';
export { runTtsJob, synthesizeBatch, openTtsSink } from './tts/batch.js';
export type { TtsJobSpec, RunTtsJobOptions, TtsJobOutcome, TtsBatchOptions, TtsBatchItem, TtsBatchResult, TtsVoiceSettings } from './tts/batch.js';
export type { Timestamps, SentenceTimestamps, WordTimestamps, PhonemeTimestamps } from './tts/timing.js';
export { buildCues, formatSubtitles, formatSrt, formatVtt } from './tts/subtitles.js';
export type { Cue, SubtitleFormat } from './tts/subtitles.js';
export { narrateVideo } from './tts/narrate.js';
export type { NarrateVideoOptions, NarrateResult, VideoAudioMode } from './tts/narrate.js';

// Doctor
export { collectDoctorReport } from './doctor/doctor.js';
export type { DoctorReport, DoctorOptions, DoctorProvider, CheckStatus, ProviderCheck, ToolCheck, GpuInfo } from './doctor/doctor.js';

// Fair sharing
export { acquireSlots, readPools, runBounded, threadsPerWorker } from './jobs/index.js';

// Bench and eval
export { runBench } from './bench/bench.js';
export type { BenchReport, BenchOptions, ModeReport, TargetPolicy } from './bench/bench.js';
export { evaluate } from './eval/eval.js';
export type { EvalReport, EvaluateOptions, StemScore, TrackReport } from './eval/eval.js';
export { sdr, siSdr } from './eval/metrics.js';
