/**
 * Test helpers for the audio area: hand-built WAV bytes (so the malformed corpus can break any header
 * field), deterministic sample patterns, temp folders and the ffmpeg availability check.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when ffmpeg and ffprobe run (tests needing them use describe.skipIf(!HAS_FFMPEG)). */
export const HAS_FFMPEG: boolean = (() => {
  try {
    return (
      spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0 && spawnSync('ffprobe', ['-version'], { stdio: 'ignore' }).status === 0
    );
  } catch {
    return false;
  }
})();

/** Runs ffmpeg synchronously with array args; throws with its stderr on failure. */
export function ffmpegSync(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr}`);
}

/** Runs ffprobe and returns the parsed JSON of -show_streams -show_format. */
export function ffprobeJson(path: string): { streams: Array<Record<string, unknown>>; format: Record<string, unknown> } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffprobe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { streams: Array<Record<string, unknown>>; format: Record<string, unknown> };
}

/** A fresh temp folder; call the returned function to delete it. */
export function makeTempDir(prefix = 'stemkit-audio-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface WavSpec {
  /** Container id, default 'RIFF'. */
  riff?: string;
  form?: string;
  formatTag: number;
  channels: number;
  sampleRate: number;
  bits: number;
  blockAlign?: number;
  /** WAVE_FORMAT_EXTENSIBLE sub-format tag (formatTag must be 0xFFFE). */
  subFormat?: number;
  validBits?: number;
  channelMask?: number;
  /** Override of the data chunk size field. */
  dataSizeField?: number;
  /** Extra chunks before fmt (e.g. LIST) to make sure they are skipped. */
  extraChunks?: Array<{ id: string; body: Uint8Array }>;
  /** Put the data chunk before the fmt chunk. */
  dataBeforeFmt?: boolean;
  /** Write an RF64 ds64 chunk with this data size. */
  ds64DataSize?: number;
}

function chunk(id: string, body: Uint8Array): Buffer {
  const h = Buffer.alloc(8);
  h.write(id, 0, 'latin1');
  h.writeUInt32LE(body.length, 4);
  return Buffer.concat([h, body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

/** Builds WAV bytes from a spec and raw (already encoded, interleaved) sample bytes. */
export function buildWav(spec: WavSpec, data: Uint8Array): Buffer {
  const ext = spec.formatTag === 0xfffe;
  const fmt = Buffer.alloc(ext ? 40 : 16);
  fmt.writeUInt16LE(spec.formatTag, 0);
  fmt.writeUInt16LE(spec.channels, 2);
  fmt.writeUInt32LE(spec.sampleRate, 4);
  const blockAlign = spec.blockAlign ?? (spec.channels * spec.bits) / 8;
  fmt.writeUInt32LE(spec.sampleRate * blockAlign, 8);
  fmt.writeUInt16LE(blockAlign, 12);
  fmt.writeUInt16LE(spec.bits, 14);
  if (ext) {
    fmt.writeUInt16LE(22, 16);
    fmt.writeUInt16LE(spec.validBits ?? spec.bits, 18);
    fmt.writeUInt32LE(spec.channelMask ?? 0, 20);
    fmt.writeUInt16LE(spec.subFormat ?? 1, 24);
    Buffer.from([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]).copy(fmt, 26);
  }
  const dataChunk = chunk('data', data);
  if (spec.dataSizeField !== undefined) dataChunk.writeUInt32LE(spec.dataSizeField >>> 0, 4);
  const parts: Buffer[] = [];
  if (spec.ds64DataSize !== undefined) {
    const ds = Buffer.alloc(28);
    ds.writeBigUInt64LE(BigInt(spec.ds64DataSize + 100), 0);
    ds.writeBigUInt64LE(BigInt(spec.ds64DataSize), 8);
    parts.push(chunk('ds64', ds));
  }
  for (const c of spec.extraChunks ?? []) parts.push(chunk(c.id, c.body));
  if (spec.dataBeforeFmt) parts.push(dataChunk, chunk('fmt ', fmt));
  else parts.push(chunk('fmt ', fmt), dataChunk);
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write(spec.riff ?? 'RIFF', 0, 'latin1');
  head.writeUInt32LE(spec.ds64DataSize !== undefined ? 0xffffffff : (body.length + 4) >>> 0, 4);
  head.write(spec.form ?? 'WAVE', 8, 'latin1');
  return Buffer.concat([head, body]);
}

/** Deterministic xorshift32 bytes: block `k` of a long pattern can be regenerated without the others. */
export function patternBytes(seed: number, length: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = Math.imul(seed, 2654435761) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, length);
}

/** A sine at `freq` Hz with amplitude `amp`, one Float32Array per channel (channel c gets phase offset c). */
export function sine(freq: number, sampleRate: number, frames: number, channels = 1, amp = 0.5): Float32Array[] {
  return Array.from({ length: channels }, (_, c) => {
    const a = new Float32Array(frames);
    for (let i = 0; i < frames; i++) a[i] = amp * Math.sin((2 * Math.PI * freq * i) / sampleRate + c);
    return a;
  });
}
