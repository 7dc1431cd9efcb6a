/**
 * Wraps a one-step recurrent model (one frame in, one frame out, caches fed back) in an ONNX `Scan`, so that one
 * `session.run` advances any number of steps with the caches carried inside ORT. For streaming speech models called
 * once per 8–16 ms frame, the per-call cost of onnxruntime-node (feeds, tensor wrapping, the native hop) is a
 * large share of the time; inside a Scan the same kernels run on the same values, step after step.
 *
 * The model is edited at the protobuf wire level: only the graph's top-level fields and its input/output entries are
 * parsed, nodes and initialisers are copied as bytes. Decoding the whole model with onnx-proto (protobufjs) cost
 * more than the rest of a minute of GTCRN's own work (≈ 90 ms against ≈ 1 ms).
 */

/** How the step model's tensors are wired. */
export interface ScanWiring {
  /** Each cache: the input it is read from and the output its next value comes from. */
  states: ReadonlyArray<{ input: string; output: string }>;
  /** The per-step signal input and output (one frame each). */
  stepInput: string;
  stepOutput: string;
}

/** The wrapped model's tensor names: states keep their order; the step tensors gain a leading `steps` axis. */
export interface ScanNames {
  states: Array<{ input: string; output: string }>;
  stepsInput: string;
  stepsOutput: string;
}

/** Names in the outer graph, distinct from every name inside the body (ONNX forbids shadowing). */
const outer = (name: string): string => `scan_outer::${name}`;

// Field numbers of onnx.proto (ModelProto.graph, GraphProto.*, ValueInfoProto.*, TypeProto.*, NodeProto.*,
// AttributeProto.*, TensorProto.name).
const MODEL_GRAPH = 7;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE_TENSOR = 1;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE_DIM = 1;
const DIM_PARAM = 2;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const ATTR = { name: 1, i: 3, g: 6, type: 20 } as const;
const ATTR_INT = 2;
const ATTR_GRAPH = 5;
const TENSOR_NAME = 8;

interface Field {
  no: number;
  /** The whole field as it appears on the wire (tag included), for copying. */
  raw: Uint8Array;
  /** Length-delimited payload (wire type 2), else undefined. */
  body: Uint8Array | undefined;
}

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new Error('truncated varint');
    const byte = b[pos++]!;
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return [v, pos];
    mul *= 128;
  }
}

function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < b.length) {
    const start = pos;
    const [tag, p] = readVarint(b, pos);
    pos = p;
    const wire = tag % 8;
    let body: Uint8Array | undefined;
    if (wire === 0) pos = readVarint(b, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, q] = readVarint(b, pos);
      body = b.subarray(q, q + len);
      pos = q + len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (pos > b.length) throw new Error('truncated field');
    out.push({ no: Math.floor(tag / 8), raw: b.subarray(start, pos), body });
  }
  return out;
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const bytesField = (no: number, body: Uint8Array): Uint8Array => concat([Uint8Array.from([...varint(no * 8 + 2), ...varint(body.length)]), body]);
const stringField = (no: number, s: string): Uint8Array => bytesField(no, new TextEncoder().encode(s));
const intField = (no: number, v: number): Uint8Array => Uint8Array.from([...varint(no * 8), ...varint(v)]);
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array(0));

function valueInfoName(body: Uint8Array): string {
  return text(fields(body).find((f) => f.no === VALUE_INFO.name)?.body);
}

/** A ValueInfoProto with a new name and the same type. */
function renamed(body: Uint8Array, name: string): Uint8Array {
  return concat([stringField(VALUE_INFO.name, name), ...fields(body).filter((f) => f.no === VALUE_INFO.type).map((f) => f.raw)]);
}

/** A ValueInfoProto with a new name and a leading symbolic `steps` dimension added to its tensor type. */
function withSteps(body: Uint8Array, name: string): Uint8Array {
  const type = fields(body).find((f) => f.no === VALUE_INFO.type)?.body;
  const tensor = type && fields(type).find((f) => f.no === TYPE_TENSOR)?.body;
  if (!tensor) throw new Error('step tensor without a tensor type');
  const tf = fields(tensor);
  const shape = tf.find((f) => f.no === TENSOR_TYPE.shape)?.body ?? new Uint8Array(0);
  const steps = bytesField(SHAPE_DIM, stringField(DIM_PARAM, 'steps'));
  const newShape = bytesField(TENSOR_TYPE.shape, concat([steps, ...fields(shape).map((f) => f.raw)]));
  const newTensor = concat([...tf.filter((f) => f.no !== TENSOR_TYPE.shape).map((f) => f.raw), newShape]);
  return concat([stringField(VALUE_INFO.name, name), bytesField(VALUE_INFO.type, bytesField(TYPE_TENSOR, newTensor))]);
}

function initialiserNames(graphFields: readonly Field[]): Set<string> {
  return new Set(graphFields.filter((f) => f.no === GRAPH.initializer).map((f) => text(fields(f.body!).find((x) => x.no === TENSOR_NAME)?.body)));
}

/**
 * Returns the serialised Scan model and its tensor names.
 * @throws Error when the bytes are not a model whose inputs are exactly the states and the step signal (the caller
 * then runs the model step by step).
 */
export function wrapInScan(bytes: Uint8Array, wiring: ScanWiring): { model: Uint8Array; names: ScanNames } {
  const top = fields(bytes);
  const graph = top.find((f) => f.no === MODEL_GRAPH)?.body;
  if (!graph) throw new Error('model has no graph');
  const gf = fields(graph);
  const initNames = initialiserNames(gf);
  const ins = new Map(gf.filter((f) => f.no === GRAPH.input).map((f) => [valueInfoName(f.body!), f.body!]));
  const outs = new Map(gf.filter((f) => f.no === GRAPH.output).map((f) => [valueInfoName(f.body!), f.body!]));
  const wanted = [...wiring.states.map((s) => s.input), wiring.stepInput];
  const extra = [...ins.keys()].filter((n) => !wanted.includes(n));
  if (extra.some((n) => !initNames.has(n))) throw new Error(`inputs other than the states and the step signal: ${extra.join(', ')}`);
  const get = (m: Map<string, Uint8Array>, n: string): Uint8Array => {
    const v = m.get(n);
    if (!v) throw new Error(`no tensor ${n}`);
    return v;
  };
  // Initialisers listed as graph inputs (older IR versions) stay initialisers of the body, not Scan inputs.
  const bodyIns = wanted.map((n) => get(ins, n));
  const bodyOuts = [...wiring.states.map((s) => get(outs, s.output)), get(outs, wiring.stepOutput)];
  if (outs.size !== bodyOuts.length) throw new Error('outputs other than the states and the step signal');

  // Scan's body takes the states first, then the scan inputs; it returns the states first, then the scan outputs.
  const body = concat([
    ...gf.filter((f) => f.no !== GRAPH.input && f.no !== GRAPH.output).map((f) => f.raw),
    ...bodyIns.map((v) => bytesField(GRAPH.input, v)),
    ...bodyOuts.map((v) => bytesField(GRAPH.output, v)),
  ]);
  const names: ScanNames = {
    states: wiring.states.map((s) => ({ input: outer(s.input), output: outer(s.output) })),
    stepsInput: outer(wiring.stepInput),
    stepsOutput: outer(wiring.stepOutput),
  };
  const node = concat([
    ...[...names.states.map((s) => s.input), names.stepsInput].map((n) => stringField(NODE.input, n)),
    ...[...names.states.map((s) => s.output), names.stepsOutput].map((n) => stringField(NODE.output, n)),
    stringField(NODE.name, 'scan_steps'),
    stringField(NODE.opType, 'Scan'),
    bytesField(NODE.attribute, concat([stringField(ATTR.name, 'body'), bytesField(ATTR.g, body), intField(ATTR.type, ATTR_GRAPH)])),
    bytesField(NODE.attribute, concat([stringField(ATTR.name, 'num_scan_inputs'), intField(ATTR.i, 1), intField(ATTR.type, ATTR_INT)])),
  ]);
  const outerGraph = concat([
    bytesField(GRAPH.node, node),
    stringField(GRAPH.name, 'scan_wrapper'),
    ...wiring.states.map((s, i) => bytesField(GRAPH.input, renamed(get(ins, s.input), names.states[i]!.input))),
    bytesField(GRAPH.input, withSteps(get(ins, wiring.stepInput), names.stepsInput)),
    ...wiring.states.map((s, i) => bytesField(GRAPH.output, renamed(get(outs, s.output), names.states[i]!.output))),
    bytesField(GRAPH.output, withSteps(get(outs, wiring.stepOutput), names.stepsOutput)),
  ]);
  const model = concat([...top.filter((f) => f.no !== MODEL_GRAPH).map((f) => f.raw), bytesField(MODEL_GRAPH, outerGraph)]);
  return { model, names };
}

/** A graph input or output as the wire describes it (the subset of ModelSession's ValueInfo that wiring needs). */
export interface GraphValue {
  name: string;
  /** 'float32' for float tensors, else undefined (callers only tell float signals apart by shape). */
  type: string | undefined;
  /** Dimensions; a symbolic or missing dimension is its name or -1. */
  shape: Array<number | string>;
}

const DIM_VALUE = 1;
const ELEM_FLOAT = 1;

function varintField(f: Field): number {
  return readVarint(f.raw, readVarint(f.raw, 0)[1])[0];
}

function graphValue(body: Uint8Array): GraphValue {
  const type = fields(body).find((f) => f.no === VALUE_INFO.type)?.body;
  const tensor = type && fields(type).find((f) => f.no === TYPE_TENSOR)?.body;
  const tf = tensor ? fields(tensor) : [];
  const elem = tf.find((f) => f.no === TENSOR_TYPE.elemType);
  const shape = tf.find((f) => f.no === TENSOR_TYPE.shape)?.body;
  const dims = shape
    ? fields(shape)
        .filter((f) => f.no === SHAPE_DIM)
        .map((d) => {
          const df = fields(d.body!);
          const value = df.find((f) => f.no === DIM_VALUE);
          const param = df.find((f) => f.no === DIM_PARAM);
          return value ? varintField(value) : param ? text(param.body) : -1;
        })
    : [];
  return { name: valueInfoName(body), type: elem && varintField(elem) === ELEM_FLOAT ? 'float32' : undefined, shape: dims };
}

/**
 * The graph's inputs (initialisers that older IR versions list as inputs left out) and outputs, read from the
 * wire: enough to wire a Scan without opening the plain model in a session first (that cost DTLN ≈ 13 MiB of peak
 * memory, which ORT kept after the session was disposed).
 * @throws Error when the bytes are not a model with a graph.
 */
export function graphSignature(bytes: Uint8Array): { inputs: GraphValue[]; outputs: GraphValue[] } {
  const graph = fields(bytes).find((f) => f.no === MODEL_GRAPH)?.body;
  if (!graph) throw new Error('model has no graph');
  const gf = fields(graph);
  const initNames = initialiserNames(gf);
  return {
    inputs: gf.filter((f) => f.no === GRAPH.input).map((f) => graphValue(f.body!)).filter((v) => !initNames.has(v.name)),
    outputs: gf.filter((f) => f.no === GRAPH.output).map((f) => graphValue(f.body!)),
  };
}
