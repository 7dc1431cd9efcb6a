import { describe, expect, it } from 'vitest';
import { fmt, formatTable, wrapSegments } from '../../src/cli/render/table.js';

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

describe('wrapSegments', () => {
  const line = '  load 0.31s | decode 0.02s | infer 3.03s | write 0.43s | total 3.78s | RTF 0.19 | cpu ×2';
  it('breaks between fields, every line under the width, continuation lines indented', () => {
    expect(wrapSegments(line, ' | ', 60, '  ')).toEqual(['  load 0.31s | decode 0.02s | infer 3.03s | write 0.43s |', '  total 3.78s | RTF 0.19 | cpu ×2']);
    for (let w = 20; w <= 100; w++) {
      const out = wrapSegments(line, ' | ', w, '  ');
      for (const l of out) expect(l.length).toBeLessThan(w);
      // Nothing lost: the fields, in order.
      expect(out.map((l) => l.trim().replace(/ \|$/, '')).join(' | ')).toBe(line.trim());
    }
  });
  it('leaves a line that fits, or one for no terminal, whole; a field wider than the width gets its own line', () => {
    expect(wrapSegments(line, ' | ', 100, '  ')).toEqual([line]);
    expect(wrapSegments(line, ' | ', undefined, '  ')).toEqual([line]);
    expect(wrapSegments('a | a-very-long-field | b', ' | ', 8, '')).toEqual(['a |', 'a-very-long-field |', 'b']);
  });
});
