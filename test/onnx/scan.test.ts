import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { graphSignature, wrapInScan } from '../../src/onnx/scan.js';
import { createSession } from '../../src/runtime/onnx.js';

/** A step model: y = 2·x + s, s_out = s + x (an accumulator), x and s of shape [1, 3]; inputs listed state first. */
function stepModel(): Uint8Array {
  const g = new GraphBuilder('step');
  g.input('s', 'float32', [1, 3]);
  g.input('x', 'float32', [1, 3]);
  const two = g.constant(new Float32Array([2]), [1]);
  g.op('Add', [g.op('Mul', ['x', two]), 's'], {}, 'y');
  g.op('Add', ['s', 'x'], {}, 's_out');
  g.output('y', 'float32', [1, 3]);
  g.output('s_out', 'float32', [1, 3]);
  return g.build();
}

describe('wrapInScan', () => {
  it('runs N steps in one call with the state carried inside: the same values as N single-step runs', async () => {
    const step = stepModel();
    const { model, names } = wrapInScan(step, { states: [{ input: 's', output: 's_out' }], stepInput: 'x', stepOutput: 'y' });
    const xs = Float32Array.from([1, 2, 3, 10, 20, 30, -1, -2, -3, 0.5, 0.25, 0.125]);
    const scan = await createSession(model, { device: 'cpu', threads: 1 });
    const single = await createSession(step, { device: 'cpu', threads: 1 });
    try {
      expect(scan.inputNames).toEqual([names.states[0]!.input, names.stepsInput]);
      expect(scan.inputs[1]!.shape).toEqual(['steps', 1, 3]);
      const s0: Float32Array = Float32Array.from([100, 200, 300]);
      const out = await scan.run({ [names.states[0]!.input]: { data: s0, dims: [1, 3] }, [names.stepsInput]: { data: xs, dims: [4, 1, 3] } });
      const ys: number[] = [];
      let s: Float32Array = s0;
      for (let t = 0; t < 4; t++) {
        const o = await single.run({ s: { data: s, dims: [1, 3] }, x: { data: xs.subarray(3 * t, 3 * t + 3), dims: [1, 3] } });
        ys.push(...(o['y']!.data as Float32Array));
        s = o['s_out']!.data as Float32Array;
      }
      // Exact: small sums of float32 values computed by the same kernels.
      expect(Array.from(out[names.stepsOutput]!.data as Float32Array)).toEqual(ys);
      expect(out[names.stepsOutput]!.dims).toEqual([4, 1, 3]);
      expect(Array.from(out[names.states[0]!.output]!.data as Float32Array)).toEqual(Array.from(s));
    } finally {
      await Promise.all([scan.dispose(), single.dispose()]);
    }
  });

  it('refuses a model with an input that is neither a state nor the step signal, and bytes that are not a model', () => {
    expect(() => wrapInScan(stepModel(), { states: [], stepInput: 'x', stepOutput: 'y' })).toThrow(/inputs other than/);
    expect(() => wrapInScan(Uint8Array.from([0xff, 0xff, 0xff]), { states: [], stepInput: 'x', stepOutput: 'y' })).toThrow();
  });
});

describe('graphSignature', () => {
  it('reads the inputs and outputs (names, float type, fixed and symbolic dims) as onnxruntime reports them', async () => {
    const g = new GraphBuilder('sig');
    g.input('x', 'float32', [1, 'n', 3]);
    g.input('k', 'int64', [2]);
    g.op('Identity', ['k'], {}, 'k_out');
    g.op('Relu', ['x'], {}, 'y');
    g.output('y', 'float32', [1, 'n', 3]);
    g.output('k_out', 'int64', [2]);
    const bytes = g.build();
    const sig = graphSignature(bytes);
    expect(sig).toEqual({
      inputs: [
        { name: 'x', type: 'float32', shape: [1, 'n', 3] },
        { name: 'k', type: undefined, shape: [2] },
      ],
      outputs: [
        { name: 'y', type: 'float32', shape: [1, 'n', 3] },
        { name: 'k_out', type: undefined, shape: [2] },
      ],
    });
    const session = await createSession(bytes, { device: 'cpu', threads: 1 });
    try {
      expect(sig.inputs.map((v) => [v.name, v.shape])).toEqual(session.inputs.map((v) => [v.name, v.shape]));
      expect(sig.outputs.map((v) => [v.name, v.shape])).toEqual(session.outputs.map((v) => [v.name, v.shape]));
    } finally {
      await session.dispose();
    }
    expect(() => graphSignature(Uint8Array.from([0xff, 0xff, 0xff]))).toThrow();
  });
});
