/**
 * The warm-model LRU's eviction rule (src/serve/lru.ts): count and byte limits, least recently used first,
 * busy models never. The same rule end to end, with measured model sizes, is in serve.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { chooseEvictions, type WarmModel } from '../../src/serve/lru.js';

const m = (id: string, bytes: number, lastUsed: number, busy = false): WarmModel => ({ id, bytes, lastUsed, busy });

describe('chooseEvictions', () => {
  it('within both limits: nothing is evicted', () => {
    expect(chooseEvictions([m('a', 100, 1), m('b', 100, 2)], { maxModels: 3, maxBytes: 300 }, { bytes: 100 })).toEqual([]);
  });

  it('the count limit evicts the least recently used first', () => {
    expect(chooseEvictions([m('new', 1, 3), m('old', 1, 1), m('mid', 1, 2)], { maxModels: 2, maxBytes: 1e9 }, { bytes: 1 })).toEqual(['old', 'mid']);
  });

  it('the byte limit evicts until the rest plus the incoming model fit, even under the count limit', () => {
    // 400 + 300 + incoming 500 = 1200 > 1000: dropping the oldest (400) leaves 800.
    expect(chooseEvictions([m('a', 400, 1), m('b', 300, 2)], { maxModels: 10, maxBytes: 1000 }, { bytes: 500 })).toEqual(['a']);
    // A larger incoming model needs both gone.
    expect(chooseEvictions([m('a', 400, 1), m('b', 300, 2)], { maxModels: 10, maxBytes: 1000 }, { bytes: 800 })).toEqual(['a', 'b']);
  });

  it('busy models are never evicted, even when the limits stay exceeded', () => {
    expect(chooseEvictions([m('a', 900, 1, true), m('b', 300, 2)], { maxModels: 10, maxBytes: 1000 }, { bytes: 100 })).toEqual(['b']);
    expect(chooseEvictions([m('a', 900, 1, true)], { maxModels: 1, maxBytes: 100 }, { bytes: 100 })).toEqual([]);
  });

  it('without an incoming model (after a job): an idle model larger than the whole budget is released', () => {
    expect(chooseEvictions([m('big', 2000, 5)], { maxModels: 2, maxBytes: 1000 })).toEqual(['big']);
    expect(chooseEvictions([m('a', 600, 1), m('b', 600, 2)], { maxModels: 2, maxBytes: 1000 })).toEqual(['a']);
  });
});
