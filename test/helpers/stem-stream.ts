/**
 * Runs a whole signal through a model's stream in blocks (sizes cycling through `blocks`) and joins the stems.
 */
import type { StemBlocks, StemModel, StemStreamOptions } from '../../src/separate/types.js';

export async function separateStream(model: StemModel, x: Float32Array[], blocks: number[], opts: StemStreamOptions = {}): Promise<Record<string, Float32Array[]>> {
  const stream = model.createStream(opts);
  const parts: StemBlocks[] = [];
  let pos = 0;
  let b = 0;
  while (pos < x[0]!.length) {
    const n = blocks[b++ % blocks.length]!;
    parts.push(await stream.push({ channels: x.map((ch) => ch.subarray(pos, pos + n)), sampleRate: model.sampleRate }));
    pos += n;
  }
  parts.push(await stream.flush());
  const out: Record<string, Float32Array[]> = {};
  for (const k of model.stems) {
    out[k] = x.map((_, c) => {
      const y = new Float32Array(parts.reduce((a, p) => a + p[k]!.channels[c]!.length, 0));
      let o = 0;
      for (const p of parts) {
        y.set(p[k]!.channels[c]!, o);
        o += p[k]!.channels[c]!.length;
      }
      return y;
    });
  }
  return out;
}
