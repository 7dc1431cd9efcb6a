/**
 * A deliberately slow model with the MDX-Net tensor contract (model-io.md §2.1): `input` → `output`,
 * float32 [batch, 4, dim_f, 256]. It multiplies by the 256×256 identity `matmuls` times, so the output
 * equals the input exactly (x·1 + Σ 0·y is exact in float32) while each call costs
 * matmuls × batch × 4 × dim_f × 256 × 256 × 2 FLOPs. Used to make real stemkit processes run long enough
 * to overlap.
 */
import { GraphBuilder } from '../../src/onnx/builder.js';

export function buildSlowIdentityMdxModel(opts: { dimF: number; matmuls: number }): Uint8Array {
  const g = new GraphBuilder('slow_identity_mdx');
  const dimT = 256;
  let x = g.input('input', 'float32', ['batch', 4, opts.dimF, dimT]);
  const eye = new Float32Array(dimT * dimT);
  for (let i = 0; i < dimT; i++) eye[i * dimT + i] = 1;
  const w = g.constant(eye, [dimT, dimT], 'eye');
  for (let i = 0; i < opts.matmuls; i++) {
    x = g.op('MatMul', [x, w], {}, i === opts.matmuls - 1 ? 'output' : undefined);
  }
  if (opts.matmuls === 0) g.op('Identity', [x], {}, 'output');
  g.output('output', 'float32', ['batch', 4, opts.dimF, dimT]);
  return g.build();
}
