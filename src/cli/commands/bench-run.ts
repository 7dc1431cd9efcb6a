/**
 * The body of `stemkit bench`, imported lazily so `stemkit --help` stays fast.
 */
import { readFile } from 'node:fs/promises';
import type { BenchTarget } from '../../config/schema.js';
import { DataError, InputError, UsageError } from '../../errors.js';
import { BENCH_MODES, runBench, type BenchMode, type BenchReport, type ModeReport, type TargetPolicy } from '../../bench/bench.js';
import { TARGET_TRACK_SECONDS } from '../../bench/stats.js';

const TARGET_POLICIES = ['auto', 'seed', 'off'] as const;
import { atomicWriteFile } from '../../util/atomic.js';
import type { CliContext } from '../context.js';
import { fmt, formatTable } from '../render/table.js';
import type { BenchFlags } from './bench.js';

function positive(name: string, value: string | undefined, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be a positive ${integer ? 'whole ' : ''}number (got "${value}")`);
  }
  return n;
}

function parseModes(value: string | undefined): BenchMode[] {
  if (value === undefined) return [...BENCH_MODES];
  const modes = value.split(',').map((v) => Number(v.trim()));
  const bad = modes.filter((m) => !BENCH_MODES.includes(m as BenchMode));
  if (bad.length || modes.length === 0) throw new UsageError(`--modes takes 2, 4 and/or 6 (got "${value}")`, { hint: 'e.g. --modes 2,4' });
  return [...new Set(modes as BenchMode[])];
}

function parseModels(values: readonly string[] | undefined): Partial<Record<BenchMode, string>> {
  const out: Partial<Record<BenchMode, string>> = {};
  for (const v of values ?? []) {
    const m = /^([246])=(.+)$/.exec(v.trim());
    if (!m) throw new UsageError(`--model "${v}" is not <mode>=<model>`, { hint: 'e.g. --model 4=htdemucs --model 2=Kim_Vocal_2' });
    out[Number(m[1]) as BenchMode] = m[2]!;
  }
  return out;
}

/** `2=15:2` → mode 2, maxSeconds 15, minMBps 2 (MB/s optional: keeps the configured one). */
export function parseTargets(values: readonly string[] | undefined, base: Record<'2' | '4' | '6', BenchTarget>): Record<'2' | '4' | '6', BenchTarget> {
  const out = { '2': { ...base['2'] }, '4': { ...base['4'] }, '6': { ...base['6'] } };
  for (const v of values ?? []) {
    const m = /^([246])=([0-9.]+)(?::([0-9.]+))?$/.exec(v.trim());
    const seconds = m ? Number(m[2]) : Number.NaN;
    const mbps = m?.[3] === undefined ? undefined : Number(m[3]);
    if (!m || !(seconds > 0) || (mbps !== undefined && !(mbps >= 0))) {
      throw new UsageError(`--target "${v}" is not <mode>=<seconds>[:<MB/s>]`, { hint: 'e.g. --target 2=15:2 --target 4=30' });
    }
    const key = m[1] as '2' | '4' | '6';
    out[key].maxSeconds = seconds;
    if (mbps !== undefined) out[key].minMBps = mbps;
  }
  return out;
}

function parseTolerance(value: string | undefined): number {
  if (value === undefined) return 0.1;
  const percent = value.trim().endsWith('%');
  const n = Number(percent ? value.trim().slice(0, -1) : value);
  const t = percent ? n / 100 : n;
  if (!Number.isFinite(t) || t < 0 || t > 10) throw new UsageError(`--tolerance must be a fraction like 0.1 or a percentage like 10% (got "${value}")`);
  return t;
}

async function loadBaseline(file: string): Promise<BenchReport> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new InputError(`baseline report not found: ${file}`, { cause, hint: 'Create one with `stemkit bench --out <file>`.' });
  }
  try {
    const r = JSON.parse(text) as BenchReport;
    if (r.version !== 1 || !Array.isArray(r.modes)) throw new Error('not a stemkit bench report');
    return r;
  } catch (cause) {
    throw new DataError(`${file} is not a stemkit bench report`, { cause, hint: 'Pass a file written by `stemkit bench --out`.' });
  }
}

const secs = (v: number | undefined): string => fmt(v, 2);

export function formatBenchReport(r: BenchReport, style: CliContext['style']): string {
  const mark = (m: ModeReport): string =>
    m.status !== 'ok' ? style.dim(m.status) : !m.pass ? style.fail('✗ FAIL') : m.checks.some((c) => !c.pass) ? style.ok('✓ pass') + style.dim(' (targets reported)') : style.ok('✓ pass');
  const rows = r.modes.map((m) => [
    `${m.mode}-stem`,
    m.model || '—',
    m.provider ? `${m.provider} ×${m.threads}` : '—',
    secs(m.cold?.load),
    secs(m.warm?.decode ?? m.cold?.decode),
    secs(m.warm?.infer ?? m.cold?.infer),
    secs(m.warm?.write ?? m.cold?.write),
    secs(m.cold?.total),
    secs(m.warm?.total),
    fmt(m.warm?.rtf ?? m.cold?.rtf, 3),
    fmt(m.warm?.mbps ?? m.cold?.mbps, 2),
    m.peakRssMiB === undefined ? '—' : `${Math.round(m.peakRssMiB)}`,
    mark(m),
  ]);
  const out = [
    style.bold(`stemkit bench`) +
      style.dim(`  ${r.input.source} (${r.input.seconds.toFixed(1)} s, ${r.input.wavMB.toFixed(1)} MB WAV) · profile ${r.config.profile} · device ${r.config.device} · ${r.machine.cpus} cores · warm runs ${r.runs}`),
    formatTable(
      [
        { header: 'mode' },
        { header: 'model' },
        { header: 'provider' },
        { header: 'load', align: 'right' },
        { header: 'decode', align: 'right' },
        { header: 'infer', align: 'right' },
        { header: 'write', align: 'right' },
        { header: 'cold', align: 'right' },
        { header: 'warm', align: 'right' },
        { header: 'RTF', align: 'right' },
        { header: 'MB/s', align: 'right' },
        { header: 'RSS MiB', align: 'right' },
        { header: '' },
      ],
      rows,
    ),
    style.dim('seconds; decode/infer/write/RTF/MB/s are warm medians; cold = model load + first run'),
  ];
  for (const m of r.modes) {
    if (m.note) out.push(`${m.mode}-stem: ${m.status === 'failed' ? style.fail(m.note) : style.dim(m.note)}`);
    for (const c of m.checks.filter((c) => !c.pass)) {
      const line = `${m.mode}-stem: ${c.name} ${fmt(c.value, 2)} ${c.kind === 'max' ? '>' : '<'} ${fmt(c.limit, 2)}`;
      out.push(c.enforced ? style.fail(line) : style.dim(`${line} (target not enforced on ${m.provider ?? 'this device'}: the built-in targets are for a GPU; --targets seed enforces them)`));
    }
    if (m.sdr) out.push(`${m.mode}-stem SDR (dB): ${Object.entries(m.sdr).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
    const gpu = m.gpuAfter?.[0];
    if (gpu) out.push(style.dim(`${m.mode}-stem GPU ${gpu.name}: ${m.gpuBefore?.[0]?.memoryUsedMiB ?? '?'} → ${gpu.memoryUsedMiB} MiB of ${gpu.memoryTotalMiB}`));
  }
  if (r.tts) {
    const t = r.tts;
    out.push(
      t.status === 'ok'
        ? `tts ${t.model} (${t.provider} ×${t.threads}): load ${secs(t.load)}s | phonemize ${secs(t.phonemize)}s | infer ${secs(t.infer)}s | write ${secs(t.write)}s | total ${secs(t.total)}s | ${fmt(t.charsPerSecond, 0)} chars/s | RTF ${fmt(t.rtf, 3)}`
        : t.status === 'skipped'
          ? style.dim(`tts ${t.model}: ${t.note ?? 'skipped'}`)
          : style.fail(`tts ${t.model}: ${t.note ?? 'failed'}`),
    );
  }
  if (r.targets) {
    const t = r.targets;
    out.push(style.dim(t.note ?? `targets: per ${TARGET_TRACK_SECONDS} s track, scaled ×${t.scale.toFixed(3)} to this ${r.input.seconds.toFixed(1)} s input (seconds only; MB/s as is) · policy ${t.policy}`));
  }
  out.push(r.pass ? style.ok('all checks passed') : style.fail('some checks failed'));
  return out.join('\n');
}

export async function runBenchCommand(ctx: CliContext, flags: BenchFlags): Promise<number> {
  const modes = parseModes(flags.modes);
  const seconds = positive('seconds', flags.seconds, false);
  const runs = flags.runs === '0' ? 0 : positive('runs', flags.runs, true);
  const targetPolicy = flags.targets ?? 'auto';
  if (!(TARGET_POLICIES as readonly string[]).includes(targetPolicy)) {
    throw new UsageError(`--targets must be one of ${TARGET_POLICIES.join(', ')} (got "${targetPolicy}")`, { hint: 'auto: enforced on a GPU, reported on a CPU; seed: always enforced; off: reported only' });
  }
  // Targets the user set (flags or config) are meant for this machine: `auto` enforces them on a CPU too.
  const targetsSet = (flags.target?.length ?? 0) > 0 || Object.entries(ctx.sources).some(([k, v]) => k.startsWith('bench.targets.') && v !== 'default');
  const tolerance = parseTolerance(flags.tolerance);
  const targets = parseTargets(flags.target, ctx.config.bench.targets);
  const baseline = flags.baseline ? { report: await loadBaseline(flags.baseline), file: flags.baseline } : undefined;
  const report = await runBench({
    config: ctx.config,
    modes,
    models: parseModels(flags.model),
    ...(flags.input ? { input: flags.input } : {}),
    ...(seconds !== undefined ? { seconds } : {}),
    ...(runs !== undefined ? { runs } : {}),
    pull: flags.pull === true,
    targets,
    ...(baseline ? { baseline } : {}),
    tolerance,
    ...(flags.quality ? { quality: flags.quality } : {}),
    ...(flags.tts === false ? { ttsModel: false as const } : flags.ttsModel ? { ttsModel: flags.ttsModel } : {}),
    targetPolicy: targetPolicy as TargetPolicy,
    targetsSet,
    signal: ctx.signal,
    onProgress: (e) => ctx.onProgress(e),
    onLog: (e) => ctx.onLog(e),
  });
  if (flags.out) await atomicWriteFile(flags.out, `${JSON.stringify(report, null, 2)}\n`);
  ctx.emitJson({ type: 'bench', ...report });
  ctx.print(formatBenchReport(report, ctx.style));
  return report.pass ? 0 : 1;
}
