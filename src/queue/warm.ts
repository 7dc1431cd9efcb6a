/**
 * Loaded models kept between jobs, so a worker pays a model load once per model and not once per job.
 * A model object runs one job at a time (sessions are not shared across concurrent calls), so the pool hands
 * out idle instances and loads another when all instances of a key are busy. At most `maxIdle` idle
 * instances stay loaded; the least recently used beyond that are disposed.
 */
export interface Disposable {
  dispose(): Promise<void>;
}

export class WarmPool<T extends Disposable> {
  private readonly idle: Array<{ key: string; item: T }> = [];
  private loads = 0;

  constructor(private readonly maxIdle: number) {}

  /** Model loads so far (cache misses). */
  get loaded(): number {
    return this.loads;
  }

  /** An idle instance for `key`, or a new one from `load`. Give it back with `give` (or `discard`) when done. */
  async take(key: string, load: () => Promise<T>): Promise<T> {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (this.idle[i]!.key === key) return this.idle.splice(i, 1)[0]!.item;
    }
    this.loads += 1;
    return load();
  }

  /** Returns an instance to the pool (most recently used last). */
  async give(key: string, item: T): Promise<void> {
    this.idle.push({ key, item });
    while (this.idle.length > this.maxIdle) await this.idle.shift()!.item.dispose().catch(() => undefined);
  }

  /** Disposes every idle instance. */
  async clear(): Promise<void> {
    const all = this.idle.splice(0);
    for (const { item } of all) await item.dispose().catch(() => undefined);
  }
}
