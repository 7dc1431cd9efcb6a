/**
 * The TTS dispatch table: one row per engine. A new engine is one model file (a factory returning a
 * TtsModel, like kokoro-model.ts) plus one row here; the registry's `adapter`, a `.onnx.json` beside a model
 * file, or explicit voices pick the row (synthesize.ts). The same shape as separation's adapters.ts.
 */
import { UsageError } from '../errors.js';
import type { Observer } from '../progress.js';
import type { ModelSession } from '../runtime/onnx.js';
import { createKokoroModel } from './kokoro-model.js';
import { isPhonemizerVoice } from './phonemize.js';
import { loadPiperConfig } from './piper.js';
import { createPiperModel } from './piper-model.js';
import type { TtsModel } from './synthesize.js';
import { openVoiceStore } from './voices.js';

export type TtsEngineName = 'kokoro' | 'piper';

/** The files of a model to load: the .onnx, and the engine's own (Kokoro's voices, Piper's .onnx.json). */
export interface EngineFiles {
  model: string;
  voices?: string | undefined;
  config?: string | undefined;
}

export interface EngineMeta {
  id: string;
  loadSeconds: number;
  espeakPath?: string | undefined;
  onLog?: Observer['onLog'];
}

/** An engine whose other files are read and checked, waiting for its session. */
export interface PreparedEngine {
  /** Whether the English WASM front end will be used (it is warmed up while the session loads). */
  english: boolean;
  create(session: ModelSession, meta: EngineMeta): TtsModel;
}

export interface TtsEngine {
  /** The device this engine takes when the config says `auto`, and the debug line that says why. */
  autoDevice?: { device: 'cpu'; why: string; option: string };
  /** Reads and checks the engine's other files before the (slow) session creation. */
  prepare(files: EngineFiles): Promise<PreparedEngine>;
}

/** Engine → how to prepare and create it. */
export const TTS_ENGINES: Readonly<Record<TtsEngineName, TtsEngine>> = {
  kokoro: {
    async prepare(files) {
      const voices = await openVoiceStore(requireVoices(files));
      return { english: true, create: (session, meta) => createKokoroModel(session, voices, meta) };
    },
  },
  piper: {
    autoDevice: { device: 'cpu', why: 'Piper runs on the CPU with device auto (it is slower on CUDA); pass device cuda to force it', option: 'device' },
    async prepare(files) {
      const config = await loadPiperConfig(files.model, files.config);
      return {
        english: config.phonemeType === 'espeak' && isPhonemizerVoice(config.espeakVoice),
        create: (session, meta) => createPiperModel(session, config, meta),
      };
    },
  },
};

/** Kokoro's voices file. @throws UsageError (64, E_VOICES_REQUIRED) when none was given. */
export function requireVoices(files: EngineFiles): string {
  if (files.voices === undefined) {
    throw new UsageError(`the Kokoro model ${files.model} needs voices`, {
      code: 'E_VOICES_REQUIRED',
      hint: 'Pass voices <voices-v1.0.bin | file.npz | folder of .bin files>.',
      details: { hintOption: 'voices' },
    });
  }
  return files.voices;
}
