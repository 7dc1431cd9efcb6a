import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr, readModelMetadata } from '../../src/onnx/builder.js';
import { createSession } from '../../src/runtime/onnx.js';

describe('smoke', () => {
  it('builds and runs a model', async () => {
    const g = new GraphBuilder();
    g.input('input', 'float32', ['batch', 4]);
    const two = g.constant(new Float32Array([2]), [1]);
    g.op('Mul', ['input', two], {}, 'output');
    g.output('output', 'float32', ['batch', 4]);
    g.meta('sources', '["a"]');
    const bytes = g.build();
    expect(readModelMetadata(bytes)).toEqual({ sources: '["a"]' });
    const s = await createSession(bytes, { device: 'cpu', threads: 1 });
    const out = await s.run({ input: { data: new Float32Array([1, 2, 3, 4]), dims: [1, 4] } });
    expect(Array.from(out['output']!.data as Float32Array)).toEqual([2, 4, 6, 8]);
    console.log(s.inputs, s.outputs, s.provider);
    await s.dispose();
    await expect(createSession(bytes, { device: 'cuda', threads: 1 })).rejects.toThrow(/CUDA/);
    const w = await createSession(bytes, { device: 'webgpu', threads: 1 }).then(() => 'ok', (e: Error) => e.message);
    console.log('webgpu:', w);
    void attr;
  });
});
