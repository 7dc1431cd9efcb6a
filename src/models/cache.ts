/**
 * The model cache: `<cacheDir>/<model-id>/<file>`, plus `<cacheDir>/<model-id>/.manifest.json` recording the
 * size and sha256 of every file that was verified on its way in (download or import).
 *
 * A file counts as installed only when the manifest records it and its size on disk matches; the manifest is
 * written after verification, so a half-written or unverified file never counts. Files whose registry entry
 * has no sha256 get the checksum of their first verified copy recorded (trust on first use) and are checked
 * against it by `verifyModel`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/schema.js';
import { throwIfAborted } from '../errors.js';
import { atomicWriteFile } from '../util/atomic.js';
import { acquireModelLock } from './lock.js';
import { availablePrecisions, listModels, modelFiles, packageModelsDir, type ModelEntry, type ModelFile, type Precision } from './registry.js';

export const MANIFEST_NAME = '.manifest.json';
export const PART_SUFFIX = '.part';

/** One verified file in a model's manifest. */
export interface ManifestFile {
  size: number;
  sha256: string;
  /**
   * 'registry': pinned by the registry; 'server': declared by the server (X-Linked-Etag) and matched by the bytes;
   * 'recorded': nobody vouched for it, recorded on first install (trust on first use). `verify` re-checks all three.
   */
  checksum: 'registry' | 'server' | 'recorded';
  /** Where it came from: the URL downloaded, or `import:<absolute path>`. */
  from: string;
  installedAt: string;
}

export interface Manifest {
  id: string;
  files: Record<string, ManifestFile>;
}

/** The root of the model cache (ResolvedConfig.cacheDir: STEMKIT_CACHE_DIR > $XDG_CACHE_HOME/stemkit > ~/.cache/stemkit). */
export function cacheDir(config: Pick<ResolvedConfig, 'cacheDir'>): string {
  return config.cacheDir;
}

/** The folder holding one model's files. Embedded models live in the package's models/ folder. */
export function modelDir(entry: ModelEntry, config: Pick<ResolvedConfig, 'cacheDir'>): string {
  return entry.embedded ? packageModelsDir() : join(cacheDir(config), entry.id);
}

export async function readManifest(dir: string, id: string): Promise<Manifest> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, MANIFEST_NAME), 'utf8')) as Partial<Manifest>;
    if (parsed && typeof parsed.files === 'object' && parsed.files !== null) return { id, files: parsed.files };
  } catch {
    // absent or unreadable: nothing is recorded (files will be re-verified or re-downloaded)
  }
  return { id, files: {} };
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await atomicWriteFile(join(dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Streams a file through sha256. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    throwIfAborted(signal);
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** True when `file` is recorded in the manifest, matches the registry's pins and has its recorded size on disk. */
export async function isFileInstalled(dir: string, manifest: Manifest, file: ModelFile): Promise<boolean> {
  const rec = manifest.files[file.name];
  if (!rec) return false;
  if (file.size !== undefined && rec.size !== file.size) return false;
  if (file.sha256 !== undefined && rec.sha256 !== file.sha256) return false;
  return (await sizeOf(join(dir, file.name))) === rec.size;
}

/**
 * Whether every file of `entry` at `precision` is in the cache and verified (a cheap check: manifest + sizes;
 * `verifyModel` re-hashes). Embedded models are installed when their package file exists.
 */
export async function isInstalled(entry: ModelEntry, config: Pick<ResolvedConfig, 'cacheDir'>, precision: Precision = 'fp32'): Promise<boolean> {
  const dir = modelDir(entry, config);
  const files = modelFiles(entry, precision);
  if (entry.embedded) {
    for (const f of files) if ((await sizeOf(join(dir, f.name))) === undefined) return false;
    return true;
  }
  const manifest = await readManifest(dir, entry.id);
  for (const f of files) if (!(await isFileInstalled(dir, manifest, f))) return false;
  return true;
}

/** The precisions of `entry` that are completely installed. */
export async function installedPrecisions(entry: ModelEntry, config: Pick<ResolvedConfig, 'cacheDir'>): Promise<Precision[]> {
  const out: Precision[] = [];
  for (const p of availablePrecisions(entry)) if (await isInstalled(entry, config, p)) out.push(p);
  return out;
}

/** Every file name of an entry across all precisions (deduplicated, registry order). */
export function allModelFiles(entry: ModelEntry): ModelFile[] {
  const seen = new Map<string, ModelFile>();
  for (const p of availablePrecisions(entry)) for (const f of modelFiles(entry, p)) if (!seen.has(f.name)) seen.set(f.name, f);
  return [...seen.values()];
}

export type FileCheck = 'ok' | 'missing' | 'size-mismatch' | 'checksum-mismatch' | 'unrecorded';

export interface FileVerification {
  name: string;
  role: string;
  path: string;
  status: FileCheck;
  expectedSize?: number;
  actualSize?: number;
  expectedSha256?: string;
  actualSha256?: string;
  /** Where the expected checksum comes from. */
  checksum?: 'registry' | 'server' | 'recorded';
}

export interface ModelVerification {
  id: string;
  dir: string;
  /** True when every present file verified and at least one precision is complete. */
  ok: boolean;
  files: FileVerification[];
}

/**
 * Re-hashes every file of `entry` present in the cache and compares it with the registry's sha256, or with the
 * checksum recorded on first download when the registry has none. Files of precisions that were never installed
 * are reported as 'missing' but do not make the model fail unless no precision is complete.
 */
export async function verifyModel(entry: ModelEntry, config: Pick<ResolvedConfig, 'cacheDir'>, signal?: AbortSignal): Promise<ModelVerification> {
  const dir = modelDir(entry, config);
  const manifest = entry.embedded ? { id: entry.id, files: {} } : await readManifest(dir, entry.id);
  const files: FileVerification[] = [];
  for (const f of allModelFiles(entry)) {
    const path = join(dir, f.name);
    const actualSize = await sizeOf(path);
    const rec = (manifest.files as Record<string, ManifestFile>)[f.name];
    const v: FileVerification = { name: f.name, role: f.role, path, status: 'ok' };
    const expectedSize = f.size ?? rec?.size;
    const expectedSha = f.sha256 ?? rec?.sha256;
    if (expectedSize !== undefined) v.expectedSize = expectedSize;
    if (expectedSha !== undefined) {
      v.expectedSha256 = expectedSha;
      v.checksum = f.sha256 ? 'registry' : (rec?.checksum ?? 'recorded');
    }
    if (actualSize === undefined) {
      v.status = 'missing';
      files.push(v);
      continue;
    }
    v.actualSize = actualSize;
    if (expectedSize !== undefined && actualSize !== expectedSize) {
      v.status = 'size-mismatch';
    } else {
      v.actualSha256 = await sha256File(path, signal);
      if (expectedSha === undefined) v.status = entry.embedded ? 'ok' : 'unrecorded';
      else if (v.actualSha256 !== expectedSha) v.status = 'checksum-mismatch';
    }
    files.push(v);
  }
  const bad = files.some((f) => f.status === 'size-mismatch' || f.status === 'checksum-mismatch' || f.status === 'unrecorded');
  const byName = new Map(files.map((f) => [f.name, f]));
  const complete = availablePrecisions(entry).some((p) => modelFiles(entry, p).every((f) => byName.get(f.name)?.status === 'ok'));
  return { id: entry.id, dir, ok: !bad && complete, files };
}

/**
 * Removes a model's cache folder (files, partial downloads, manifest). Returns the bytes freed.
 * @throws BusyError (75) while another process is installing the model.
 */
export async function removeModel(entry: ModelEntry, config: Pick<ResolvedConfig, 'cacheDir'>): Promise<number> {
  if (entry.embedded) return 0;
  const dir = modelDir(entry, config);
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) return 0;
  const bytes = await folderBytes(dir);
  // Taking the lock (without waiting) keeps rm from pulling the folder out from under a running download.
  await acquireModelLock(dir, { label: entry.id, timeoutMs: 0 });
  await rm(dir, { recursive: true, force: true });
  return bytes;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const n of names) total += (await sizeOf(join(dir, n))) ?? 0;
  return total;
}

export interface CachedModel {
  id: string;
  dir: string;
  /** Bytes on disk, partial downloads included. */
  bytes: number;
  /** Complete precisions. */
  installed: Precision[];
  /** Names of resumable partial downloads. */
  partial: string[];
  /** False when the folder does not belong to any registry entry. */
  known: boolean;
}

export interface CacheListing {
  dir: string;
  exists: boolean;
  totalBytes: number;
  models: CachedModel[];
}

/** What the cache holds (for `stemkit doctor` and `models list`). Never throws for a missing cache folder. */
export async function listCache(config: Pick<ResolvedConfig, 'cacheDir'>): Promise<CacheListing> {
  const dir = cacheDir(config);
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return { dir, exists: false, totalBytes: 0, models: [] };
  }
  const byId = new Map(listModels().map((e) => [e.id, e]));
  const models: CachedModel[] = [];
  for (const name of names.sort()) {
    const sub = join(dir, name);
    const entry = byId.get(name);
    const files = await readdir(sub).catch(() => [] as string[]);
    models.push({
      id: name,
      dir: sub,
      bytes: await folderBytes(sub),
      installed: entry ? await installedPrecisions(entry, config) : [],
      partial: files.filter((f) => f.endsWith(PART_SUFFIX)),
      known: entry !== undefined,
    });
  }
  return { dir, exists: true, totalBytes: models.reduce((a, m) => a + m.bytes, 0), models };
}
