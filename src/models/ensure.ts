/**
 * Getting a model's files onto disk: `ensureModel` (the cache, else a download unless offline) and
 * `importModel` (the offline path: files the user fetched elsewhere, verified like a download).
 */
import { copyFile, mkdir, readdir, rename, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/schema.js';
import { DataError, InputError, UnavailableError, UsageError } from '../errors.js';
import type { Observer } from '../progress.js';
import { discardTemp, tempPathFor, trackTemp, untrackTemp } from '../util/atomic.js';
import {
  allModelFiles,
  installedPrecisions,
  isFileInstalled,
  isInstalled,
  modelDir,
  readManifest,
  sha256File,
  writeManifest,
  type Manifest,
  type ManifestFile,
} from './cache.js';
import { applyMirror, downloadFile, type DownloadOptions } from './download.js';
import { checkModelFile } from './probe.js';
import { acquireModelLock, cacheWriteError } from './lock.js';
import {
  availablePrecisions,
  modelFiles,
  resolveModelRef,
  PRECISIONS,
  type InstalledModel,
  type ModelEntry,
  type ModelFile,
  type Precision,
} from './registry.js';

type CacheConfig = Pick<ResolvedConfig, 'cacheDir' | 'device' | 'models'>;

export interface EnsureModelOptions extends Observer {
  config: CacheConfig;
  /** 'auto' | 'fp32' | 'fp16' | 'int8'; default config.models.precision. An id suffix (`kokoro-int8`) also selects it. */
  precision?: string;
  /** Download again even when installed (`models pull --force`). */
  force?: boolean;
  /** Network tuning (timeouts, retries); the defaults suit real hosts. */
  download?: Omit<DownloadOptions, keyof Observer>;
  /** Give up waiting for another process's download after this long (default 30 min). */
  lockTimeoutMs?: number;
  /**
   * Install only the files of these roles (e.g. `['sub3']`: one specialist of the htdemucs_ft bag). The returned
   * paths still name every role; files outside `roles` may be absent.
   */
  roles?: readonly string[];
}

function isPrecision(p: string): p is Precision {
  return (PRECISIONS as readonly string[]).includes(p);
}

/**
 * The precision to use for `entry`. An explicit request (flag or id suffix) must exist; the configured default
 * falls back to fp32 for models without that variant. 'auto' is fp16 on CUDA where a variant exists, else fp32
 * (quantised models are slower on CPU).
 * @throws UsageError for an unknown precision, an explicit one the model lacks, or a suffix contradicting the flag.
 */
export function resolvePrecision(
  entry: ModelEntry,
  opts: { requested?: string | undefined; suffix?: Precision | undefined; config: Pick<ResolvedConfig, 'device' | 'models'> },
): { precision: Precision; fallback?: string } {
  const req = opts.requested?.toLowerCase();
  if (req !== undefined && req !== 'auto' && !isPrecision(req)) {
    throw new UsageError(`unknown precision "${opts.requested}"`, { hint: 'use one of: auto, fp32, fp16, int8' });
  }
  const explicit = req !== undefined && req !== 'auto' ? req : undefined;
  if (explicit && opts.suffix && explicit !== opts.suffix) {
    throw new UsageError(`model id asks for ${opts.suffix} but precision says ${explicit}`, { hint: 'give the precision once', details: { option: 'precision' } });
  }
  const wanted = explicit ?? opts.suffix;
  const available = availablePrecisions(entry);
  if (wanted) {
    if (!available.includes(wanted)) {
      throw new UsageError(`model "${entry.id}" has no ${wanted} variant`, { hint: `available precisions for ${entry.id}: ${available.join(', ')}` });
    }
    return { precision: wanted };
  }
  const configured = req === 'auto' ? 'auto' : opts.config.models.precision;
  if (configured === 'auto') {
    if (entry.autoPrecision && available.includes(entry.autoPrecision)) return { precision: entry.autoPrecision };
    return { precision: opts.config.device === 'cuda' && available.includes('fp16') ? 'fp16' : 'fp32' };
  }
  if (available.includes(configured)) return { precision: configured };
  return { precision: 'fp32', fallback: `${entry.id} has no ${configured} variant; using fp32` };
}

function installedModel(entry: ModelEntry, dir: string, precision: Precision): InstalledModel {
  const paths: Record<string, string> = {};
  for (const f of modelFiles(entry, precision)) paths[f.role] = join(dir, f.name);
  return { entry, dir, paths, precision };
}

function importCommand(entry: ModelEntry): string {
  return `stemkit models import ${entry.id} ${modelFiles(entry).length > 1 ? '<dir>' : '<file>'}`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/**
 * Records a file already sitting in the cache folder without a manifest entry, when it can be trusted:
 * its sha256 matches the registry's, or the file has no download URL at all (placed by hand; trust on first use).
 */
async function adopt(dir: string, manifest: Manifest, f: ModelFile, observer: Observer): Promise<boolean> {
  const path = join(dir, f.name);
  const size = (await stat(path).catch(() => undefined))?.size;
  if (size === undefined) return false;
  if (f.size !== undefined && size !== f.size) return false;
  if (!f.sha256 && f.url) return false;
  const sha256 = await sha256File(path, observer.signal);
  if (f.sha256 && sha256 !== f.sha256) return false;
  manifest.files[f.name] = { size, sha256, checksum: f.sha256 ? 'registry' : 'recorded', from: `found:${path}`, installedAt: new Date().toISOString() };
  observer.onLog?.({ level: 'info', message: `found ${f.name} in the cache folder; verified and recorded`, file: manifest.id });
  return true;
}

/**
 * Returns the local files of a model, downloading what is missing unless offline.
 * Embedded models resolve to the package's models/ folder. Concurrent callers (processes or promises) serialise
 * on a lock per model; the later ones find the model installed.
 * @param id a registry id or alias, optionally with a precision suffix (`kokoro-int8`).
 * @throws UsageError (64) for an unknown id or precision; UnavailableError (69) when a file is missing and cannot be
 *   downloaded (offline, no URL, network failure) — the message names the URL and the hint the `stemkit models import`
 *   command; BusyError (75) when another process holds the lock too long; InterruptedError (130).
 */
export async function ensureModel(id: string, opts: EnsureModelOptions): Promise<InstalledModel> {
  const { config } = opts;
  const ref = resolveModelRef(id);
  const entry = ref.entry;
  const chosen = resolvePrecision(entry, { requested: opts.precision, suffix: ref.precision, config });
  let precision = chosen.precision;
  if (chosen.fallback) opts.onLog?.({ level: 'debug', message: chosen.fallback, file: entry.id });
  const dir = modelDir(entry, config);

  if (entry.embedded) {
    for (const f of modelFiles(entry, precision)) {
      if (!(await exists(join(dir, f.name)))) {
        throw new UnavailableError(`the embedded model file ${join(dir, f.name)} is missing`, {
          code: 'E_MODEL_MISSING',
          hint: 'reinstall stemkit (in a source checkout: node scripts/build-classic-model.mjs)',
        });
      }
    }
    return installedModel(entry, dir, precision);
  }

  const wantedFiles = (p: Precision): ModelFile[] => modelFiles(entry, p).filter((f) => !opts.roles || opts.roles.includes(f.role));
  const complete = async (p: Precision): Promise<boolean> => {
    const manifest = await readManifest(dir, entry.id);
    for (const f of wantedFiles(p)) if (!(await isFileInstalled(dir, manifest, f))) return false;
    return true;
  };
  if (!opts.force && (opts.roles ? await complete(precision) : await isInstalled(entry, config, precision))) return installedModel(entry, dir, precision);

  // An automatic precision never downloads a second copy of a model that is installed at another precision
  // (a user who pulled fp32 keeps using it), and offline any installed precision beats failing.
  const automatic = (opts.precision === undefined || opts.precision === 'auto') && ref.precision === undefined;
  if (automatic && !opts.force) {
    for (const p of availablePrecisions(entry)) {
      if (p === precision || !(await complete(p))) continue;
      opts.onLog?.({ level: config.models.offline ? 'info' : 'debug', message: `${entry.id}: using the installed ${p} files (${precision} is not installed)`, file: entry.id });
      return installedModel(entry, dir, p);
    }
  }

  const files = wantedFiles(precision);
  // Fail fast, without touching the cache, when nothing could fill the gap.
  const pre = await readManifest(dir, entry.id);
  const gaps: ModelFile[] = [];
  for (const f of files) {
    if (opts.force || !(await isFileInstalled(dir, pre, f))) {
      if (opts.force || !(await exists(join(dir, f.name)))) gaps.push(f);
    }
  }
  const noUrl = gaps.filter((f) => !f.url);
  if (noUrl.length > 0) {
    const what = opts.force ? 'cannot be downloaded again' : 'is not installed';
    throw new UnavailableError(
      `model ${entry.id} ${what} and has no download source (${noUrl.map((f) => f.name).join(', ')})`,
      {
        code: 'E_MODEL_MISSING',
        hint: entry.importHint ?? `obtain the files and run \`${importCommand(entry)}\``,
        details: { model: entry.id, cache: dir, missing: noUrl.map((f) => f.name) },
      },
    );
  }
  if (gaps.length > 0 && config.models.offline) {
    const urls = gaps.map((f) => applyMirror(f.url!, config.models.mirror));
    throw new UnavailableError(`model ${entry.id} is not installed and offline mode is on`, {
      code: 'E_OFFLINE',
      hint: `on a machine with network: fetch ${urls.join(' and ')}, then run \`${importCommand(entry)}\`; or turn offline mode off (--offline, STEMKIT_OFFLINE, models.offline)`,
      details: { model: entry.id, cache: dir, urls },
    });
  }

  // Before the wait: with --force, files another process re-installed while we waited count as fresh.
  const startedAt = Date.now();
  const lock = await acquireModelLock(dir, {
    label: entry.id,
    ...(opts.lockTimeoutMs !== undefined ? { timeoutMs: opts.lockTimeoutMs } : {}),
    ...observerOf(opts),
  });
  try {
    const manifest = await readManifest(dir, entry.id);
    for (const f of files) {
      // Under the lock: another process may have installed it while we waited.
      const needed = opts.force ? !(await installedSince(dir, manifest, f, startedAt)) : !(await isFileInstalled(dir, manifest, f));
      if (!needed) continue;
      if (!opts.force && (await adopt(dir, manifest, f, opts))) {
        await writeManifest(dir, manifest);
        continue;
      }
      if (!f.url) {
        throw new UnavailableError(`model ${entry.id} is missing ${f.name}, which has no download source`, {
          code: 'E_MODEL_MISSING',
          hint: entry.importHint ?? `run \`${importCommand(entry)}\``,
        });
      }
      if (config.models.offline) {
        throw new UnavailableError(`model ${entry.id} is missing ${f.name} and offline mode is on`, {
          code: 'E_OFFLINE',
          hint: `fetch ${applyMirror(f.url, config.models.mirror)} elsewhere, then run \`${importCommand(entry)}\``,
        });
      }
      const url = applyMirror(f.url, config.models.mirror);
      const result = await downloadFile(
        {
          url,
          dest: join(dir, f.name),
          ...(f.size !== undefined ? { size: f.size } : {}),
          ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}),
          label: `${entry.id}/${f.name}`,
          importCommand: importCommand(entry),
        },
        { ...opts.download, ...observerOf(opts) },
      );
      const prev = manifest.files[f.name];
      if (!f.sha256 && prev && prev.checksum !== 'registry' && prev.sha256 !== result.sha256) {
        opts.onLog?.({
          level: 'warn',
          message: `${f.name} differs from the copy recorded on ${prev.installedAt} (sha256 ${prev.sha256.slice(0, 12)}… → ${result.sha256.slice(0, 12)}…); the new checksum is recorded`,
          file: entry.id,
        });
      }
      manifest.files[f.name] = {
        size: result.size,
        sha256: result.sha256,
        checksum: result.checksum,
        from: result.finalUrl,
        installedAt: new Date().toISOString(),
      };
      await writeManifest(dir, manifest);
    }
  } catch (e) {
    throw cacheWriteError(e, dir);
  } finally {
    await lock.release();
  }
  return installedModel(entry, dir, precision);
}

/** With --force: true when the file was (re)installed after `since` (by us, or by another process we waited for). */
async function installedSince(dir: string, manifest: Manifest, f: ModelFile, since: number): Promise<boolean> {
  const rec = manifest.files[f.name];
  return rec !== undefined && Date.parse(rec.installedAt) >= since && (await isFileInstalled(dir, manifest, f));
}

function observerOf(o: Observer): Observer {
  const out: Observer = {};
  if (o.onProgress) out.onProgress = o.onProgress;
  if (o.onLog) out.onLog = o.onLog;
  if (o.signal) out.signal = o.signal;
  return out;
}

export interface ImportedFile {
  name: string;
  role: string;
  from: string;
  size: number;
  sha256: string;
  checksum: ManifestFile['checksum'];
}

export interface ImportResult {
  id: string;
  dir: string;
  files: ImportedFile[];
  /** Precisions complete after the import. */
  installed: Precision[];
  /** Files still missing for the requested (or fp32) precision. */
  missing: string[];
}

export interface ImportModelOptions extends Observer {
  config: Pick<ResolvedConfig, 'cacheDir' | 'device' | 'models'>;
  /** Which precision an unnamed single file belongs to (default: the id suffix, else fp32). */
  precision?: string;
}

const lastExt = (name: string): string => extname(name).toLowerCase();

/**
 * Installs files fetched elsewhere (the offline path). Each source is a file or a directory; files are matched to
 * the registry by name, and a single file whose name does not match goes to the one file of the chosen precision
 * with the same extension (so `models import htdemucs my-export.onnx` works). Every file is verified like a
 * download: the registry's sha256 and size must match; without a pinned checksum its sha256 is recorded.
 * @throws UsageError (64) for an embedded model or files that match nothing; InputError (66) for a missing source;
 *   DataError (65) when a file's size or checksum differs from the registry.
 */
export async function importModel(id: string, sources: string[], opts: ImportModelOptions): Promise<ImportResult> {
  const ref = resolveModelRef(id);
  const entry = ref.entry;
  if (entry.embedded) throw new UsageError(`${entry.id} is embedded in stemkit; there is nothing to import`);
  const explicit = opts.precision !== undefined && opts.precision !== 'auto' ? opts.precision : undefined;
  const precision = explicit !== undefined || ref.precision !== undefined
    ? resolvePrecision(entry, { requested: explicit, suffix: ref.precision, config: opts.config }).precision
    : 'fp32';
  const known = allModelFiles(entry);
  const byName = new Map(known.map((f) => [f.name, f]));

  // name → source path
  const found: Array<{ file: ModelFile; path: string }> = [];
  const unmatched: string[] = [];
  for (const src of sources) {
    const abs = resolve(src);
    const st = await stat(abs).catch(() => undefined);
    if (!st) throw new InputError(`${src} does not exist`, { hint: `give the file(s) or folder holding ${known.map((f) => f.name).join(', ')}` });
    if (st.isDirectory()) {
      for (const name of await readdir(abs)) {
        const f = byName.get(name);
        if (f && (await exists(join(abs, name)))) found.push({ file: f, path: join(abs, name) });
      }
    } else {
      const f = byName.get(basename(abs));
      if (f) found.push({ file: f, path: abs });
      else unmatched.push(abs);
    }
  }
  if (unmatched.length > 0) {
    const target = modelFiles(entry, precision);
    for (const path of unmatched) {
      const same = target.filter((f) => lastExt(f.name) === lastExt(path));
      if (sources.length === 1 && same.length === 1) {
        found.push({ file: same[0]!, path });
      } else {
        throw new UsageError(`${basename(path)} is not a file of model ${entry.id}`, {
          hint: `${entry.id} consists of ${known.map((f) => f.name).join(', ')}: name the files like that, or import a folder holding them`,
        });
      }
    }
  }
  if (found.length === 0) {
    throw new UsageError(`no file of model ${entry.id} found in ${sources.join(', ')}`, {
      hint: `expected ${known.map((f) => f.name).join(', ')}`,
    });
  }
  const seen = new Set<string>();
  for (const { file } of found) {
    if (seen.has(file.name)) throw new UsageError(`${file.name} was given twice`, { hint: 'give each file once' });
    seen.add(file.name);
  }

  const dir = modelDir(entry, opts.config);
  const lock = await acquireModelLock(dir, { label: entry.id, ...observerOf(opts) });
  const imported: ImportedFile[] = [];
  try {
    const manifest = await readManifest(dir, entry.id);
    for (const { file, path } of found) {
      const srcSize = (await stat(path)).size;
      if (file.size !== undefined && srcSize !== file.size) {
        throw new DataError(`${path} has ${srcSize} bytes; ${entry.id}'s ${file.name} has ${file.size}`, {
          code: 'E_CHECKSUM',
          hint: file.url ? `this is not the registry's file; the original is ${file.url}` : 'check that the file is the right model',
        });
      }
      const dest = join(dir, file.name);
      const tmp = tempPathFor(dest);
      await mkdir(dir, { recursive: true });
      trackTemp(tmp);
      try {
        await copyFile(path, tmp);
        // Hash the copy, not the source: what is verified is what lands in the cache.
        const sha256 = await sha256File(tmp, opts.signal);
        if (file.sha256 !== undefined && sha256 !== file.sha256) {
          throw new DataError(`${path} does not match ${entry.id}'s ${file.name} (sha256 ${sha256}, expected ${file.sha256})`, {
            code: 'E_CHECKSUM',
            hint: file.url ? `download the original from ${file.url}` : 'check that the file is the right model',
          });
        }
        // Only a file with the model's contract is installed under its name (checked on the copy, like the hash).
        await checkModelFile(entry, file, tmp, path);
        await rename(tmp, dest);
        untrackTemp(tmp);
        const rec: ManifestFile = {
          size: srcSize,
          sha256,
          checksum: file.sha256 ? 'registry' : 'recorded',
          from: `import:${path}`,
          installedAt: new Date().toISOString(),
        };
        manifest.files[file.name] = rec;
        await writeManifest(dir, manifest);
        imported.push({ name: file.name, role: file.role, from: path, size: srcSize, sha256, checksum: rec.checksum });
      } catch (e) {
        await discardTemp(tmp);
        throw cacheWriteError(e, dir);
      }
    }
  } finally {
    await lock.release();
  }
  const installed = await installedPrecisions(entry, opts.config);
  // What is still missing is judged for the precision the user meant: the explicit one, else the variant whose
  // own files were imported (e.g. kokoro-v1.0.int8.onnx), else fp32.
  let target = precision;
  if (explicit === undefined && ref.precision === undefined) {
    const names = new Set(imported.map((f) => f.name));
    const base = new Set(entry.files.map((f) => f.name));
    for (const p of availablePrecisions(entry)) {
      if (p !== 'fp32' && modelFiles(entry, p).some((f) => names.has(f.name) && !base.has(f.name))) target = p;
    }
  }
  const manifest = await readManifest(dir, entry.id);
  const missing: string[] = [];
  for (const f of modelFiles(entry, target)) if (!(await isFileInstalled(dir, manifest, f))) missing.push(f.name);
  return { id: entry.id, dir, files: imported, installed, missing };
}
