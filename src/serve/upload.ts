/**
 * Inputs of HTTP jobs: a multipart upload streamed to the job's folder (never held in memory, size-limited,
 * removed when the client goes away), a content sniff that turns away what is not audio or video, and the
 * `serve.inputRoots` allow-list for paths named in a JSON body.
 */
import { createWriteStream } from 'node:fs';
import { open, realpath, rm } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import type {} from '@fastify/multipart';
import { HttpError } from './errors.js';

export interface Spooled {
  /** The uploaded file on disk (undefined when the request carried no file part). */
  path: string | undefined;
  /** The other form fields, as strings. */
  fields: Record<string, string>;
}

/** Keeps a short, safe extension of the client's file name: decoding and video detection go by it. */
function safeExtension(filename: string | undefined): string {
  const ext = extname(filename ?? '').toLowerCase();
  return /^\.[a-z0-9]{1,5}$/.test(ext) ? ext : '';
}

/**
 * Streams the multipart request's single `file` part to `<dir>/input<ext>` and collects the fields.
 * @throws HttpError 413 when the file exceeds `maxBytes` (the partial file is removed), 400 for a second file.
 */
export async function spoolUpload(request: FastifyRequest, dir: string, maxBytes: number): Promise<Spooled> {
  const fields: Record<string, string> = {};
  let path: string | undefined;
  try {
    for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1, fields: 40, fieldSize: 200_000 } })) {
      if (part.type === 'file') {
        if (path !== undefined) throw new HttpError(400, 'E_INVALID_OPTION', 'one file per job', 'send one file in the "file" field');
        path = join(dir, `input${safeExtension(part.filename)}`);
        await pipeline(part.file, createWriteStream(path, { flags: 'wx' }));
      } else if (typeof part.value === 'string') {
        fields[part.fieldname] = part.value;
      }
    }
  } catch (e) {
    if (path !== undefined) await rm(path, { force: true });
    if (e instanceof HttpError) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(maxBytes);
    if (code === 'FST_FILES_LIMIT') throw new HttpError(400, 'E_INVALID_OPTION', 'one file per job', 'send one file in the "file" field');
    if (code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') throw new HttpError(400, 'E_INVALID_OPTION', 'too many form fields', 'send only the job options');
    throw e;
  }
  return { path, fields };
}

export function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, 'E_UPLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes (serve.maxUploadBytes)`, 'send a shorter file, or raise serve.maxUploadBytes on the server');
}

/** Container signatures of audio and video files ffmpeg reads (first 12 bytes). */
function looksLikeMedia(b: Uint8Array, transportStreamName: boolean): boolean {
  const ascii = (from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));
  const head4 = ascii(0, 4);
  if (['RIFF', 'RF64', 'BW64', 'fLaC', 'OggS', 'FORM', 'caff', '#!AM', 'MThd', 'wvpk', 'MAC ', 'TTA1'].includes(head4)) return head4 !== 'MThd';
  if (ascii(0, 3) === 'ID3') return true;
  if (ascii(4, 8) === 'ftyp') return true; // MP4, M4A, MOV, 3GP
  if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return true; // Matroska, WebM
  if (b[0] === 0x30 && b[1] === 0x26 && b[2] === 0xb2 && b[3] === 0x75) return true; // ASF (WMA, WMV)
  if (b[0] === 0x00 && b[1] === 0x00 && b[2] === 0x01 && (b[3] === 0xba || b[3] === 0xb3)) return true; // MPEG-PS
  // A lone 0x47 also starts plain text ("G…"): transport streams are accepted with their extension only.
  if (b[0] === 0x47) return transportStreamName;
  if (b[0] === 0xff && b[1] !== undefined && (b[1] & 0xe0) === 0xe0) return true; // MPEG audio / ADTS AAC frame sync
  return false;
}

/**
 * Rejects a file whose first bytes are no audio or video container.
 * @throws HttpError 415 E_NOT_AUDIO.
 */
export async function checkMedia(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(12);
    const { bytesRead } = await fh.read(buf, 0, 12, 0);
    const ts = ['.ts', '.m2ts', '.mts'].includes(extname(path).toLowerCase());
    if (bytesRead >= 4 && looksLikeMedia(buf.subarray(0, bytesRead), ts)) return;
  } finally {
    await fh.close();
  }
  throw new HttpError(415, 'E_NOT_AUDIO', 'the upload is not an audio or video file', 'send WAV, FLAC, MP3, Ogg/Opus, M4A/AAC, MP4, MKV/WebM or MOV');
}

/**
 * The real path of `p` when it lies inside one of `roots` (symbolic links resolved on both sides).
 * @throws HttpError 403 E_PATH_NOT_ALLOWED outside the list (or with an empty list), 404 when it does not exist.
 */
export async function allowedPath(p: string, roots: readonly string[], what = 'path'): Promise<string> {
  const denied = (): HttpError =>
    new HttpError(403, 'E_PATH_NOT_ALLOWED', `${what} ${p} is outside the server's allowed folders`, roots.length > 0 ? 'upload the file instead, or ask the operator to add its folder to serve.inputRoots' : 'upload the file instead (serve.inputRoots is empty on this server)');
  if (!isAbsolute(p)) throw new HttpError(400, 'E_INVALID_OPTION', `${what} must be an absolute path (got "${p}")`, 'e.g. /srv/music/song.wav');
  const inside = (file: string, root: string): boolean => {
    const r = relative(root, file);
    return r === '' || (!r.startsWith('..') && !isAbsolute(r) && !r.startsWith(`..${sep}`));
  };
  const lexical = resolve(p);
  if (!roots.some((r) => inside(lexical, resolve(r)))) throw denied();
  let real: string;
  try {
    real = await realpath(lexical);
  } catch {
    throw new HttpError(404, 'E_INPUT_NOT_FOUND', `${what} ${p} does not exist`, 'check the path on the server');
  }
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => resolve(r))));
  if (!realRoots.some((r) => inside(real, r))) throw denied();
  return real;
}
