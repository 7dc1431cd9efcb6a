/**
 * Wraps a one-step recurrent model (one frame in, one frame out, caches fed back) in an ONNX `Scan`, so that one
 * `session.run` advances any number of steps with the caches carried inside ORT. For streaming speech models called
 * once per 8–16 ms frame, the per-call cost of onnxruntime-node (feeds, tensor wrapping, the native hop) is a
 * large share of the time; inside a Scan the same kernels run on the same values, step after step.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

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

/**
 * Returns the serialised Scan model and its tensor names.
 * @throws Error when a named tensor is not an input/output of the step model (the caller falls back to per-step runs).
 */
export function wrapInScan(bytes: Uint8Array, wiring: ScanWiring): { model: Uint8Array; names: ScanNames } {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph;
  if (!g) throw new Error('model has no graph');
  const find = (list: onnxProto.onnx.IValueInfoProto[], name: string): onnxProto.onnx.IValueInfoProto => {
    const v = list.find((x) => x.name === name);
    if (!v) throw new Error(`no tensor ${name}`);
    return v;
  };
  const inputs = g.input ?? [];
  const outputs = g.output ?? [];
  const initializer = g.initializer ?? [];
  const initNames = new Set(initializer.map((t) => t.name));
  const graphInputs = inputs.filter((v) => !initNames.has(v.name ?? ''));
  const wanted = new Set([wiring.stepInput, ...wiring.states.map((s) => s.input)]);
  if (graphInputs.some((v) => !wanted.has(v.name ?? '')) || graphInputs.length !== wanted.size) throw new Error('inputs other than the states and the step signal');
  const stateIns = wiring.states.map((s) => find(inputs, s.input));
  const stateOuts = wiring.states.map((s) => find(outputs, s.output));
  const stepIn = find(inputs, wiring.stepInput);
  const stepOut = find(outputs, wiring.stepOutput);

  // Scan's body takes the states first, then the scan inputs; it returns the states first, then the scan outputs.
  const body = onnx.GraphProto.create({
    name: `${g.name ?? 'step'}_body`,
    node: g.node ?? [],
    initializer,
    valueInfo: g.valueInfo ?? [],
    input: [...stateIns, stepIn],
    output: [...stateOuts, stepOut],
  });
  const withSteps = (v: onnxProto.onnx.IValueInfoProto, name: string): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: v.type?.tensorType?.elemType ?? null, shape: { dim: [{ dimParam: 'steps' }, ...(v.type?.tensorType?.shape?.dim ?? [])] } } },
  });
  const renamed = (v: onnxProto.onnx.IValueInfoProto, name: string): onnxProto.onnx.IValueInfoProto => ({ name, type: v.type ?? null });
  const names: ScanNames = {
    states: wiring.states.map((s) => ({ input: outer(s.input), output: outer(s.output) })),
    stepsInput: outer(wiring.stepInput),
    stepsOutput: outer(wiring.stepOutput),
  };
  const T = onnx.AttributeProto.AttributeType;
  const scan = onnx.NodeProto.create({
    name: 'scan_steps',
    opType: 'Scan',
    input: [...names.states.map((s) => s.input), names.stepsInput],
    output: [...names.states.map((s) => s.output), names.stepsOutput],
    attribute: [
      { name: 'body', type: T.GRAPH, g: body },
      { name: 'num_scan_inputs', type: T.INT, i: 1 },
    ],
  });
  const wrapped = onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      name: `${g.name ?? 'step'}_scan`,
      node: [scan],
      input: [...stateIns.map((v, i) => renamed(v, names.states[i]!.input)), withSteps(stepIn, names.stepsInput)],
      output: [...stateOuts.map((v, i) => renamed(v, names.states[i]!.output)), withSteps(stepOut, names.stepsOutput)],
    }),
  });
  return { model: onnx.ModelProto.encode(wrapped).finish(), names };
}
