/**
 * Output naming: the `--filename` template ({track}, {stem}, {ext}, {model}) made safe, and never outside
 * the output folder.
 */
import { basename, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';

export const DEFAULT_FILENAME_TEMPLATE = '{track}/{stem}.{ext}';
const FIELDS = new Set(['track', 'stem', 'ext', 'model']);

/**
 * Makes one substituted value safe as (part of) a single path component: path separators, characters that
 * are invalid on Windows and control characters become `_`, leading dots are dropped (no `..`, no hidden
 * files), and an empty result becomes `_`.
 */
export function sanitizeComponent(value: string): string {
  // eslint-disable-next-line no-control-regex
  let s = value.replace(/[/\\:*?"<>|\u0000-\u001f\u007f]/g, '_').trim();
  s = s.replace(/^\.+/, '');
  if (s.length > 200) s = s.slice(0, 200);
  return s === '' ? '_' : s;
}

/**
 * Checks a template up front: only known fields, `{stem}` present (else every stem would go to the same
 * file), relative, and no `..` component.
 * @throws UsageError (64) naming the problem.
 */
export function validateFilenameTemplate(template: string): void {
  const hint = `use fields {track}, {stem}, {ext}, {model}, e.g. "${DEFAULT_FILENAME_TEMPLATE}"`;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    if (!FIELDS.has(m[1]!)) throw new UsageError(`--filename: unknown field {${m[1]}}`, { hint });
  }
  if (!template.includes('{stem}')) throw new UsageError('--filename must contain {stem} (otherwise every stem gets the same name)', { hint });
  if (isAbsolute(template) || /^[A-Za-z]:/.test(template)) throw new UsageError('--filename must be relative to the output folder (-o)', { hint });
  if (template.split(/[/\\]/).some((c) => c === '..')) throw new UsageError('--filename must not contain ".." (outputs stay inside the output folder)', { hint });
}

/** The track name of an input: its file name without extension. */
export function trackName(input: string): string {
  return basename(input, extname(input));
}

/**
 * The output path for one stem. Substituted values are sanitised; the result is resolved and must stay
 * inside `outDir`.
 * @throws UsageError (64) when the path would leave the output folder.
 */
export function outputPath(outDir: string, template: string, fields: { track: string; stem: string; ext: string; model: string }): string {
  const rel = template.replace(/\{(track|stem|ext|model)\}/g, (_, k: keyof typeof fields) => sanitizeComponent(fields[k]));
  const root = resolve(outDir);
  const full = resolve(root, rel);
  const r = relative(root, full);
  if (r === '' || r.startsWith(`..${sep}`) || r === '..' || isAbsolute(r)) {
    throw new UsageError(`output name "${rel}" would be outside the output folder ${root}`, { hint: 'change --filename' });
  }
  return full;
}
