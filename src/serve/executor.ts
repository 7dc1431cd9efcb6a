/**
 * An executor process of `stemkit serve`: runs one job at a time with the library's own functions
 * (loadSeparator → Separator.separateFile; loadVoiceModel → runTtsJob, as `stemkit tts`) and keeps the models it
 * loaded warm for the next job, until the server asks it to evict one.
 *
 * Why a child process and not a worker thread: the pipelines do seconds of synchronous DSP and ONNX work
 * per block, so they must leave the server's event loop; a process also keeps a native crash or an
 * out-of-memory kill to one job, lets a cancel that does not land between blocks fall back to SIGKILL,
 * and gives the memory of an evicted model back to the OS. The cost, one Node start per executor
 * (~0.1 s), is paid once: executors live as long as the server.
 */
import type { ResolvedConfig } from '../config/schema.js';
import { InternalError, UsageError, isStemkitError } from '../errors.js';
import type { Observer } from '../progress.js';
import type { Separator } from '../separate/separate.js';
import type { TtsModel } from '../tts/synthesize.js';
import type { FromExecutor, JobError, ProviderStatus, SeparateTask, TaskResult, ToExecutor, TtsTask } from './protocol.js';

type Warm = { kind: 'separate'; value: Separator } | { kind: 'tts'; value: TtsModel };

const warm = new Map<string, Warm>();
/** key → bytes of the model files its sessions hold (runtime/onnx.ts openModelBytes), for the server's memory bound. */
const sizes = new Map<string, number>();
const running = new Map<string, AbortController>();
let config: ResolvedConfig | undefined;

function send(m: FromExecutor): void {
  process.send?.(m);
}

/** The API's view of any error: StemkitErrors keep their code and hint; anything else is internal, without a stack. */
export function toJobError(e: unknown): JobError {
  if (isStemkitError(e)) return { code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode };
  return { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e), exitCode: 70 };
}

async function dispose(w: Warm): Promise<void> {
  await w.value.dispose().catch(() => undefined);
}

function observer(id: string, signal: AbortSignal): Observer {
  return {
    onProgress: (event) => send({ type: 'progress', id, event }),
    onLog: (event) => send({ type: 'log', id, event }),
    signal,
  };
}

async function runSeparate(t: SeparateTask, obs: Observer): Promise<TaskResult> {
  const { loadSeparator } = await import('../separate/separate.js');
  let entry = warm.get(t.key);
  if (entry?.kind !== 'separate') {
    entry = { kind: 'separate', value: await loadSeparator(t.spec, { config: config!, ...obs }) };
    warm.set(t.key, entry);
  }
  const sep = entry.value;
  const bad = (t.file.remux ?? []).filter((s) => !sep.stems.includes(s));
  if (bad.length > 0) throw new UsageError(`remux: ${bad.join(', ')} is not a stem of this job`, { hint: `choose from: ${sep.stems.join(', ')}` });
  const result = await sep.separateFile(t.input, { ...t.file, ...obs });
  return { kind: 'separate', result };
}

async function runTts(t: TtsTask, obs: Observer): Promise<TaskResult> {
  const [{ loadVoiceModel }, { runTtsJob }] = await Promise.all([import('../tts/synthesize.js'), import('../tts/batch.js')]);
  let entry = warm.get(t.key);
  let loadSeconds = 0;
  if (entry?.kind !== 'tts') {
    const model = await loadVoiceModel(t.model, { config: config!, ...t.load, ...obs });
    entry = { kind: 'tts', value: model };
    warm.set(t.key, entry);
    loadSeconds = model.loadSeconds;
  }
  const { result } = await runTtsJob(
    entry.value,
    { text: t.text, output: t.output, voice: t.voice, format: t.format, ...(t.bits !== undefined ? { bits: t.bits } : {}) },
    { config: config!, ...obs, loadSeconds },
  );
  return { kind: 'tts', result };
}

async function runTask(t: SeparateTask | TtsTask): Promise<void> {
  const controller = new AbortController();
  running.set(t.id, controller);
  // Most recently used last, so eviction order is the Map's order.
  const w = warm.get(t.key);
  if (w) {
    warm.delete(t.key);
    warm.set(t.key, w);
  }
  const obs = observer(t.id, controller.signal);
  // One job at a time per executor: what the open sessions grew by during the job is this model's (a model
  // that failed to load released its sessions again, and temporary sessions are gone by the end).
  const { openModelBytes } = await import('../runtime/onnx.js');
  const before = openModelBytes();
  const finish = (): { loaded: string[]; bytes: Record<string, number> } => {
    const grown = openModelBytes() - before;
    if (warm.has(t.key)) sizes.set(t.key, (sizes.get(t.key) ?? 0) + grown);
    return { loaded: [...warm.keys()], bytes: Object.fromEntries([...warm.keys()].map((k) => [k, sizes.get(k) ?? 0])) };
  };
  try {
    const value = t.type === 'separate' ? await runSeparate(t, obs) : await runTts(t, obs);
    send({ type: 'done', id: t.id, ok: true, value, ...finish() });
  } catch (e) {
    send({ type: 'done', id: t.id, ok: false, error: toJobError(e), ...finish() });
  } finally {
    running.delete(t.id);
  }
}

/**
 * Creates a session on each provider the config may use and runs doctor's probe model (stemkit doctor's own
 * check, src/doctor/doctor.ts): what /health reports.
 */
async function probeProviders(cfg: ResolvedConfig): Promise<ProviderStatus[]> {
  const [{ probeInProcess, probeModel }, rt] = await Promise.all([import('../doctor/doctor.js'), import('../runtime/onnx.js')]);
  const model = await probeModel();
  const providers: Array<'cpu' | 'cuda'> = cfg.device === 'cpu' || !rt.cudaProviderInstalled() ? ['cpu'] : ['cpu', 'cuda'];
  const out: ProviderStatus[] = [];
  for (const p of providers) {
    const r = await probeInProcess(p, model, { ...cfg, cpuThreads: 1 }, undefined);
    if (!r.ok) out.push({ provider: p, ok: false, detail: r.message });
    else out.push({ provider: p, ok: r.provider === p, detail: r.provider === p ? `ran on ${r.provider}` : `fell back to ${r.provider}` });
  }
  return out;
}

process.on('message', (raw: unknown) => {
  const m = raw as ToExecutor;
  switch (m.type) {
    case 'init':
      config = m.config;
      void (m.probe ? probeProviders(m.config) : Promise.resolve([])).then(
        (providers) => send({ type: 'ready', providers }),
        (e: unknown) => send({ type: 'ready', providers: [{ provider: 'cpu', ok: false, detail: toJobError(e).message }] }),
      );
      break;
    case 'separate':
    case 'tts':
      if (!config) {
        send({ type: 'done', id: m.id, ok: false, error: toJobError(new InternalError('executor used before init')), loaded: [], bytes: {} });
        break;
      }
      void runTask(m);
      break;
    case 'cancel':
      running.get(m.id)?.abort();
      break;
    case 'evict': {
      const w = warm.get(m.key);
      warm.delete(m.key);
      sizes.delete(m.key);
      void (w ? dispose(w) : Promise.resolve()).then(() => send({ type: 'evicted', key: m.key, loaded: [...warm.keys()] }));
      break;
    }
  }
});

// The server went away (or closed the channel on shutdown): release the models and let the process end.
process.on('disconnect', () => {
  for (const c of running.values()) c.abort();
  const all = [...warm.values()];
  warm.clear();
  sizes.clear();
  void Promise.all(all.map(dispose));
});
