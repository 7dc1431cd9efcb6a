/**
 * Text that remembers where each character came from: every UTF-16 unit carries the half-open range
 * [lo, hi) of the input text it stands for, or -1 when it stands for nothing (a word gap, restored
 * punctuation). It lets word timestamps point back at the user's text after normalisation ("$5.50" →
 * "5 dollars and 50 cents": every letter of the expansion carries the range of "$5.50"), phonemisation
 * and the engines' post-processing, without each stage keeping its own offset tables.
 */

/** The "stands for nothing" marker. */
export const NO_SOURCE = -1;

export class SpanText {
  private constructor(
    readonly text: string,
    readonly lo: Int32Array,
    readonly hi: Int32Array,
  ) {}

  /** `text` as it stands in the input, starting at `offset`: unit i stands for [offset+i, offset+i+1). */
  static source(text: string, offset = 0): SpanText {
    const lo = new Int32Array(text.length);
    const hi = new Int32Array(text.length);
    for (let i = 0; i < text.length; i++) {
      lo[i] = offset + i;
      hi[i] = offset + i + 1;
    }
    return new SpanText(text, lo, hi);
  }

  /** `text` standing as a whole for [lo, hi) (whitespace for nothing); lo = -1 makes all of it stand for nothing. */
  static covering(text: string, lo: number, hi: number): SpanText {
    const l = new Int32Array(text.length);
    const h = new Int32Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const gap = lo < 0 || /\s/.test(text[i]!);
      l[i] = gap ? NO_SOURCE : lo;
      h[i] = gap ? NO_SOURCE : hi;
    }
    return new SpanText(text, l, h);
  }

  static concat(parts: readonly SpanText[]): SpanText {
    const n = parts.reduce((a, p) => a + p.text.length, 0);
    const lo = new Int32Array(n);
    const hi = new Int32Array(n);
    let off = 0;
    for (const p of parts) {
      lo.set(p.lo, off);
      hi.set(p.hi, off);
      off += p.text.length;
    }
    return new SpanText(parts.map((p) => p.text).join(''), lo, hi);
  }

  get length(): number {
    return this.text.length;
  }

  slice(a: number, b = this.text.length): SpanText {
    return new SpanText(this.text.slice(a, b), this.lo.slice(a, b), this.hi.slice(a, b));
  }

  trim(): SpanText {
    const a = this.text.length - this.text.trimStart().length;
    const b = this.text.trimEnd().length;
    return a >= b ? this.slice(0, 0) : this.slice(a, b);
  }

  /** The input range units [a, b) stand for together, or undefined when none stands for anything. */
  range(a = 0, b = this.text.length): [number, number] | undefined {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = a; i < b; i++) {
      if (this.lo[i]! < 0) continue;
      lo = Math.min(lo, this.lo[i]!);
      hi = Math.max(hi, this.hi[i]!);
    }
    return lo === Infinity ? undefined : [lo, hi];
  }

  /**
   * `String.prototype.replace` with a global regex, keeping sources: the replacement of a match stands for
   * everything the match stood for (whitespace in it for nothing); an insertion (empty match) stands for
   * the unit before it. `fn` gets the same arguments as a replace callback.
   */
  replace(re: RegExp, fn: string | ((match: string, ...rest: never[]) => string)): SpanText {
    if (!re.global) throw new Error('SpanText.replace needs a global regex');
    const edits: Array<{ at: number; len: number; out: string }> = [];
    const text = this.text.replace(re, (...args: unknown[]) => {
      let i = args.length - 1;
      if (typeof args[i] === 'object' && args[i] !== null) i--; // named groups
      const at = args[i - 1] as number;
      const match = args[0] as string;
      const out = typeof fn === 'string' ? fn : (fn as (...a: unknown[]) => string)(...args);
      edits.push({ at, len: match.length, out });
      return out;
    });
    if (edits.length === 0) return this;
    const lo = new Int32Array(text.length);
    const hi = new Int32Array(text.length);
    let src = 0;
    let dst = 0;
    for (const e of edits) {
      lo.set(this.lo.subarray(src, e.at), dst);
      hi.set(this.hi.subarray(src, e.at), dst);
      dst += e.at - src;
      const r = e.len > 0 ? this.range(e.at, e.at + e.len) : e.at > 0 && this.lo[e.at - 1]! >= 0 ? ([this.lo[e.at - 1]!, this.hi[e.at - 1]!] as [number, number]) : undefined;
      for (let k = 0; k < e.out.length; k++, dst++) {
        const gap = r === undefined || /\s/.test(e.out[k]!);
        lo[dst] = gap ? NO_SOURCE : r[0];
        hi[dst] = gap ? NO_SOURCE : r[1];
      }
      src = e.at + e.len;
    }
    lo.set(this.lo.subarray(src), dst);
    hi.set(this.hi.subarray(src), dst);
    return new SpanText(text, lo, hi);
  }

  /** Canonical decomposition (NFD), each decomposed unit standing for what its code point stood for. */
  nfd(): SpanText {
    const whole = this.text.normalize('NFD');
    if (whole === this.text) return this;
    const lo: number[] = [];
    const hi: number[] = [];
    let i = 0;
    for (const cp of this.text) {
      const d = cp.normalize('NFD');
      for (let k = 0; k < d.length; k++) {
        lo.push(this.lo[i]!);
        hi.push(this.hi[i]!);
      }
      i += cp.length;
    }
    // Canonical reordering can move combining marks inside a cluster; the lengths still agree, and a mark
    // stays within its letter's word, so the per-position sources remain right.
    return new SpanText(whole, Int32Array.from(lo), Int32Array.from(hi));
  }

  /** Code points with their unit index. */
  *codePoints(): Generator<[string, number]> {
    let i = 0;
    for (const cp of this.text) {
      yield [cp, i];
      i += cp.length;
    }
  }
}
