/**
 * The Kokoro engine as a TtsModel: voices (blends), speed, the 510-token limit (long sentences split),
 * one model call per piece of a sentence.
 */
import { UsageError, throwIfAborted } from '../errors.js';
import type { Observer } from '../progress.js';
import type { ModelSession } from '../runtime/onnx.js';
import { KOKORO_SPEED_RANGE, KokoroEngine } from './kokoro.js';
import { phonemizeSpans } from './phonemize.js';
import { NO_SOURCE } from './spans.js';
import { splitTokenIds } from './text-split.js';
import { placeUnits, shiftPhonemes, type TimedPhoneme } from './timing.js';
import { fadeEdges, nonSilentRange } from './trim.js';
import { blendVoices, parseVoiceSpec, selectStyle, type VoiceStore } from './voices.js';
import { KOKORO_BREAK_CLASSES, KOKORO_MAX_TOKENS, KOKORO_SAMPLE_RATE, KOKORO_SPACE, describeDropped, tokenizeKokoro } from './vocab.js';
import type { TtsModel } from './synthesize.js';
import { addDropped, checkText, concat, emptyStats, leadSamples, makeRun, nothingSpeakable, now, phonemizedUtterances, sentenceProgress, shortText, silenceSamples, unknownPhonemes, utterancesOf, type Phonemizer, type Utterance } from './pipeline.js';

/** Kokoro voice prefix → espeak language (model-io.md §3.3/§3.5; kokoro.js uses `en` for British voices). */
const KOKORO_LANG: Record<string, string> = { a: 'en-us', b: 'en', e: 'es', f: 'fr-fr', h: 'hi', i: 'it', p: 'pt-br', j: 'ja', z: 'cmn' };

/** The espeak language a Kokoro voice implies (en-us for names without a known prefix). */
export function kokoroLanguage(voice: string): string {
  const first = voice.split(',')[0]!.trim();
  return /^[a-z][fm]_/.test(first) ? KOKORO_LANG[first[0]!] ?? 'en-us' : 'en-us';
}

/** A Kokoro model ready to synthesise. Exported for tests and library users with a session of their own. */
export function createKokoroModel(
  session: ModelSession,
  voices: VoiceStore,
  meta: { id: string; loadSeconds: number; espeakPath?: string | undefined; onLog?: Observer['onLog'] },
): TtsModel {
  const engine = new KokoroEngine(session, meta.onLog);
  const tables = new Map<string, Float32Array>();
  const defaultVoice = voices.names.includes('af_heart') ? 'af_heart' : voices.names[0]!;
  return {
    kind: 'kokoro',
    id: meta.id,
    sampleRate: KOKORO_SAMPLE_RATE,
    provider: session.provider,
    threads: session.threads,
    loadSeconds: meta.loadSeconds,
    listVoices: () => [...voices.names],
    dispose: () => session.dispose(),
    synthesize(text, opts = {}) {
      const stats = emptyStats(KOKORO_SAMPLE_RATE, text.length);
      return makeRun(stats, async function* () {
        checkText(text);
        const checkSpeed = (speed: number): void => {
          if (!(speed >= KOKORO_SPEED_RANGE[0] && speed <= KOKORO_SPEED_RANGE[1])) {
            throw new UsageError(`speed must be between ${KOKORO_SPEED_RANGE[0]} and ${KOKORO_SPEED_RANGE[1]} for Kokoro (got ${speed})`, { code: 'E_BAD_OPTION', details: { option: 'speed' } });
          }
        };
        checkSpeed(opts.speed ?? 1);
        const tableFor = async (voiceSpec: string): Promise<Float32Array> => {
          let table = tables.get(voiceSpec);
          if (!table) {
            table = await blendVoices(voices, parseVoiceSpec(voiceSpec));
            tables.set(voiceSpec, table);
          }
          return table;
        };
        await tableFor(opts.voice ?? defaultVoice);
        const gap = silenceSamples(opts.sentenceSilence, KOKORO_SAMPLE_RATE);
        const trim = opts.trim ?? true;
        // 5 ms fades at trimmed edges: long enough to avoid a click, far shorter than the ≥ 21 ms quiet margin trimming leaves.
        const fade = Math.round(0.005 * KOKORO_SAMPLE_RATE);
        const utterances = await utterancesOf(text, opts);
        stats.sentences = utterances.length;
        let yielded = 0;
        let done = 0;
        const phon: Phonemizer = (batch, lang) =>
          phonemizeSpans(batch, {
            voice: lang,
            punctuation: 'kokoro',
            ...(meta.espeakPath ? { espeakPath: meta.espeakPath } : {}),
            ...(opts.signal ? { signal: opts.signal } : {}),
            ...(opts.onLog ? { onLog: opts.onLog } : {}),
          });
        const langOf = (u: Utterance): string => u.lang ?? opts.lang ?? kokoroLanguage(u.voice ?? opts.voice ?? defaultVoice);
        for await (const [u, ps, given] of phonemizedUtterances(utterances, langOf, phon, stats)) {
          throwIfAborted(opts.signal);
          const voiceSpec = u.voice ?? opts.voice ?? defaultVoice;
          // SSML <prosody rate> scales the requested speed.
          const speed = (opts.speed ?? 1) * (u.speed ?? 1);
          checkSpeed(speed);
          const table = await tableFor(voiceSpec);
          for (const g of given) {
            const bad = tokenizeKokoro(g).dropped;
            for (const ch of [...bad.keys()]) if (/\s/.test(ch)) bad.delete(ch);
            if (bad.size > 0) throw unknownPhonemes(bad, 'Kokoro');
          }
          const { ids, units, dropped } = tokenizeKokoro(ps);
          addDropped(stats, dropped);
          if (dropped.size > 0) opts.onLog?.({ level: 'debug', message: `dropped symbols not in Kokoro's vocabulary: ${describeDropped(dropped)}` });
          done++;
          // Punctuation (ids 1–15) and spaces alone are not speech.
          if (ids.every((id) => id <= KOKORO_SPACE)) {
            stats.unspoken++;
            opts.onLog?.({ level: 'warn', message: `nothing speakable in sentence ${done}: "${shortText(text.slice(u.start, u.end))}"` });
            sentenceProgress(opts, done, utterances.length);
            continue;
          }
          const { pieces, ranges, hardCuts } = splitTokenIds(ids, { max: KOKORO_MAX_TOKENS, breakClasses: KOKORO_BREAK_CLASSES, space: KOKORO_SPACE });
          stats.hardCuts += hardCuts;
          if (pieces.length > 1) opts.onLog?.({ level: 'debug', message: `sentence ${done} has ${ids.length} phoneme tokens; split into ${pieces.length} calls of ≤ ${KOKORO_MAX_TOKENS}` });
          const lead = leadSamples(u, yielded, gap, KOKORO_SAMPLE_RATE);
          const audio: Float32Array[] = [];
          const phonemes: TimedPhoneme[] = [];
          let estimated = false;
          let pos = lead;
          for (let k = 0; k < pieces.length; k++) {
            const piece = pieces[k]!;
            throwIfAborted(opts.signal);
            const t0 = now();
            const out = await engine.infer(piece, selectStyle(table, piece.length), speed);
            stats.inferSec += now() - t0;
            stats.calls++;
            stats.tokens += piece.length;
            const [a, b] = trim ? nonSilentRange(out.wave) : [0, out.wave.length];
            const kept = out.wave.slice(a, b);
            if (trim) fadeEdges(kept, fade);
            const pieceUnits = units.slice(...ranges[k]!);
            if (out.tokenSamples) {
              // The pads own the silence at both ends; only the phonemes between them are kept.
              const pad = { phoneme: '', lo: NO_SOURCE, hi: NO_SOURCE };
              const placed = placeUnits([pad, ...pieceUnits, pad], out.tokenSamples, out.wave.length).slice(1, -1);
              phonemes.push(...shiftPhonemes(placed, pos - a, pos, pos + kept.length));
            } else {
              estimated = true;
              phonemes.push(...shiftPhonemes(placeUnits(pieceUnits, undefined, kept.length), pos, pos, pos + kept.length));
            }
            audio.push(kept);
            pos += kept.length;
          }
          const block = concat(audio, lead);
          stats.samples += block.length;
          yielded++;
          sentenceProgress(opts, done, utterances.length);
          yield { channels: [block], sampleRate: KOKORO_SAMPLE_RATE, timing: { start: u.start, end: u.end, estimated, phonemes, speechStart: lead } };
        }
        if (yielded === 0) throw nothingSpeakable(stats.dropped);
      });
    },
  };
}
