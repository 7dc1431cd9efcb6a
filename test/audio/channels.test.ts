import { describe, expect, it } from 'vitest';
import { adaptChannels, downmixMatrix, downmixToMono, toStereo } from '../../src/audio/channels.js';
import type { RawAudio } from '../../src/audio/raw-audio.js';

const A = Math.SQRT1_2;
/** A block where channel c is the constant (c + 1) / 10, so each output is an exact weighted sum to check. */
const block = (n: number, frames = 3): RawAudio => ({
  channels: Array.from({ length: n }, (_, c) => new Float32Array(frames).fill((c + 1) / 10)),
  sampleRate: 48000,
});
// float32 storage of the inputs/outputs: 1e-7 absolute is ~1 ulp at these magnitudes
const close = (a: number, b: number): void => expect(Math.abs(a - b)).toBeLessThan(1e-7);

describe('toStereo', () => {
  it('mono is duplicated into two independent arrays', () => {
    const m = { channels: [Float32Array.from([0.1, -0.2])], sampleRate: 8000 };
    const s = toStereo(m);
    expect(s.channels).toEqual([Float32Array.from([0.1, -0.2]), Float32Array.from([0.1, -0.2])]);
    expect(s.channels[1]).not.toBe(s.channels[0]);
    expect(s.sampleRate).toBe(8000);
  });

  it('stereo passes through unchanged', () => {
    const b = block(2);
    expect(toStereo(b)).toBe(b);
  });

  // Expected L/R for channel values v_c = (c+1)/10, following the layouts documented in channels.ts.
  it.each([
    [3, (0.1 + A * 0.3) / (1 + A), (0.2 + A * 0.3) / (1 + A)], // FL FR FC
    [4, (0.1 + A * 0.3) / (1 + A), (0.2 + A * 0.4) / (1 + A)], // FL FR BL BR
    [5, (0.1 + A * 0.3 + A * 0.4) / (1 + 2 * A), (0.2 + A * 0.3 + A * 0.5) / (1 + 2 * A)], // FL FR FC BL BR
    [6, (0.1 + A * 0.3 + A * 0.5) / (1 + 2 * A), (0.2 + A * 0.3 + A * 0.6) / (1 + 2 * A)], // 5.1, LFE (0.4) dropped
    [7, (0.1 + A * 0.3 + A * 0.5 + A * 0.6) / (1 + 3 * A), (0.2 + A * 0.3 + A * 0.5 + A * 0.7) / (1 + 3 * A)], // 6.1
    [8, (0.1 + A * 0.3 + A * 0.5 + A * 0.7) / (1 + 3 * A), (0.2 + A * 0.3 + A * 0.6 + A * 0.8) / (1 + 3 * A)], // 7.1
    [10, 0.1, 0.2], // no standard layout: first two channels
  ])('%i channels → L, R', (n, l, r) => {
    const s = toStereo(block(n));
    expect(s.channels).toHaveLength(2);
    close(s.channels[0]![2]!, l);
    close(s.channels[1]![2]!, r);
  });

  it('full scale in every channel stays at full scale (coefficients sum to 1 per side)', () => {
    for (let n = 3; n <= 8; n++) {
      const [l, r] = downmixMatrix(n);
      close(l.reduce((s, [, g]) => s + g, 0), 1);
      close(r.reduce((s, [, g]) => s + g, 0), 1);
    }
  });
});

describe('downmixToMono / adaptChannels', () => {
  it('stereo → mono is (L + R) / 2; mono passes through', () => {
    const m = downmixToMono({ channels: [Float32Array.from([1, 0.5]), Float32Array.from([0, -0.5])], sampleRate: 1 });
    expect(Array.from(m.channels[0]!)).toEqual([0.5, 0]);
    const mono = block(1);
    expect(downmixToMono(mono)).toBe(mono);
  });

  it('5.1 → mono is the mean of its stereo downmix', () => {
    const m = downmixToMono(block(6));
    close(m.channels[0]![0]!, ((0.1 + A * 0.3 + A * 0.5) / (1 + 2 * A) + (0.2 + A * 0.3 + A * 0.6) / (1 + 2 * A)) / 2);
  });

  it('dispatches on the target count', () => {
    const st = block(2);
    expect(adaptChannels(st, 2)).toBe(st);
    expect(adaptChannels(block(1), 2).channels).toHaveLength(2);
    expect(adaptChannels(block(6), 1).channels).toHaveLength(1);
    const up = adaptChannels(block(2), 4);
    expect(up.channels.map((c) => c[0])).toEqual([Math.fround(0.1), Math.fround(0.2), 0, 0]);
    const monoUp = adaptChannels(block(1), 3);
    expect(monoUp.channels.map((c) => c[0])).toEqual([Math.fround(0.1), Math.fround(0.1), Math.fround(0.1)]);
    expect(() => adaptChannels(st, 0)).toThrow(/invalid channel count 0/);
  });
});
