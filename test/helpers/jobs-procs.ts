/**
 * Helpers for tests that run real processes against one runtime directory: spawn, read JSON lines,
 * and compute the largest number of overlapping [start, end] intervals.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const holderScript = join(repoRoot, 'test', 'helpers', 'jobs-holder.mjs');

/**
 * The process tests import the built library (dist/), as real processes would. Fail loudly rather than
 * test stale code.
 */
export function assertBuilt(srcRel: string, distRel: string): void {
  const src = join(repoRoot, srcRel);
  const dist = join(repoRoot, distRel);
  if (!existsSync(dist)) throw new Error(`${distRel} is missing: run \`npm run build\` first (npm test does).`);
  if (statSync(src).mtimeMs > statSync(dist).mtimeMs + 1000) {
    throw new Error(`${distRel} is older than ${srcRel}: run \`npm run build\` first (npm test does).`);
  }
}

export type JsonLine = Record<string, unknown> & { event?: string; t?: number; pid?: number };

export interface Proc {
  child: ChildProcess;
  /** Every JSON line printed on stdout so far. */
  lines: JsonLine[];
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process has exited and its output is read. */
  exited: Promise<number | string>;
  /** Resolves with the first line whose `event` matches. */
  waitFor(event: string): Promise<JsonLine>;
  /** Every JSON line printed on stderr so far (stemkit's `--json` progress and log events). */
  errLines: JsonLine[];
  /** Resolves with the first stdout or stderr JSON line matching `pred`; rejects if the process exits first. */
  waitForLine(pred: (l: JsonLine) => boolean): Promise<JsonLine>;
}

export function spawnNode(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: JsonLine[] = [];
  const errLines: JsonLine[] = [];
  const watchers: Array<{ pred: (l: JsonLine) => boolean; resolve: (l: JsonLine) => void }> = [];
  let err = '';
  const reader = (into: JsonLine[], keepText: boolean) => {
    let buf = '';
    return (chunk: string): void => {
      if (keepText) err += chunk;
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        let rec: JsonLine;
        try {
          rec = JSON.parse(line) as JsonLine;
        } catch {
          continue;
        }
        into.push(rec);
        for (const w of [...watchers]) {
          if (w.pred(rec)) {
            watchers.splice(watchers.indexOf(w), 1);
            w.resolve(rec);
          }
        }
      }
    };
  };
  child.stdout!.setEncoding('utf8').on('data', reader(lines, false));
  child.stderr!.setEncoding('utf8').on('data', reader(errLines, true));
  const exited = new Promise<number | string>((resolve) => {
    child.on('close', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const waitForLine = (pred: (l: JsonLine) => boolean): Promise<JsonLine> => {
    const found = [...lines, ...errLines].find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      watchers.push({ pred, resolve });
      void exited.then((code) => reject(new Error(`process exited (${String(code)}) before the awaited line; stderr: ${err.slice(-2000)}`)));
    });
  };
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    errLines,
    waitForLine,
    waitFor: (event) => waitForLine((l) => l.event === event),
  };
}

export function spawnHolder(opts: Record<string, unknown>): Proc {
  return spawnNode([holderScript, JSON.stringify(opts)]);
}

/** The largest number of intervals covering one instant (an interval ending when another starts does not overlap it). */
export function maxOverlap(intervals: ReadonlyArray<readonly [number, number]>): number {
  const points: Array<[number, number]> = [];
  for (const [s, e] of intervals) {
    points.push([s, 1], [e, -1]);
  }
  // Ends sort before starts at the same instant.
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of points) {
    cur += d;
    max = Math.max(max, cur);
  }
  return max;
}

/** A pid that is certainly not running: a child that has already exited. */
export async function deadPid(): Promise<number> {
  const p = spawnNode(['-e', '']);
  await p.exited;
  return p.child.pid!;
}
