/**
 * The Piper engine as a TtsModel: speakers, length/noise scales, one model call per phrase.
 */
import { UsageError, throwIfAborted } from '../errors.js';
import type { ModelSession } from '../runtime/onnx.js';
import { phonemizeSpans } from './phonemize.js';
import { PiperEngine, peakNormalize, piperIds, piperPhraseSpans, resolveSpeaker, type PiperConfig } from './piper.js';
import { placeUnits, shiftPhonemes, type TimedPhoneme } from './timing.js';
import { describeDropped } from './vocab.js';
import type { TtsModel } from './synthesize.js';
import { addDropped, checkText, concat, emptyStats, leadSamples, makeRun, nothingSpeakable, now, phonemizedUtterances, sentenceProgress, shortText, silenceSamples, unknownPhonemes, utterancesOf, type Phonemizer, type Utterance } from './pipeline.js';

/** A Piper voice ready to synthesise. Exported for tests and library users with a session of their own. */
export function createPiperModel(
  session: ModelSession,
  config: PiperConfig,
  meta: { id: string; loadSeconds: number; espeakPath?: string | undefined },
): TtsModel {
  const engine = new PiperEngine(session, config);
  const speakers = Object.keys(config.speakerIdMap);
  return {
    kind: 'piper',
    id: meta.id,
    sampleRate: config.sampleRate,
    provider: session.provider,
    threads: session.threads,
    loadSeconds: meta.loadSeconds,
    listVoices: () => (engine.hasSid ? (speakers.length ? speakers : Array.from({ length: config.numSpeakers }, (_, i) => String(i))) : []),
    dispose: () => session.dispose(),
    synthesize(text, opts = {}) {
      const rate = config.sampleRate;
      const stats = emptyStats(rate, text.length);
      return makeRun(stats, async function* () {
        checkText(text);
        const sid = resolveSpeaker(config, opts.speaker, engine.hasSid);
        if (opts.speed !== undefined && !(opts.speed > 0.1 && opts.speed <= 10)) throw new UsageError(`speed must be between 0.1 and 10 (got ${opts.speed})`, { code: 'E_BAD_OPTION', details: { option: 'speed' } });
        const scales = {
          noiseScale: opts.noiseScale ?? config.inference.noiseScale,
          lengthScale: opts.lengthScale ?? config.inference.lengthScale / (opts.speed ?? 1),
          noiseW: opts.noiseW ?? config.inference.noiseW,
        };
        for (const [k, v] of Object.entries(scales)) {
          if (!Number.isFinite(v) || v < 0) throw new UsageError(`${k} must be a number ≥ 0 (got ${v})`, { code: 'E_BAD_OPTION' });
        }
        const gap = silenceSamples(opts.sentenceSilence, rate);
        const utterances = await utterancesOf(text, opts);
        stats.sentences = utterances.length;
        const phon: Phonemizer = async (batch, lang) =>
          config.phonemeType === 'text'
            ? batch.map((s) => s.nfd())
            : phonemizeSpans(batch, {
                voice: lang,
                punctuation: 'piper',
                ...(meta.espeakPath ? { espeakPath: meta.espeakPath } : {}),
                ...(opts.signal ? { signal: opts.signal } : {}),
                ...(opts.onLog ? { onLog: opts.onLog } : {}),
              });
        const langOf = (u: Utterance): string => u.lang ?? opts.lang ?? config.espeakVoice;
        let yielded = 0;
        let done = 0;
        for await (const [u, ps, given] of phonemizedUtterances(utterances, langOf, phon, stats)) {
          throwIfAborted(opts.signal);
          for (const g of given) {
            const bad = piperIds(g.text.replace(/\s+/g, ''), config).missing;
            if (bad.size > 0) throw unknownPhonemes(bad, 'this Piper voice');
          }
          // An SSML <voice name> picks a speaker; <prosody rate> divides the length scale like --speed.
          const uSid = u.voice !== undefined ? resolveSpeaker(config, u.voice, engine.hasSid) : sid;
          const uScales = u.speed !== undefined && opts.lengthScale === undefined ? { ...scales, lengthScale: config.inference.lengthScale / (u.speed * (opts.speed ?? 1)) } : scales;
          const r = piperIds(ps, config);
          addDropped(stats, r.missing);
          if (r.missing.size > 0) opts.onLog?.({ level: 'debug', message: `skipped phonemes missing from the voice's phoneme_id_map: ${describeDropped(r.missing)}` });
          done++;
          const speakable = [...ps.text.normalize('NFD')].some((c) => c.trim() !== '' && config.idMap.has(c) && !/[.,:;!?]/.test(c));
          if (r.phonemes === 0 || !speakable) {
            stats.unspoken++;
            opts.onLog?.({ level: 'warn', message: `nothing speakable in sentence ${done}: "${shortText(text.slice(u.start, u.end))}"` });
            sentenceProgress(opts, done, utterances.length);
            continue;
          }
          const lead = leadSamples(u, yielded, gap, rate);
          const parts: Float32Array[] = [];
          const phonemes: TimedPhoneme[] = [];
          let estimated = false;
          let pos = lead;
          for (const phrase of piperPhraseSpans(ps, config.phonemeSilence)) {
            // Most voices list no phoneme: one phrase, the sentence itself, whose ids are already known.
            const p = phrase.phonemes === ps ? r : piperIds(phrase.phonemes, config);
            // A phrase with no known phoneme (only unknown ones) has nothing to say: skipped with its silence.
            if (p.phonemes === 0) continue;
            const t0 = now();
            const out = await engine.infer(p.ids, uScales, uSid);
            const wave = peakNormalize(out.wave);
            stats.inferSec += now() - t0;
            stats.calls++;
            stats.tokens += p.phonemes;
            let unitSamples: number[] | undefined;
            if (out.idSamples) {
              // A phoneme owns its ids and the pad after it (piper1-gpl voice.py's alignment grouping).
              let at = 0;
              unitSamples = p.unitIds.map((n) => {
                const sum = out.idSamples!.slice(at, at + n).reduce((x, y) => x + y, 0);
                at += n;
                return sum;
              });
            } else estimated = true;
            // `^` and `$` own the lead-in and tail; only the phonemes between them are listed.
            phonemes.push(...shiftPhonemes(placeUnits(p.units, unitSamples, wave.length).slice(1, -1), pos, pos, pos + wave.length));
            parts.push(wave);
            pos += wave.length;
            if (phrase.silenceSec > 0) {
              const sil = Math.round(phrase.silenceSec * rate);
              parts.push(new Float32Array(sil));
              pos += sil;
            }
          }
          const block = concat(parts, lead);
          stats.samples += block.length;
          yielded++;
          sentenceProgress(opts, done, utterances.length);
          yield { channels: [block], sampleRate: rate, timing: { start: u.start, end: u.end, estimated, phonemes, speechStart: lead } };
        }
        if (yielded === 0) throw nothingSpeakable(stats.dropped);
      });
    },
  };
}
