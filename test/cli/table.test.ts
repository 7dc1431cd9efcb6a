import { describe, expect, it } from 'vitest';
import { fmt, formatTable } from '../../src/cli/render/table.js';

describe('formatTable', () => {
  it('pads on visible width (ANSI ignored), right-aligns numbers, trims line ends', () => {
    const t = formatTable([{ header: 'model' }, { header: 'SDR', align: 'right' }], [
      ['\u001b[32mhtdemucs\u001b[39m', '9.10'],
      ['classic', '—'],
    ]);
    expect(t.split('\n')).toEqual(['model      SDR', '--------  ----', '\u001b[32mhtdemucs\u001b[39m  9.10', 'classic      —']);
  });

  it('fmt: fixed decimals, a dash for non-finite values', () => {
    expect([fmt(1.005, 1), fmt(2), fmt(Number.NaN), fmt(undefined), fmt(-Infinity)]).toEqual(['1.0', '2.00', '—', '—', '—']);
  });
});
