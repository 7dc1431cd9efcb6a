/**
 * A worker thread of the parallel `classic` model (src/separate/classic-parallel.ts): loads the in-process cascade
 * with a one-thread session, then separates one chunk per message and sends back the part of each stem that the
 * chunk's context makes exact. Started with node:worker_threads, never imported.
 */
import { InternalError } from '../errors.js';
import { CLASSIC_PARAMS, STEMS, createLocalClassicModel } from './classic.js';
import type { ClassicJob, ClassicWorkerInit } from './classic-parallel.js';
import type { StemBlocks, StemModel } from './types.js';
import { enterBlock, leaveBlock, servePool, type SendToPool } from './worker-pool.js';

/** Samples per push: the cascade's own streaming blocks, so the worker's memory does not grow with the chunk. */
const BLOCK = 1 << 16;

servePool<ClassicWorkerInit, ClassicJob, StemModel>('classic-worker.js', (init) => createLocalClassicModel(init.modelPath, init.session), separate);

async function separate(id: number, job: ClassicJob, { model, init, send }: { model: StemModel; init: ClassicWorkerInit; send: SendToPool }): Promise<void> {
  const stream = model.createStream({});
  const { skip, keep } = job;
  // Output samples so far (the stream returns them in input order).
  let pos = 0;
  // Each block's part of [skip, skip + keep) goes back at once, as views of the stream's own arrays (the cascade
  // returns fresh ones per block, so they can be transferred): no copy, and the calling thread can write a chunk's
  // stems while it is still being separated.
  const hand = (b: StemBlocks): void => {
    const n = b[STEMS[0]]!.channels[0]!.length;
    const from = Math.max(pos, skip);
    const to = Math.min(pos + n, skip + keep);
    pos += n;
    if (from >= to) return;
    const stems: Record<string, Float32Array[]> = {};
    const buffers = new Set<ArrayBuffer>();
    for (const s of STEMS) {
      stems[s] = b[s]!.channels.map((c) => {
        buffers.add(c.buffer as ArrayBuffer);
        return c.subarray(from - (pos - n), to - (pos - n));
      });
    }
    send({ type: 'part', id, stems }, [...buffers]);
  };
  const total = job.input[0]!.length;
  const blocks = Math.ceil(total / BLOCK);
  // The blocks, then the end of the stream.
  for (let k = 0; k <= blocks; k++) {
    enterBlock(init.control, id);
    try {
      const i = k * BLOCK;
      hand(
        k < blocks
          ? await stream.push({ channels: job.input.map((c) => c.subarray(i, i + BLOCK)), sampleRate: CLASSIC_PARAMS.sampleRate })
          : await stream.flush(),
      );
    } finally {
      leaveBlock(init.control);
    }
  }
  if (pos < skip + keep) throw new InternalError(`classic worker: the chunk gave ${pos} samples, ${skip + keep} expected`);
  send({ type: 'done', id, inferSeconds: stream.inferSeconds });
}
