/** SSML subset → utterances (filled in below). */
import type { LogCallback } from '../progress.js';
import { plainUtterances, type Utterance } from './synthesize.js';

export function ssmlUtterances(text: string, _opts: { onLog?: LogCallback }): Utterance[] {
  return plainUtterances(text);
}
