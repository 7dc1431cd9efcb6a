import { describe, expect, it } from 'vitest';
import { cudaProvider } from '../../src/runtime/onnx.js';
import { parseGpuQuery } from '../../src/runtime/gpu.js';

const gpu = { deviceId: 1, memoryFraction: 0.5, cudnnConvAlgoSearch: 'heuristic' as const, tf32: false };

describe('CUDA provider options', () => {
  it('maps the config: device id, memory limit = fraction × card memory, cuDNN search, TF32', () => {
    expect(cudaProvider({ device: 'cuda', threads: 1, gpu, gpuMemoryBytes: 80 * 1024 ** 3 })).toEqual({
      name: 'cuda',
      deviceId: 1,
      cudnn_conv_algo_search: 'HEURISTIC',
      use_tf32: '0',
      gpu_mem_limit: String(40 * 1024 ** 3),
    });
  });

  it('sets no memory limit when the card size is unknown, and defaults to device 0 without a gpu config', () => {
    expect(cudaProvider({ device: 'cuda', threads: 1, gpu })).not.toHaveProperty('gpu_mem_limit');
    expect(cudaProvider({ device: 'cuda', threads: 1 })).toEqual({ name: 'cuda', deviceId: 0 });
  });
});

describe('nvidia-smi query parsing', () => {
  it('reads name, used and total MiB per card and skips malformed lines', () => {
    const text = 'NVIDIA H100 80GB HBM3, 1024, 81559\nNVIDIA A10, 0, 23028\n[N/A], x, y\n\n';
    expect(parseGpuQuery(text)).toEqual([
      { name: 'NVIDIA H100 80GB HBM3', memoryUsedMiB: 1024, memoryTotalMiB: 81559 },
      { name: 'NVIDIA A10', memoryUsedMiB: 0, memoryTotalMiB: 23028 },
    ]);
  });
});
