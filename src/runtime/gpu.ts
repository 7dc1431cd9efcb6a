/**
 * GPU name and memory from `nvidia-smi`, when present (bench reports memory before/after each mode).
 */
import { execa } from 'execa';

export interface GpuSnapshot {
  name: string;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
}

/** Parses `nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader,nounits`. */
export function parseGpuQuery(text: string): GpuSnapshot[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .flatMap((line) => {
      const [name, used, total] = line.split(',').map((s) => s.trim());
      const u = Number(used);
      const t = Number(total);
      return name && Number.isFinite(u) && Number.isFinite(t) ? [{ name, memoryUsedMiB: u, memoryTotalMiB: t }] : [];
    });
}

/** Snapshots every GPU; an empty list when nvidia-smi is absent or fails (no GPU is not an error). */
export async function queryGpus(): Promise<GpuSnapshot[]> {
  try {
    const r = await execa('nvidia-smi', ['--query-gpu=name,memory.used,memory.total', '--format=csv,noheader,nounits'], { timeout: 5000 });
    return parseGpuQuery(r.stdout);
  } catch {
    return [];
  }
}
