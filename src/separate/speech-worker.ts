/**
 * A worker thread of the speech models' extra channels (src/separate/speech-lanes.ts): loads the model with a
 * one-thread session, keeps one recurrent stream per channel it is given, and runs one block of one stream per job.
 * Started with node:worker_threads, never imported.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { InternalError } from '../errors.js';
import { createSession } from '../runtime/onnx.js';
import type { SpeechJob, SpeechWorkerInit } from './speech-lanes.js';
import { createDtlnModel, createGtcrnModel } from './speech.js';
import type { StemStream } from './types.js';
import { enterBlock, leaveBlock, transferError, type FromPoolWorker, type ToPoolWorker } from './worker-pool.js';

const port = parentPort;
if (!port) throw new InternalError('speech-worker.js runs only as a worker thread');
const init = workerData as SpeechWorkerInit;
const send = (m: FromPoolWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

const opts = { id: init.id, session: init.session, createSession, ...(init.stepping ? { stepping: init.stepping } : {}) };
const loading = init.kind === 'gtcrn' ? createGtcrnModel(init.paths[0]!, opts) : createDtlnModel(init.paths[0]!, init.paths[1]!, opts);
loading.then(
  (m) => send({ type: 'ready', provider: m.provider, threads: m.threads }),
  (e: unknown) => send({ type: 'fatal', error: transferError(e) }),
);

const streams = new Map<number, StemStream>();

port.on('message', (m: ToPoolWorker<SpeechJob>) => {
  if (m.type === 'job') void step(m.id, m.payload);
  else void close();
});

async function close(): Promise<void> {
  try {
    await (await loading).dispose();
  } finally {
    port!.close();
  }
}

async function step(id: number, job: SpeechJob): Promise<void> {
  try {
    const model = await loading;
    let stream = streams.get(job.stream);
    if (!stream) {
      stream = model.createStream({ wantedStems: job.wanted });
      streams.set(job.stream, stream);
    }
    enterBlock(init.control, id);
    let out;
    try {
      out = job.block ? await stream.push({ channels: [job.block], sampleRate: model.sampleRate }) : await stream.flush();
    } finally {
      leaveBlock(init.control);
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
  } catch (e) {
    // A stream that failed or was given up midway has no usable state left.
    streams.delete(job.stream);
    send({ type: 'failed', id, error: transferError(e) });
  }
}
