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

/**
 * Splits a line of `sep`-joined segments into lines that fit `width` columns (each under it: a line that fills the
 * last column makes some terminals wrap an empty line), breaking only between segments; continuation lines start
 * with `indent`. A segment longer than the width gets a line of its own (the terminal wraps it). Without a width
 * (not a terminal) the line is returned whole.
 */
export function wrapSegments(text: string, sep: string, width: number | undefined, indent = ''): string[] {
  if (width === undefined || width <= 0 || text.length < width) return [text];
  const lines: string[] = [];
  // A line that more fields follow ends with the separator's visible part (" |").
  const mark = sep.trimEnd();
  const segs = text.split(sep);
  let line = '';
  segs.forEach((seg, i) => {
    const next = line === '' ? seg : `${line}${sep}${seg}`;
    const tail = i < segs.length - 1 ? mark.length : 0;
    if (line !== '' && next.length + tail >= width) {
      lines.push(`${line}${mark}`);
      line = `${indent}${seg}`;
    } else {
      line = next;
    }
  });
  lines.push(line);
  return lines;
}
