/**
 * A small ONNX graph builder on top of onnx-proto. Used to generate the embedded `classic` model
 * (scripts/build-classic-model.mjs) and, in tests, tiny models with the exact I/O contracts of the
 * real networks (model-io.md §6.1).
 */
import { createRequire } from 'node:module';
import type onnxProto from 'onnx-proto';

let loaded: typeof onnxProto.onnx | undefined;
/**
 * onnx-proto (and its protobufjs) is a devDependency: only building graphs (scripts, tests) needs it, never
 * running one. Loaded on first use, so importing this module (the classic engine does) costs nothing.
 */
function onnxMessages(): typeof onnxProto.onnx {
  loaded ??= (createRequire(import.meta.url)('onnx-proto') as typeof onnxProto).onnx;
  return loaded;
}

export type ElemType = 'float32' | 'int64' | 'int32' | 'float16' | 'bool';
export type Dim = number | string;

// TensorProto.DataType values, fixed by the ONNX spec (onnx.proto); literal so that importing this module
// does not load onnx-proto.
const ELEM: Record<ElemType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float16: 10 };

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: Float32Array | BigInt64Array | Int32Array; dims: number[] };

export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: number[]): Attr => ({ kind: 'floats', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  tensor: (value: Float32Array | BigInt64Array | Int32Array, dims: number[]): Attr => ({ kind: 'tensor', value, dims }),
};

function valueInfo(name: string, type: ElemType, shape: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function tensorProto(name: string, data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[]): onnxProto.onnx.ITensorProto {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const dataType = data instanceof Float32Array ? ELEM.float32 : data instanceof BigInt64Array ? ELEM.int64 : ELEM.int32;
  // rawData keeps large initialisers compact (little-endian, as ONNX requires).
  return { name, dims: [...dims], dataType, rawData: Uint8Array.from(raw) };
}

function attribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnxMessages().AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto('', a.value, a.dims) };
  }
}

export class GraphBuilder {
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly metadata: onnxProto.onnx.IStringStringEntryProto[] = [];
  private counter = 0;

  constructor(private readonly name = 'graph') {}

  input(name: string, type: ElemType, shape: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: ElemType, shape: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Adds a constant tensor; returns its name. */
  constant(data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[], name?: string): string {
    const n = name ?? this.fresh('const');
    this.initializers.push(tensorProto(n, data, dims));
    return n;
  }

  /** Adds a node; returns the names of its outputs (fresh names when `outputs` is a count). */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, attrs: Record<string, Attr> = {}, domain = ''): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : [...outputs];
    this.nodes.push({
      opType,
      domain,
      name: this.fresh(`n_${opType}`),
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Convenience for single-output nodes. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    return this.node(opType, inputs, outName ? [outName] : 1, attrs)[0]!;
  }

  meta(key: string, value: string): this {
    this.metadata.push({ key, value });
    return this;
  }

  fresh(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${this.counter}`;
  }

  /** Serialises the model (opset 17 by default: the opset of the common HTDemucs exports). */
  build(opset = 17): Uint8Array {
    const model = onnxMessages().ModelProto.create({
      irVersion: 8,
      producerName: 'stemkit',
      opsetImport: [{ domain: '', version: opset }],
      metadataProps: this.metadata,
      graph: {
        name: this.name,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
        node: this.nodes,
      },
    });
    return onnxMessages().ModelProto.encode(model).finish();
  }
}

/** Reads `metadata_props` from a serialised model (onnxruntime-node does not expose them). */
export function readModelMetadata(bytes: Uint8Array): Record<string, string> {
  const model = onnxMessages().ModelProto.decode(bytes);
  const out: Record<string, string> = {};
  for (const entry of model.metadataProps ?? []) if (entry.key) out[entry.key] = entry.value ?? '';
  return out;
}
