/**
 * A machine-wide, per-user counting semaphore made of slot files, so that several stemkit processes
 * (cron jobs, scripts, automation) never run more heavy jobs at once than the profile allows.
 *
 * Layout: `<runtimeDir>/slots/<pool>-<index>.slot`, one file per slot index. A slot is taken by creating
 * its file exclusively: the record is written to a private temp file first and then hard-linked to the
 * slot name (link() fails with EEXIST atomically), so a slot file is never seen half-written. A slot whose
 * holder died (SIGKILL, power loss) is reclaimed by the next process that looks at it: the holder is dead
 * when `kill(pid, 0)` reports ESRCH, or when the pid now belongs to another process (on Linux the
 * recorded boot id + /proc/<pid>/stat start time no longer match).
 *
 * Reclaiming is itself exclusive: before removing a stale slot with token T, a process must create the
 * marker `<slot>.reclaim-T-<k>`; only one process wins a given marker, and a marker whose creator died is
 * superseded by the next k. Without this, a slow reclaimer could delete a slot that another process had
 * just re-taken.
 */
import { randomBytes } from 'node:crypto';
import { type FSWatcher, lstatSync, readFileSync, readdirSync, unlinkSync, watch } from 'node:fs';
import { link, lstat, mkdir, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/schema.js';
import { BusyError, ConfigError, InterruptedError, OutputError } from '../errors.js';
import type { Observer } from '../progress.js';

/** The three pools of the profile, in the fixed order in which they are acquired. */
export const POOLS = ['heavy', 'tts', 'video'] as const;
export type PoolName = (typeof POOLS)[number];

/** Words used in user-facing messages: `3/3 heavy jobs running`. */
const POOL_NOUN: Record<PoolName, string> = { heavy: 'heavy', tts: 'TTS', video: 'video' };

export interface AcquireSlotsOptions extends Observer {
  /** Pools to take one slot in each; all or nothing. Duplicates are ignored. */
  pools: readonly PoolName[];
  config: Pick<ResolvedConfig, 'maxConcurrentHeavyTasks' | 'maxConcurrentTts' | 'maxConcurrentVideo' | 'runtimeDir'>;
  /** Wait for a free slot (true) or throw BusyError at once (false, the CLI's `--no-wait`). */
  wait: boolean;
  /** Give up waiting after this many seconds (BusyError, exit 75). Unset: wait until free or aborted. */
  timeoutSec?: number;
  /** Overrides the runtime directory (see resolveRuntimeDir). */
  runtimeDir?: string;
  /** What the holder is doing, shown by `stemkit status`. Default: the process's command line. */
  command?: string;
  /** Input file the job works on; copied into progress/log events. */
  file?: string;
  /** Base poll interval while waiting, in ms (jitter of up to the same amount is added). Default 250. */
  pollMs?: number;
}

export interface HeldSlot {
  pool: PoolName;
  index: number;
  path: string;
}

/** A set of held slots. Release it in `finally`; the process 'exit' handler releases it too. */
export interface SlotLease {
  readonly slots: readonly HeldSlot[];
  /** Seconds spent waiting before the slots were obtained. */
  readonly waitedSec: number;
  /** When the slots were obtained (epoch ms): the start of the job's turn, for `--json` reports. */
  readonly acquiredAt: number;
  /** Removes this lease's slot files. Idempotent. */
  release(): Promise<void>;
}

export interface SlotHolder {
  pool: PoolName;
  index: number;
  pid: number;
  /** When the slot was taken (ISO 8601). */
  since: string;
  command: string;
  host: string;
}

export interface PoolStatus {
  pool: PoolName;
  limit: number;
  /** Live holders (slots of dead processes are not counted). */
  used: number;
  holders: SlotHolder[];
  /** Slot files left by dead processes; the next acquire reclaims them. */
  stale: number;
}

/** What a slot file holds (JSON). */
interface SlotRecord {
  v: 1;
  pool: PoolName;
  index: number;
  pid: number;
  /** Process identity beyond the pid: `<boot id>:<start time in clock ticks>` on Linux, '' elsewhere. */
  proc: string;
  /** Epoch ms when taken. */
  since: number;
  command: string;
  host: string;
  /** Random; identifies this particular slot file (for safe release and reclaim). */
  token: string;
}

/** A reclaim marker's record: who is reclaiming. */
interface MarkerRecord {
  pid: number;
  proc: string;
}

// ---------------------------------------------------------------------------------------------------------
// Runtime directory

/**
 * The per-user runtime directory: `runtimeDir` option ?? config.runtimeDir ?? $STEMKIT_RUNTIME_DIR ??
 * $XDG_RUNTIME_DIR/stemkit ?? <os tmpdir>/stemkit-<uid>.
 */
export function resolveRuntimeDir(config: Pick<ResolvedConfig, 'runtimeDir'>, override?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (override) return override;
  if (config.runtimeDir) return config.runtimeDir;
  if (env['STEMKIT_RUNTIME_DIR']) return env['STEMKIT_RUNTIME_DIR'];
  if (env['XDG_RUNTIME_DIR']) return join(env['XDG_RUNTIME_DIR'], 'stemkit');
  return join(tmpdir(), `stemkit-${userId()}`);
}

function userId(): string {
  if (typeof process.getuid === 'function') return String(process.getuid());
  // Windows has no uid; the user name keeps users apart in a shared temp dir.
  return userInfo().username.replace(/[^A-Za-z0-9_.-]/g, '_');
}

async function ensureSlotsDir(runtimeDir: string): Promise<string> {
  const dir = join(runtimeDir, 'slots');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await lstat(runtimeDir);
    // In the shared temp dir another user could pre-create our directory and see or block our slots.
    // An explicitly configured directory is the user's choice (e.g. one shared on purpose), so it is not checked.
    const isFallback = runtimeDir === join(tmpdir(), `stemkit-${userId()}`);
    if (isFallback && typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw new OutputError(`runtime directory ${runtimeDir} belongs to another user`, {
        code: 'E_RUNTIME_DIR',
        hint: 'Set STEMKIT_RUNTIME_DIR (or "runtimeDir" in the config) to a directory you own.',
      });
    }
  } catch (e) {
    if (e instanceof OutputError) throw e;
    throw new OutputError(`cannot create the runtime directory ${dir}: ${(e as Error).message}`, {
      code: 'E_RUNTIME_DIR',
      hint: 'Set STEMKIT_RUNTIME_DIR (or "runtimeDir" in the config) to a writable directory.',
      cause: e,
    });
  }
  return dir;
}

// ---------------------------------------------------------------------------------------------------------
// Process identity (pid-reuse guard)

let bootIdCache: string | undefined;
function bootId(): string {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootIdCache = '';
    }
  }
  return bootIdCache;
}

/**
 * `<boot id>:<start time>` of a process on Linux (field 22 of /proc/<pid>/stat, clock ticks since boot);
 * '' when unavailable (not Linux, or the process is gone). Together with the pid it names one process
 * for the machine's lifetime, so a recycled pid is not mistaken for the holder.
 */
export function processIdentity(pid: number): string {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return '';
  }
  // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are plain.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field 22 (starttime) is rest[19].
  const start = rest[19];
  return start ? `${bootId()}:${start}` : '';
}

let selfIdentity: string | undefined;
function myIdentity(): string {
  selfIdentity ??= processIdentity(process.pid);
  return selfIdentity;
}

/** True when the process that wrote a record (pid + identity) is still running. */
export function isProcessAlive(pid: number, proc: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return proc === '' || proc === myIdentity();
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: the pid exists but belongs to another user, so it is alive (and not ours to judge further).
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (proc === '') return true;
  const [recordedBoot] = proc.split(':');
  if (recordedBoot && bootId() && recordedBoot !== bootId()) return false; // written before a reboot
  const now = processIdentity(pid);
  // Unreadable (e.g. hidepid /proc): trust kill(0).
  return now === '' || now === proc;
}

// ---------------------------------------------------------------------------------------------------------
// Slot files

function slotName(pool: PoolName, index: number): string {
  return `${pool}-${index}.slot`;
}

const SLOT_RE = /^(heavy|tts|video)-(\d+)\.slot$/;
const MARKER_RE = /^((?:heavy|tts|video)-\d+\.slot)\.reclaim-([A-Za-z0-9]+)-(\d+)$/;
const TEMP_RE = /^\.tmp-(\d+)-/;

type ReadResult =
  | { kind: 'missing' }
  | { kind: 'record'; rec: SlotRecord; id: string }
  | { kind: 'corrupt'; id: string; ageMs: number }
  /** Not a regular file (a FIFO, socket, device, folder or symlink someone put there): never a slot. */
  | { kind: 'junk'; id: string };

/** Slot files are a few hundred bytes; anything much bigger is not one (and is not read into memory). */
const MAX_SLOT_BYTES = 64 * 1024;

async function readSlot(path: string): Promise<ReadResult> {
  let text: string;
  let ino: number;
  let mtimeMs: number;
  try {
    // lstat, and read only regular files: reading a FIFO would block until a writer came, hanging the job.
    const st = await lstat(path);
    ino = st.ino;
    mtimeMs = st.mtimeMs;
    if (!st.isFile() || st.size > MAX_SLOT_BYTES) return { kind: 'junk', id: `ino${ino}` };
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw e;
  }
  try {
    const rec = JSON.parse(text) as SlotRecord;
    if (typeof rec.pid === 'number' && typeof rec.token === 'string' && /^[A-Za-z0-9]+$/.test(rec.token)) {
      return { kind: 'record', rec, id: rec.token };
    }
  } catch {
    // fall through: corrupt
  }
  return { kind: 'corrupt', id: `ino${ino}`, ageMs: Date.now() - mtimeMs };
}

/** A file that only a damaged disk or a foreign tool could produce; give a writer time before judging it. */
const CORRUPT_GRACE_MS = 10_000;

function isStale(r: ReadResult): boolean {
  if (r.kind === 'missing') return false;
  if (r.kind === 'junk') return true;
  if (r.kind === 'corrupt') return r.ageMs > CORRUPT_GRACE_MS;
  return !isProcessAlive(r.rec.pid, r.rec.proc);
}

/**
 * Creates `path` with `content` if it does not exist; false when it exists. The content is complete
 * the moment the name appears (temp file + link()).
 */
async function createExclusive(dir: string, path: string, content: string): Promise<boolean> {
  const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, content, { mode: 0o600 });
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      // File systems without hard links: O_EXCL create. A reader may briefly see an empty file,
      // which CORRUPT_GRACE_MS covers.
      try {
        await writeFile(path, content, { flag: 'wx', mode: 0o600 });
        return true;
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e2;
      }
    }
    throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function readMarker(path: string): Promise<MarkerRecord | undefined> {
  try {
    const st = await lstat(path);
    if (!st.isFile() || st.size > MAX_SLOT_BYTES) return undefined;
    return JSON.parse(await readFile(path, 'utf8')) as MarkerRecord;
  } catch {
    return undefined;
  }
}

/**
 * Removes the stale slot file identified by `id`, unless another process is already doing so or the
 * file has changed. Safe against concurrent reclaimers (see the module comment).
 */
async function reclaim(dir: string, path: string, id: string): Promise<void> {
  const me = JSON.stringify({ pid: process.pid, proc: myIdentity() } satisfies MarkerRecord);
  for (let k = 1; k < 1000; k++) {
    const marker = `${path}.reclaim-${id}-${k}`;
    if (await createExclusive(dir, marker, me)) {
      try {
        const now = await readSlot(path);
        // Nobody else can remove slot `id` while we hold its marker, so this check-then-unlink is safe.
        if (now.kind !== 'missing' && now.id === id && isStale(now)) {
          // A junk folder under a slot's name cannot be unlinked; it is ours (private runtime dir) to remove.
          await (now.kind === 'junk' ? rm(path, { recursive: true, force: true }) : unlink(path)).catch(() => undefined);
        }
      } finally {
        await unlink(marker).catch(() => undefined);
      }
      return;
    }
    const holder = await readMarker(marker);
    // A live reclaimer is at work (or the marker is being written): let it finish.
    if (!holder || isProcessAlive(holder.pid, holder.proc)) return;
    // Its creator died mid-reclaim: the next k supersedes it.
  }
}

/** Removes leftovers that nothing can use any more: temp files and reclaim markers of dead processes. */
async function sweepGarbage(dir: string, names: string[]): Promise<void> {
  const present = new Set(names);
  for (const name of names) {
    const t = TEMP_RE.exec(name);
    if (t) {
      if (!isProcessAlive(Number(t[1]), '')) await unlink(join(dir, name)).catch(() => undefined);
      continue;
    }
    const m = MARKER_RE.exec(name);
    if (!m) continue;
    const slot = m[1]!;
    const current = present.has(slot) ? await readSlot(join(dir, slot)) : ({ kind: 'missing' } as const);
    // A marker may go only once its slot file no longer exists: then no reclaimer can act on it.
    if (current.kind !== 'missing' && current.id === m[2]) continue;
    const holder = await readMarker(join(dir, name));
    if (!holder || !isProcessAlive(holder.pid, holder.proc)) await unlink(join(dir, name)).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Held slots of this process (released synchronously on exit)

const heldByMe = new Map<string, string>(); // path → token
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', releaseAllSlotsSync);
}

/**
 * Synchronously removes every slot file this process holds. Installed as a process 'exit' handler;
 * exported for signal handlers that exit without unwinding.
 */
export function releaseAllSlotsSync(): void {
  for (const [path, token] of heldByMe) {
    try {
      if (!lstatSync(path).isFile()) continue; // replaced by something that is not ours (a FIFO would block)
      const rec = JSON.parse(readFileSync(path, 'utf8')) as SlotRecord;
      if (rec.token === token) unlinkSync(path);
    } catch {
      // gone or replaced: nothing of ours to remove
    }
  }
  heldByMe.clear();
}

async function releaseOne(path: string, token: string): Promise<void> {
  heldByMe.delete(path);
  const r = await readSlot(path).catch(() => ({ kind: 'missing' }) as const);
  if (r.kind === 'record' && r.rec.token === token) await unlink(path).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------------
// Acquire

function poolLimit(config: AcquireSlotsOptions['config'], pool: PoolName): number {
  const [key, value] =
    pool === 'heavy'
      ? ['maxConcurrentHeavyTasks', config.maxConcurrentHeavyTasks]
      : pool === 'tts'
        ? ['maxConcurrentTts', config.maxConcurrentTts]
        : ['maxConcurrentVideo', config.maxConcurrentVideo];
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${key} must be a whole number ≥ 1 (got ${String(value)})`, [
      { key, value, expected: 'an integer ≥ 1', source: 'resolved config' },
    ], { hint: `Set ${key} to 1 or more in your stemkit config or profile.` });
  }
  return value;
}

function defaultCommand(): string {
  const text = ['stemkit', ...process.argv.slice(2)].join(' ');
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

interface Busy {
  pool: PoolName;
  used: number;
  limit: number;
}

/** Counts live holders of one pool (any index: processes with a larger limit use higher indices). */
async function countLive(dir: string, pool: PoolName): Promise<number> {
  let used = 0;
  for (const name of await readdir(dir)) {
    const m = SLOT_RE.exec(name);
    if (!m || m[1] !== pool) continue;
    const r = await readSlot(join(dir, name)).catch(() => ({ kind: 'missing' }) as const);
    if (r.kind !== 'missing' && !isStale(r)) used++;
  }
  return used;
}

async function tryTakeOne(dir: string, pool: PoolName, limit: number, base: Omit<SlotRecord, 'pool' | 'index' | 'token'>): Promise<{ slot: HeldSlot; token: string } | Busy> {
  for (let index = 0; index < limit; index++) {
    const path = join(dir, slotName(pool, index));
    // Two rounds: a stale slot is reclaimed in the first and taken in the second.
    for (let round = 0; round < 2; round++) {
      const token = randomBytes(8).toString('hex');
      const rec: SlotRecord = { ...base, pool, index, token };
      if (await createExclusive(dir, path, JSON.stringify(rec))) {
        heldByMe.set(path, token);
        return { slot: { pool, index, path }, token };
      }
      const current = await readSlot(path);
      if (current.kind === 'missing') continue; // released meanwhile: try again
      if (!isStale(current)) break;
      await reclaim(dir, path, current.id);
    }
  }
  return { pool, used: await countLive(dir, pool), limit };
}

async function tryAcquireAll(dir: string, pools: PoolName[], limits: Map<PoolName, number>, base: Omit<SlotRecord, 'pool' | 'index' | 'token'>): Promise<Array<{ slot: HeldSlot; token: string }> | Busy> {
  const taken: Array<{ slot: HeldSlot; token: string }> = [];
  for (const pool of pools) {
    const r = await tryTakeOne(dir, pool, limits.get(pool)!, base);
    if ('slot' in r) {
      taken.push(r);
      continue;
    }
    // All or nothing: holding one pool while waiting for another would idle a slot others could use.
    for (const t of taken) await releaseOne(t.slot.path, t.token);
    return r;
  }
  return taken;
}

function busyText(b: Busy): string {
  return `${b.used}/${b.limit} ${POOL_NOUN[b.pool]} jobs running`;
}

/**
 * Takes one slot in each of `pools`, all or nothing, across every stemkit process of this user.
 *
 * When a pool is full and `wait` is true, emits a `wait` progress event and an info log
 * `waiting for a free slot (3/3 heavy jobs running)`, then polls (with jitter, woken early by fs.watch)
 * until the slots are free, the signal aborts or `timeoutSec` passes. Slots of dead holders are reclaimed.
 *
 * @throws BusyError (exit 75) `busy: 3/3 heavy jobs running; retry later` when full and `wait` is false,
 *   or code E_BUSY_TIMEOUT after `timeoutSec`.
 * @throws InterruptedError (exit 130) when the signal aborts while waiting.
 * @throws ConfigError (78) for a pool limit below 1; OutputError (73) when the runtime dir is unusable.
 */
export async function acquireSlots(opts: AcquireSlotsOptions): Promise<SlotLease> {
  const pools = POOLS.filter((p) => opts.pools.includes(p));
  const limits = new Map<PoolName, number>(pools.map((p) => [p, poolLimit(opts.config, p)]));
  if (opts.signal?.aborted) throw new InterruptedError();
  const dir = await ensureSlotsDir(resolveRuntimeDir(opts.config, opts.runtimeDir));
  installExitHandler();
  const base = { v: 1 as const, pid: process.pid, proc: myIdentity(), since: 0, command: opts.command ?? defaultCommand(), host: hostname() };
  const started = Date.now();
  const pollMs = opts.pollMs ?? 250;
  const file = opts.file === undefined ? {} : { file: opts.file };

  let waiting = false;
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      base.since = Date.now();
      const r = await tryAcquireAll(dir, pools, limits, base).catch((e: unknown) => {
        throw new OutputError(`cannot use the job slots in ${dir}: ${(e as Error).message}`, {
          code: 'E_RUNTIME_DIR',
          hint: 'Check the permissions and free space there, or set STEMKIT_RUNTIME_DIR to another directory.',
          cause: e,
        });
      });
      if (Array.isArray(r)) {
        if (opts.signal?.aborted) {
          // Interrupted during the last attempt: the caller would never get to release these.
          for (const t of r) await releaseOne(t.slot.path, t.token);
          throw new InterruptedError();
        }
        if (waiting) opts.onProgress?.({ stage: 'wait', status: 'done', ...file, done: 1, total: 1, message: 'got a free slot' });
        return makeLease(r, started, opts.onLog, opts.file);
      }
      if (!opts.wait) {
        throw new BusyError(`busy: ${busyText(r)}; retry later`, {
          hint: 'Retry later, or let stemkit wait for a free slot (wait: true).',
          details: { pool: r.pool, used: r.used, limit: r.limit },
        });
      }
      const elapsedSec = (Date.now() - started) / 1000;
      if (opts.timeoutSec !== undefined && elapsedSec >= opts.timeoutSec) {
        throw new BusyError(`busy: still ${busyText(r)} after waiting ${opts.timeoutSec} s; retry later`, {
          code: 'E_BUSY_TIMEOUT',
          hint: 'Retry later, or raise timeoutSec.',
          details: { pool: r.pool, used: r.used, limit: r.limit, waitedSec: elapsedSec, option: 'timeoutSec' },
        });
      }
      if (!waiting) {
        waiting = true;
        const message = `waiting for a free slot (${busyText(r)})`;
        opts.onLog?.({ level: 'info', message, ...file });
        opts.onProgress?.({ stage: 'wait', status: 'start', ...file, done: 0, total: 1, message });
        try {
          // A release deletes a slot file; the watcher wakes us at once instead of at the next poll.
          watcher = watch(dir, { persistent: false }, () => wake?.());
          watcher.on('error', () => undefined);
        } catch {
          watcher = undefined;
        }
        if (attempt % 20 === 0) await sweepGarbage(dir, await readdir(dir)).catch(() => undefined);
      }
      // Jitter keeps many waiters from retrying in lockstep.
      let delay = pollMs + Math.random() * pollMs;
      if (opts.timeoutSec !== undefined) delay = Math.min(delay, Math.max(0, opts.timeoutSec * 1000 - (Date.now() - started)));
      await sleepUntilWoken(delay, opts.signal, (fn) => (wake = fn));
      if (opts.signal?.aborted) throw new InterruptedError();
    }
  } finally {
    watcher?.close();
  }
}

function sleepUntilWoken(ms: number, signal: AbortSignal | undefined, setWake: (fn: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      setWake(() => undefined);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    // Let the releasing process finish its unlink and a few others race: a small delay after the event.
    setWake(() => setTimeout(done, 10 + Math.random() * 40));
  });
}

function makeLease(taken: Array<{ slot: HeldSlot; token: string }>, started: number, onLog: Observer['onLog'], file: string | undefined): SlotLease {
  let released = false;
  const acquiredAt = Date.now();
  const names = taken.map((t) => `${t.slot.pool}-${t.slot.index}`).join(', ');
  const waitedSec = (acquiredAt - started) / 1000;
  const at = file === undefined ? {} : { file };
  // Exact times (also in `--json --verbose` output) let callers and tests check how many jobs overlapped.
  onLog?.({ level: 'debug', message: `took slot ${names} at ${new Date(acquiredAt).toISOString()} (waited ${waitedSec.toFixed(2)} s)`, ...at });
  return {
    slots: taken.map((t) => t.slot),
    waitedSec,
    acquiredAt,
    async release() {
      if (released) return;
      released = true;
      // Logged before the files go, so the interval reported never extends past the real hold.
      onLog?.({ level: 'debug', message: `releasing slot ${names} at ${new Date().toISOString()}`, ...at });
      for (const t of [...taken].reverse()) await releaseOne(t.slot.path, t.token);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Status

/**
 * The pools with their limits and live holders, for `stemkit status`. Read-only: stale slots are
 * counted in `stale` but left for the next acquire to reclaim.
 */
export async function readPools(
  config: Pick<ResolvedConfig, 'maxConcurrentHeavyTasks' | 'maxConcurrentTts' | 'maxConcurrentVideo' | 'runtimeDir'>,
  runtimeDir?: string,
): Promise<PoolStatus[]> {
  const dir = join(resolveRuntimeDir(config, runtimeDir), 'slots');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    names = [];
  }
  const out = new Map<PoolName, PoolStatus>(POOLS.map((p) => [p, { pool: p, limit: poolLimit(config, p), used: 0, holders: [], stale: 0 }]));
  for (const name of names.sort()) {
    const m = SLOT_RE.exec(name);
    if (!m) continue;
    const status = out.get(m[1] as PoolName)!;
    const r = await readSlot(join(dir, name)).catch(() => ({ kind: 'missing' }) as const);
    if (r.kind === 'missing') continue;
    if (isStale(r)) {
      status.stale++;
      continue;
    }
    status.used++;
    if (r.kind === 'record') {
      status.holders.push({ pool: status.pool, index: Number(m[2]), pid: r.rec.pid, since: new Date(r.rec.since).toISOString(), command: r.rec.command, host: r.rec.host });
    }
  }
  for (const s of out.values()) s.holders.sort((a, b) => a.index - b.index);
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------------------------
// Conveniences for command engines

/** The pools one file job takes: heavy always; tts for speech synthesis; video when the input is a video. */
export function poolsForJob(job: { tts?: boolean; video?: boolean }): PoolName[] {
  const pools: PoolName[] = ['heavy'];
  if (job.tts) pools.push('tts');
  if (job.video) pools.push('video');
  return pools;
}

/**
 * Runs `fn` while holding the slots: acquireSlots, then `fn(lease)`, then release (also on error or abort).
 * @throws whatever acquireSlots or `fn` throws.
 */
export async function withSlots<R>(opts: AcquireSlotsOptions, fn: (lease: SlotLease) => Promise<R>): Promise<R> {
  const lease = await acquireSlots(opts);
  try {
    return await fn(lease);
  } finally {
    await lease.release();
  }
}
