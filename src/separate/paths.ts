/**
 * Output naming: the `filename` template ({track}, {trackext}, {dir}, {stem}, {ext}, {model}) made safe,
 * and never outside the output folder.
 */
import { basename, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';

export const DEFAULT_FILENAME_TEMPLATE = '{track}/{stem}.{ext}';
export const FILENAME_FIELDS = ['track', 'trackext', 'dir', 'stem', 'ext', 'model'] as const;
export type FilenameField = (typeof FILENAME_FIELDS)[number];
export type FilenameFields = Record<FilenameField, string>;
const FIELDS = new Set<string>(FILENAME_FIELDS);

/**
 * Longest path component stemkit creates, in UTF-8 bytes. File systems allow 255 bytes; the temp names
 * beside an output (`<name>.tmp.<pid>.<n>.f32`) add up to ~30, so 200 leaves room for them.
 */
export const MAX_COMPONENT_BYTES = 200;

/** Cuts `s` to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let bytes = 0;
  let out = '';
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > max) break;
    bytes += n;
    out += ch;
  }
  return out;
}

/**
 * Makes one substituted value safe as (part of) a single path component: path separators, characters that
 * are invalid on Windows and control characters become `_`, leading dots are dropped (no `..`, no hidden
 * files), the result is cut to MAX_COMPONENT_BYTES bytes (not characters: non-ASCII names take 2–4 bytes
 * each), and an empty result becomes `_`.
 */
export function sanitizeComponent(value: string): string {
  // eslint-disable-next-line no-control-regex
  let s = value.replace(/[/\\:*?"<>|\u0000-\u001f\u007f-\u009f]/g, '_').trim();
  s = s.replace(/^\.+/, '');
  s = truncateUtf8(s, MAX_COMPONENT_BYTES).trim();
  return s === '' ? '_' : s;
}

/** A relative folder path (`disc1/extra`) made safe component by component; '' stays ''. */
function sanitizeDir(value: string): string {
  return value
    .split(/[/\\]+/)
    .filter((c) => c !== '' && c !== '.')
    .map(sanitizeComponent)
    .join('/');
}

/** The last characters of `s` that fit in `max` UTF-8 bytes. */
function tailUtf8(s: string, max: number): string {
  const chars = [...s];
  let bytes = 0;
  let i = chars.length;
  while (i > 0 && bytes + Buffer.byteLength(chars[i - 1]!, 'utf8') <= max) bytes += Buffer.byteLength(chars[--i]!, 'utf8');
  return chars.slice(i).join('');
}

/** Bytes kept from the end of an over-long component: the stem, the extension and a bit of the name. */
const TAIL_BYTES = 64;

/**
 * Keeps every component of a substituted relative path within MAX_COMPONENT_BYTES by cutting its middle
 * (`<start>~<end>`): the end carries what tells stems and formats apart ("_vocals.wav"), the start the name.
 */
function fitComponents(rel: string): string {
  return rel
    .split('/')
    .map((c) => {
      if (Buffer.byteLength(c, 'utf8') <= MAX_COMPONENT_BYTES) return c;
      const tail = tailUtf8(c, TAIL_BYTES);
      return `${truncateUtf8(c, MAX_COMPONENT_BYTES - 1 - Buffer.byteLength(tail, 'utf8'))}~${tail}`;
    })
    .join('/');
}

/**
 * Checks a template up front: only known fields, `{stem}` present (else every stem would go to the same
 * file), relative, and no `..` component.
 * @throws UsageError (64) naming the problem.
 */
export function validateFilenameTemplate(template: string): void {
  const hint = `use fields ${FILENAME_FIELDS.map((f) => `{${f}}`).join(', ')}, e.g. "${DEFAULT_FILENAME_TEMPLATE}"`;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    if (!FIELDS.has(m[1]!)) throw new UsageError(`filename: unknown field {${m[1]}}`, { hint, details: { option: 'filename' } });
  }
  if (!template.includes('{stem}')) throw new UsageError('filename must contain {stem} (otherwise every stem gets the same name)', { hint, details: { option: 'filename' } });
  if (isAbsolute(template) || /^[A-Za-z]:/.test(template)) throw new UsageError('filename must be relative to the output folder (outDir)', { hint, details: { option: ['filename', 'outDir'] } });
  if (template.split(/[/\\]/).some((c) => c === '..')) throw new UsageError('filename must not contain ".." (outputs stay inside the output folder)', { hint, details: { option: 'filename' } });
}

/** The track name of an input: its file name without extension. */
export function trackName(input: string): string {
  return basename(input, extname(input));
}

/** The template fields that come from an input: {track}, {trackext} and {dir} (its folder relative to `root`). */
export function inputFields(input: string, root?: string): Pick<FilenameFields, 'track' | 'trackext' | 'dir'> {
  const abs = resolve(input);
  let dir = '';
  if (root !== undefined) {
    const r = relative(resolve(root), resolve(abs, '..'));
    if (r !== '' && !r.startsWith('..') && !isAbsolute(r)) dir = r.split(sep).join('/');
  }
  return { track: trackName(abs), trackext: extname(abs).slice(1), dir };
}

/**
 * The output path for one stem. Substituted values are sanitised; the result is resolved and must stay
 * inside `outDir`.
 * @throws UsageError (64) when the path would leave the output folder.
 */
export function outputPath(outDir: string, template: string, fields: Partial<FilenameFields> & Pick<FilenameFields, 'track' | 'stem' | 'ext' | 'model'>): string {
  const all: FilenameFields = { trackext: '', dir: '', ...fields };
  const substituted = template.replace(/\{(track|trackext|dir|stem|ext|model)\}/g, (_, k: FilenameField) => (k === 'dir' ? sanitizeDir(all.dir) : sanitizeComponent(all[k])));
  // An empty {dir} leaves "/x" or "a//b": collapse, so the path stays relative and has no empty component.
  const rel = fitComponents(substituted.replace(/[/\\]+/g, '/').replace(/^\/+/, ''));
  const root = resolve(outDir);
  const full = resolve(root, rel);
  const r = relative(root, full);
  if (r === '' || r.startsWith(`..${sep}`) || r === '..' || isAbsolute(r)) {
    throw new UsageError(`output name "${rel}" would be outside the output folder ${root}`, { hint: 'change filename', details: { option: 'filename' } });
  }
  return full;
}
