/**
 * Where a worker finds a job's files: the job's paths (as the submitter sees the shared storage) mapped
 * through `queue.pathMap` to this machine's mount points, and kept inside `queue.roots`.
 */
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';

/** True when `path` is `prefix` or below it (whole path segments: /data2 is not below /data). */
function isUnder(path: string, prefix: string): boolean {
  const rel = relative(prefix, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Replaces the longest `from` prefix of `map` found in `path` by its `to`. Unmatched paths are returned as they are. */
export function mapPath(path: string, map: Readonly<Record<string, string>>): string {
  let best: [string, string] | undefined;
  for (const [from, to] of Object.entries(map)) {
    if (isUnder(path, from) && (!best || from.length > best[0].length)) best = [from, to];
  }
  if (!best) return path;
  const rel = relative(best[0], path);
  return rel === '' ? best[1] : resolve(best[1], rel);
}

/** The inverse of mapPath: a local path back in the job's terms (for results the submitter reads). */
export function unmapPath(path: string, map: Readonly<Record<string, string>>): string {
  const inverse = Object.fromEntries(Object.entries(map).map(([from, to]) => [to, from]));
  return mapPath(path, inverse);
}

/** The real path of `path`, or of its nearest existing ancestor joined with the rest (for outputs not written yet). */
async function realOrAncestor(path: string): Promise<string> {
  let cur = path;
  const rest: string[] = [];
  for (;;) {
    try {
      const real = await realpath(cur);
      return rest.length === 0 ? real : resolve(real, ...rest.reverse());
    } catch {
      const parent = dirname(cur);
      if (parent === cur) return path;
      rest.push(relative(parent, cur));
      cur = parent;
    }
  }
}

/**
 * Maps a job path and checks that it lies inside one of `roots`, following symbolic links (a link inside a
 * root that points outside it is refused).
 * @returns the local path to use.
 * @throws UsageError (64, E_OUTSIDE_ROOTS) for a relative path or one outside every root: never retried.
 */
export async function localPath(jobPath: string, what: string, map: Readonly<Record<string, string>>, roots: readonly string[]): Promise<string> {
  if (!isAbsolute(jobPath)) {
    throw new UsageError(`${what} ${jobPath} is not an absolute path`, { code: 'E_OUTSIDE_ROOTS', hint: 'jobs carry absolute paths on storage every worker sees' });
  }
  const local = resolve(mapPath(jobPath, map));
  await checkInsideRoots(local, what, roots, jobPath);
  return local;
}

/** Throws UsageError (64, E_OUTSIDE_ROOTS) unless the local path (links followed) lies inside one of `roots`. */
export async function checkInsideRoots(local: string, what: string, roots: readonly string[], jobPath = local): Promise<void> {
  const real = await realOrAncestor(resolve(local));
  const realRoots = await Promise.all(roots.map((r) => realOrAncestor(resolve(r))));
  if (!realRoots.some((r) => isUnder(real, r))) {
    throw new UsageError(`${what} ${local}${local !== jobPath ? ` (job path ${jobPath})` : ''} is outside this worker's roots (${roots.join(', ')})`, {
      code: 'E_OUTSIDE_ROOTS',
      hint: 'put inputs and outputs on the shared storage listed in "queue.roots", or map its mount point with "queue.pathMap"',
    });
  }
}
