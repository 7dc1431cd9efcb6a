/**
 * A worker thread of the speech models' extra channels (src/separate/speech-lanes.ts): loads the model with a
 * one-thread session, keeps one recurrent stream per channel it is given, and runs one block of one stream per job.
 * Started with node:worker_threads, never imported.
 */
import { createSession } from '../runtime/onnx.js';
import type { SpeechJob, SpeechWorkerInit } from './speech-lanes.js';
import { createDtlnModel, createGtcrnModel } from './speech.js';
import type { StemModel, StemStream } from './types.js';
import { enterBlock, leaveBlock, servePool, type SendToPool } from './worker-pool.js';

// One stream per channel this worker was given, by the stream id its jobs carry.
const streams = new Map<number, StemStream>();

servePool<SpeechWorkerInit, SpeechJob, StemModel>(
  'speech-worker.js',
  (init) => {
    const opts = { id: init.id, session: init.session, createSession, ...(init.stepping ? { stepping: init.stepping } : {}) };
    return init.kind === 'gtcrn' ? createGtcrnModel(init.paths[0]!, opts) : createDtlnModel(init.paths[0]!, init.paths[1]!, opts);
  },
  step,
);

async function step(id: number, job: SpeechJob, { model, init, send }: { model: StemModel; init: SpeechWorkerInit; send: SendToPool }): Promise<void> {
  let stream = streams.get(job.stream);
  if (!stream) {
    stream = model.createStream({ wantedStems: job.wanted });
    streams.set(job.stream, stream);
  }
  let out;
  try {
    enterBlock(init.control, id);
    try {
      out = job.block ? await stream.push({ channels: [job.block], sampleRate: model.sampleRate }) : await stream.flush();
    } finally {
      leaveBlock(init.control);
    }
  } catch (e) {
    // A stream that failed or was given up midway has no usable state left.
    streams.delete(job.stream);
    throw e;
  }
  // Ended, or given up while it ran (its caller will not come back): the stream is done here.
  if (!job.block || Atomics.load(init.control, 0) === id) streams.delete(job.stream);
  // Copies go back: a stream may hand out views of buffers it keeps using.
  const stems: Record<string, Float32Array[]> = {};
  const transfer: ArrayBuffer[] = [];
  for (const [name, audio] of Object.entries(out)) {
    const y = audio.channels[0]!.slice();
    stems[name] = [y];
    transfer.push(y.buffer);
  }
  send({ type: 'part', id, stems }, transfer);
  send({ type: 'done', id, inferSeconds: stream.inferSeconds });
}
