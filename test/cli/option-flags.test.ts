import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { planOutputs } from '../../src/separate/separate.js';
import { flagForOption, withFlags } from '../../src/cli/messages.js';

function thrown(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error('expected a UsageError');
}

describe('library errors name options; the CLI shows flags', () => {
  it('flagForOption: kebab case, with the exceptions table', () => {
    expect(flagForOption('twoStems')).toBe('--two-stems');
    expect(flagForOption('batchSize')).toBe('--batch-size');
    expect(flagForOption('stems')).toBe('--stems');
    expect(flagForOption('channelMode')).toBe('--channels');
  });

  it('planOutputs speaks of twoStems and stems; withFlags turns exactly those words into flags', () => {
    const two = thrown(() => planOutputs(['vocals', 'drums'], { twoStems: 'bass' }));
    expect(two.message).toBe('twoStems bass: the model has no stem "bass"');
    expect(two.details).toEqual({ option: 'twoStems' });
    expect(withFlags(two.message, two.details)).toBe('--two-stems bass: the model has no stem "bass"');
    const stems = thrown(() => planOutputs(['vocals', 'drums'], { stems: ['stems'] }));
    // The option word is replaced; the same word as a value inside quotes stays.
    expect(withFlags(stems.message, stems.details)).toBe('--stems: unknown stem "stems"');
    expect(withFlags('no option here', undefined)).toBe('no option here');
  });
});
