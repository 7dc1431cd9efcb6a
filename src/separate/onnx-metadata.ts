/**
 * Reads an ONNX file's `metadata_props` without decoding the model.
 *
 * onnxruntime-node does not expose metadata_props, and decoding a 174 MB ModelProto with onnx-proto only to
 * read a few strings costs seconds and hundreds of MB. ModelProto is a flat protobuf message: this scanner
 * walks its top-level fields, seeking over every length-delimited field (the graph, which holds the weights,
 * is field 7) and decoding only field 14 (repeated StringStringEntryProto { 1: key, 2: value }).
 */
import { open } from 'node:fs/promises';
import { DataError, InputError } from '../errors.js';

const METADATA_FIELD = 14;

class Reader {
  private buf = new Uint8Array(0);
  private bufPos = 0; // file position of buf[0]
  constructor(
    private readonly fh: import('node:fs/promises').FileHandle,
    readonly size: number,
  ) {}

  /** Bytes [pos, pos+n) of the file (n small). */
  async bytes(pos: number, n: number): Promise<Uint8Array> {
    if (pos >= this.bufPos && pos + n <= this.bufPos + this.buf.length) {
      return this.buf.subarray(pos - this.bufPos, pos - this.bufPos + n);
    }
    const len = Math.min(Math.max(n, 64 * 1024), this.size - pos);
    const b = new Uint8Array(Math.max(len, 0));
    const { bytesRead } = await this.fh.read(b, 0, b.length, pos);
    this.buf = b.subarray(0, bytesRead);
    this.bufPos = pos;
    return this.buf.subarray(0, Math.min(n, bytesRead));
  }

  /** A varint at `pos`: its value and the position after it. */
  async varint(pos: number): Promise<{ value: number; next: number }> {
    const b = await this.bytes(pos, Math.min(10, this.size - pos));
    let value = 0;
    let mul = 1;
    for (let i = 0; i < b.length; i++) {
      const byte = b[i]!;
      value += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) return { value, next: pos + i + 1 };
      mul *= 128;
    }
    throw new DataError('the ONNX file is truncated or not an ONNX model (bad varint)', {
      code: 'E_MODEL_INVALID',
      hint: 'check the file; `stemkit models verify` checks downloaded models',
    });
  }
}

/** Decodes the length-delimited fields 1 (key) and 2 (value) of a StringStringEntryProto. */
function decodeEntry(b: Uint8Array): { key: string; value: string } {
  const dec = new TextDecoder();
  let pos = 0;
  let key = '';
  let value = '';
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const byte = b[pos++];
      if (byte === undefined) return v;
      v += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) return v;
      mul *= 128;
    }
  };
  while (pos < b.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 2) {
      const len = varint();
      const s = dec.decode(b.subarray(pos, pos + len));
      pos += len;
      if (field === 1) key = s;
      else if (field === 2) value = s;
    } else if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else break;
  }
  return { key, value };
}

/**
 * `metadata_props` of the ONNX file at `path`, reading only the bytes needed.
 * @throws InputError (66) when the file cannot be opened, DataError (65) when it is not a protobuf.
 */
export async function readOnnxMetadata(path: string): Promise<Record<string, string>> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (cause) {
    throw new InputError(`cannot open model file ${path}`, { code: 'E_MODEL_NOT_FOUND', cause, hint: 'check the path, or run `stemkit models list`' });
  }
  try {
    const { size } = await fh.stat();
    const r = new Reader(fh, size);
    const out: Record<string, string> = {};
    let pos = 0;
    while (pos < size) {
      const tag = await r.varint(pos);
      pos = tag.next;
      const field = Math.floor(tag.value / 8);
      const wire = tag.value & 7;
      if (wire === 0) pos = (await r.varint(pos)).next;
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const len = await r.varint(pos);
        pos = len.next;
        if (field === METADATA_FIELD) {
          const bytes = new Uint8Array(len.value);
          await fh.read(bytes, 0, len.value, pos);
          const { key, value } = decodeEntry(bytes);
          if (key) out[key] = value;
        }
        pos += len.value;
      } else {
        throw new DataError(`${path} is not an ONNX model (unexpected protobuf wire type ${wire})`, {
          code: 'E_MODEL_INVALID',
          hint: 'check that the file is an .onnx model and not truncated',
        });
      }
    }
    return out;
  } finally {
    await fh.close();
  }
}
