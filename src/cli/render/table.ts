/**
 * Plain-text tables for command results (eval, bench, models list, status). Cells may carry ANSI
 * colour; widths are computed on the visible text.
 */

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

const visibleLength = (s: string): number => s.replace(ANSI, '').length;

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

export function formatTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = columns.map((c, i) => Math.max(visibleLength(c.header), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const pad = (s: string, i: number): string => {
    const fill = ' '.repeat(widths[i]! - visibleLength(s));
    return columns[i]!.align === 'right' ? fill + s : s + fill;
  };
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, i)).join('  ').trimEnd();
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Fixed decimals, with '—' for non-finite values (a silent stem's SDR, an unmeasured metric). */
export function fmt(value: number | undefined, decimals = 2): string {
  return value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(decimals);
}
