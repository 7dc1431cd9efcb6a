/**
 * The doctor's probe model: y = x · 2 on a [1, 4] float tensor, enough to prove a provider initialises
 * and computes. Shipped as models/doctor-probe.onnx (written by scripts/build-probe-model.mjs, checked by
 * test/cli/doctor.test.ts) so that `stemkit doctor` needs no graph builder at run time.
 */
import { GraphBuilder } from './builder.js';

export const PROBE_MODEL_FILE = 'doctor-probe.onnx';

export function buildProbeModel(): Uint8Array {
  const g = new GraphBuilder();
  g.input('x', 'float32', [1, 4]);
  const two = g.constant(new Float32Array([2]), [1]);
  g.op('Mul', ['x', two], {}, 'y');
  g.output('y', 'float32', [1, 4]);
  return g.build();
}
