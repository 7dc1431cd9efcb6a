/**
 * `stemkit doctor`: what this installation can do. The checks are the library's (src/doctor/doctor.ts);
 * this renders them. Doctor exits 0 and says what is missing and what that affects. The checks are
 * imported inside the action so `--help` stays fast.
 */
import { formatBytes } from '../../util/format.js';
import { Command } from 'commander';
import type { CheckStatus, DoctorReport as LibraryReport } from '../../doctor/doctor.js';
import { runAction, type CliContext } from '../context.js';
import { cpuSummary } from '../messages.js';

/** The library's report plus the CPU line the CLI shows everywhere (`CPU: 2 cores available, using …`). */
export interface DoctorReport extends Omit<LibraryReport, 'config'> {
  config: LibraryReport['config'] & { cpu: string };
}

/** Runs the library's checks for this command's config and adds the CPU line. */
export async function collectDoctorReport(ctx: Pick<CliContext, 'config' | 'configFile' | 'signal'>): Promise<DoctorReport> {
  const { collectDoctorReport: collect } = await import('../../doctor/doctor.js');
  const r = await collect({ config: ctx.config, configFile: ctx.configFile, signal: ctx.signal });
  return { ...r, config: { ...r.config, cpu: cpuSummary(ctx.config) } };
}

/** The human-readable report, one line per check. */
export function formatDoctorReport(r: DoctorReport, style: CliContext['style']): string[] {
  const mark = (s: CheckStatus): string => (s === 'ok' ? style.ok('ok     ') : s === 'missing' ? style.warn('missing') : style.fail('failed '));
  const lines: string[] = [];
  lines.push(style.bold('Runtime'));
  lines.push(`  node          ${r.node} (${r.platform})`);
  lines.push(`  onnxruntime   ${r.onnxruntime ?? 'not installed'}`);
  lines.push(style.bold('Providers'));
  for (const p of r.providers) {
    lines.push(`  ${mark(p.status)} ${p.provider.padEnd(7)} ${p.detail}`);
    if (p.hint && p.status !== 'ok') lines.push(`          ${style.dim(`fix: ${p.hint}`)}`);
  }
  lines.push(style.bold('GPUs'));
  if (r.gpus.devices.length === 0) lines.push(`  ${mark(r.gpus.status)} ${r.gpus.detail}; affects: --device cuda`);
  for (const g of r.gpus.devices) lines.push(`  ${mark('ok')} #${g.index} ${g.name}, ${g.memoryMiB} MiB, driver ${g.driver}`);
  lines.push(style.bold('Tools'));
  for (const t of r.tools) {
    lines.push(`  ${mark(t.status)} ${t.name.padEnd(9)} ${t.detail}`);
    if (t.status !== 'ok') lines.push(`          ${style.dim(`affects: ${t.affects}`)}`);
  }
  lines.push(style.bold('Model cache'));
  lines.push(`  ${r.cache.dir}${r.cache.exists ? ` (${formatBytes(r.cache.totalBytes)})` : ' (does not exist yet: models are downloaded on first use)'}`);
  for (const e of r.cache.entries) lines.push(`    ${e.name.padEnd(24)} ${formatBytes(e.bytes).padStart(10)}  ${e.detail}`);
  if (r.cache.exists && r.cache.entries.length === 0) lines.push('    (empty)');
  lines.push(style.bold('Configuration'));
  lines.push(`  config file   ${r.config.file ?? '(none found)'}`);
  lines.push(`  profile       ${r.config.profile}, device ${r.config.device}`);
  lines.push(`  ${r.config.cpu}`);
  return lines;
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('Check the installation: onnxruntime providers, GPUs, ffmpeg/ffprobe/espeak-ng, model cache, config')
    .addHelpText('after', '\nExits 0 even when optional parts are missing; each missing part says what it affects.')
    .action(
      runAction(async (ctx) => {
        const report = await collectDoctorReport(ctx);
        if (ctx.flags.json) ctx.emitJson(report as unknown as Record<string, unknown>);
        else for (const line of formatDoctorReport(report, ctx.style)) ctx.print(line);
        return 0;
      }),
    );
}
