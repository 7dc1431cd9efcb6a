/**
 * The eviction rule of the warm-model LRU (src/serve/pool.ts), as a pure function: which idle models to
 * release so that at most `maxModels` models and `maxBytes` bytes of models stay loaded.
 */

/** A model loaded in one executor. The same model may be loaded in two executors: `id` tells them apart. */
export interface WarmModel {
  id: string;
  /** Size of its model files (runtime/onnx.ts openModelBytes); 0 when not known yet. */
  bytes: number;
  /** Last use, any monotonic unit (ms). */
  lastUsed: number;
  /** In use by a running job: never evicted. */
  busy: boolean;
}

export interface LruLimits {
  maxModels: number;
  maxBytes: number;
}

/**
 * The ids to evict, least recently used first, so that the models that stay (plus `incoming`, a model about
 * to be loaded, with its size as far as known) fit both limits. Busy models are never evicted, so the
 * result may leave the limits exceeded while jobs run; a model larger than `maxBytes` on its own is evicted
 * as soon as it is idle.
 */
export function chooseEvictions(loaded: readonly WarmModel[], limits: LruLimits, incoming?: { bytes: number }): string[] {
  let count = loaded.length + (incoming ? 1 : 0);
  let bytes = loaded.reduce((n, m) => n + m.bytes, 0) + (incoming?.bytes ?? 0);
  const candidates = loaded.filter((m) => !m.busy).sort((a, b) => a.lastUsed - b.lastUsed);
  const out: string[] = [];
  for (const m of candidates) {
    if (count <= limits.maxModels && bytes <= limits.maxBytes) break;
    out.push(m.id);
    count -= 1;
    bytes -= m.bytes;
  }
  return out;
}
