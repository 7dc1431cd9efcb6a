/**
 * Atomic output: every file stemkit writes goes to `<name>.tmp.<pid>.<n>` beside its destination and is
 * renamed into place only when complete. Live temp files are tracked so an interrupt can remove them.
 */
import { closeSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const live = new Set<string>();
let counter = 0;

/** A fresh temp path beside `finalPath` (same directory, so rename() is atomic). */
export function tempPathFor(finalPath: string): string {
  counter += 1;
  return `${finalPath}.tmp.${process.pid}.${counter}`;
}

export function trackTemp(path: string): void {
  live.add(path);
}

export function untrackTemp(path: string): void {
  live.delete(path);
}

/**
 * Creates and opens a tracked temp file for reading and writing. The file is created synchronously in the same
 * task that tracks it, so no file exists on disk untracked: an asynchronous create still in flight when a second
 * Ctrl-C removes the tracked files and exits would otherwise land after the removal and stay behind. The handle is
 * then opened on the existing file ('r+'), which fails instead of re-creating the file if an interrupt removed it.
 */
export async function openTemp(path: string): Promise<FileHandle> {
  trackTemp(path);
  closeSync(openSync(path, 'w'));
  return open(path, 'r+');
}

/** Renames a finished temp file into place. */
export async function commitTemp(tempPath: string, finalPath: string): Promise<void> {
  await rename(tempPath, finalPath);
  live.delete(tempPath);
}

/** Removes a temp file (ignoring absence). */
export async function discardTemp(tempPath: string): Promise<void> {
  // Untrack only once the file is gone: a second Ctrl-C during the rm must still find it to remove.
  await rm(tempPath, { force: true });
  live.delete(tempPath);
}

/** Synchronously removes every tracked temp file: for signal handlers and process exit. */
export function cleanupTempFilesSync(): string[] {
  const removed: string[] = [];
  for (const p of live) {
    try {
      unlinkSync(p);
      removed.push(p);
    } catch {
      // already gone
    }
  }
  live.clear();
  return removed;
}

/** Writes a whole buffer atomically. */
export async function atomicWriteFile(finalPath: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(finalPath), { recursive: true });
  const tmp = tempPathFor(finalPath);
  trackTemp(tmp);
  try {
    await writeFile(tmp, data);
    await commitTemp(tmp, finalPath);
  } catch (e) {
    await discardTemp(tmp);
    throw e;
  }
}

/** Sync rename for exit paths. */
export function commitTempSync(tempPath: string, finalPath: string): void {
  renameSync(tempPath, finalPath);
  live.delete(tempPath);
}

/** `<name>.tmp.<pid>.<n>` (sinks) and `<name>.tmp.<pid>.<n>.f32` (rescale spools), as made by tempPathFor. */
const TEMP_NAME = /\.tmp\.(\d+)\.\d+(?:\.f32)?$/;

/** False only when no process with this pid exists (ESRCH); a pid of another user (EPERM) is alive. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files left beside `outputs` by stemkit processes that no longer exist (killed with SIGKILL, power
 * loss): their spools can be hundreds of megabytes. Only plain files named like tempPathFor's, whose pid is dead,
 * are removed; a temp of a live process (another run writing the same folder) is left alone. Best effort.
 * @returns the paths removed.
 */
export async function sweepStaleTemps(outputs: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  const dirs = new Set(outputs.map((o) => dirname(o)));
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = TEMP_NAME.exec(name);
      if (!m || pidAlive(Number(m[1]))) continue;
      const p = join(dir, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st?.isFile()) continue;
      await rm(p, { force: true }).catch(() => undefined);
      removed.push(p);
    }
  }
  return removed;
}
