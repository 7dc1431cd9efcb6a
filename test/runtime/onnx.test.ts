import { afterEach, describe, expect, it, vi } from 'vitest';
import { reportError } from '../../src/cli/main.js';
import { defaultIO } from '../../src/cli/context.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { DataError, InputError, InternalError, UnavailableError } from '../../src/errors.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { DEFAULT_SESSION_MEMORY, createSession, cudaProviderInstalled, loadOrt, withSession } from '../../src/runtime/onnx.js';
import { HTDEMUCS_LEAN_BELOW_BYTES, htdemucsSessionOptions } from '../../src/separate/htdemucs.js';
import { captureStream } from '../helpers/cli-run.js';

/** y = x · 3 on [batch, 4]. */
function tripleModel(): Uint8Array {
  const g = new GraphBuilder();
  g.input('x', 'float32', ['batch', 4]);
  const three = g.constant(new Float32Array([3]), [1]);
  g.op('Mul', ['x', three], {}, 'y');
  g.output('y', 'float32', ['batch', 4]);
  return g.build();
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('CPU sessions', () => {
  it('honour the computed thread cap: intra-op = cap, inter-op 1, sequential', async () => {
    // medium on 16 cores: min(4, floor(16 × 0.7) = 11) = 4
    const { config } = resolveConfig({ env: {}, flags: { device: 'cpu' }, cores: 16, homeDir: '/h' });
    expect(config.cpuThreads).toBe(4);
    const ort = await loadOrt();
    const create = vi.spyOn(ort.InferenceSession, 'create');
    const s = await createSession(tripleModel(), { device: config.device, threads: config.cpuThreads });
    try {
      expect(s.provider).toBe('cpu');
      expect(s.threads).toBe(4);
      expect(create).toHaveBeenCalledTimes(1);
      expect(create.mock.calls[0]![1]).toMatchObject({
        intraOpNumThreads: 4,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        executionProviders: ['cpu'],
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      });
      expect(s.inputs).toEqual([{ name: 'x', type: 'float32', shape: ['batch', 4] }]);
      expect(s.outputs).toEqual([{ name: 'y', type: 'float32', shape: ['batch', 4] }]);
      const out = await s.run({ x: { data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), dims: [2, 4] } });
      expect(out['y']!.dims).toEqual([2, 4]);
      expect(Array.from(out['y']!.data as Float32Array)).toEqual([3, 6, 9, 12, 15, 18, 21, 24]); // exact: small integers in float32
    } finally {
      await s.dispose();
    }
    await s.dispose(); // a second dispose is a no-op
    await expect(s.run({ x: { data: new Float32Array(4), dims: [1, 4] } })).rejects.toBeInstanceOf(InternalError);
  });

  it('turn ORT\'s CPU arena and memory patterns off unless the caller asks for them', async () => {
    const ort = await loadOrt();
    const create = vi.spyOn(ort.InferenceSession, 'create');
    for (const memory of [undefined, { cpuArena: true }, { cpuArena: true, memPattern: true }]) {
      const s = await createSession(tripleModel(), { device: 'cpu', threads: 1, memory });
      try {
        const out = await s.run({ x: { data: new Float32Array([1, 2, 3, 4]), dims: [1, 4] } });
        expect(Array.from(out['y']!.data as Float32Array)).toEqual([3, 6, 9, 12]);
      } finally {
        await s.dispose();
      }
    }
    expect(DEFAULT_SESSION_MEMORY).toEqual({ cpuArena: false, memPattern: false, planReuse: true });
    expect(create.mock.calls.map((c) => [c[1]!.enableCpuMemArena, c[1]!.enableMemPattern])).toEqual([
      [false, false],
      [true, false],
      [true, true],
    ]);
  });

  it('without plan reuse, run ORT\'s parallel executor on threads - 1 compute threads plus its waiting caller', async () => {
    const ort = await loadOrt();
    const create = vi.spyOn(ort.InferenceSession, 'create');
    for (const threads of [4, 1]) {
      const s = await createSession(tripleModel(), { device: 'cpu', threads, memory: { cpuArena: true, planReuse: false } });
      try {
        expect(s.threads).toBe(threads);
        const out = await s.run({ x: { data: new Float32Array([1, 2, 3, 4]), dims: [1, 4] } });
        expect(Array.from(out['y']!.data as Float32Array)).toEqual([3, 6, 9, 12]);
      } finally {
        await s.dispose();
      }
    }
    expect(create.mock.calls.map((c) => [c[1]!.executionMode, c[1]!.intraOpNumThreads, c[1]!.interOpNumThreads, c[1]!.enableCpuMemArena])).toEqual([
      ['parallel', 3, 2, true],
      ['parallel', 1, 2, true],
    ]);
  });

  it('HTDemucs plans without buffer reuse from two threads on where memory is short (below 16 GiB), unless its caller chose the memory settings', () => {
    const small = HTDEMUCS_LEAN_BELOW_BYTES - 1;
    expect(htdemucsSessionOptions({ device: 'cpu', threads: 1 }, small)).toEqual({ device: 'cpu', threads: 1 });
    expect(htdemucsSessionOptions({ device: 'cpu', threads: 2 }, small)).toEqual({ device: 'cpu', threads: 2, memory: { cpuArena: true, memPattern: false, planReuse: false } });
    expect(htdemucsSessionOptions({ device: 'cpu', threads: 8, memory: { cpuArena: false } }, small)).toEqual({ device: 'cpu', threads: 8, memory: { cpuArena: false } });
    // A machine with the memory to spare keeps ORT's sequential plan, whose threads all compute.
    expect(htdemucsSessionOptions({ device: 'cpu', threads: 2 }, HTDEMUCS_LEAN_BELOW_BYTES)).toEqual({ device: 'cpu', threads: 2 });
    expect(htdemucsSessionOptions({ device: 'cpu', threads: 8 }, 64 * 2 ** 30)).toEqual({ device: 'cpu', threads: 8 });
  });

  it('auto falls back to the CPU when the CUDA provider is not installed, and reports it', async () => {
    if (cudaProviderInstalled()) return; // on a CUDA install, auto legitimately picks CUDA
    const s = await createSession(tripleModel(), { device: 'auto', threads: 1 });
    expect(s.provider).toBe('cpu');
    expect(s.threads).toBe(1);
    await s.dispose();
  });

  it('withSession releases the session when the callback throws', async () => {
    const ort = await loadOrt();
    // The typings describe InferenceSession as a factory interface; at runtime it is a class whose instances share release().
    const proto = (ort.InferenceSession as unknown as { prototype: { release(): Promise<void> } }).prototype;
    const release = vi.spyOn(proto, 'release');
    await expect(
      withSession(tripleModel(), { device: 'cpu', threads: 1 }, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(release).toHaveBeenCalledTimes(1);
  });

  it('a missing input is named', async () => {
    await withSession(tripleModel(), { device: 'cpu', threads: 1 }, async (s) => {
      await expect(s.run({})).rejects.toThrow('missing model inputs: x');
    });
  });

  it('a missing model file → InputError 66; garbage bytes → DataError 65', async () => {
    await expect(createSession('/nonexistent/model.onnx', { device: 'cpu', threads: 1 })).rejects.toBeInstanceOf(InputError);
    const bad = await createSession(new Uint8Array([1, 2, 3, 4]), { device: 'cpu', threads: 1 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(DataError);
    expect((bad as DataError).exitCode).toBe(65);
  });
});

describe.skipIf(cudaProviderInstalled())('--device cuda without the CUDA provider', () => {
  it('is an UnavailableError (69) that says how to fix it, never a silent CPU fallback', async () => {
    const { config } = resolveConfig({ env: {}, flags: { device: 'cuda' }, cores: 2, homeDir: '/h' });
    const err = await createSession(tripleModel(), { device: config.device, threads: config.cpuThreads, gpu: config.gpu }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    const u = err as UnavailableError;
    expect(u.exitCode).toBe(69);
    expect(u.code).toBe('E_DEVICE_UNAVAILABLE');
    expect(u.message).toBe('CUDA was requested but onnxruntime-node was installed without the CUDA provider');
    expect(u.hint).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js');
    // The library names the option (an HTTP client sends `device`); the command line shows the flag.
    expect(u.hint).toContain('`device cpu`');
    expect(u.hint).not.toContain('--device');

    // What the user sees: one line, one hint, exit 69.
    const out = captureStream();
    const errOut = captureStream();
    const io = defaultIO({ stdout: out.stream, stderr: errOut.stream, env: {}, stdoutIsTTY: false, stderrIsTTY: false });
    expect(reportError(err, io, { json: false, verbose: false, color: false })).toBe(69);
    expect(errOut.text()).toBe(`stemkit: ${u.message}\nhint: ${u.hint!.replace('`device cpu`', '`--device cpu`')}\n`);
  });
});
