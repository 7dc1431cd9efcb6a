// Test helper (a real process): a batch job built only from stemkit's job primitives, the way a command
// engine uses them: runBounded over the files, one heavy slot per file job (withSlots), outputs written
// through util/atomic (temp file beside the destination, renamed when complete), finished outputs skipped
// on a re-run, SIGINT → abort → temp files removed, slots released, exit 130.
// Usage: node test/helpers/jobs-batch.mjs '<json>'
//   { runtimeDir, inputs: string[], outDir, heavy?: 2, chunks?: 5, chunkDelayMs?: 50, force?: false }
// Output for input `a` is `<outDir>/a.out`: `chunks` lines "a <i>".
// Lines: {"event":"file","input","status":"ok"|"skipped","start","end"} {"event":"writing","input","chunk"}
//        {"event":"error","code","exitCode"}
import { existsSync } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { batchWorkers, runBounded } from '../../dist/jobs/batch.js';
import { withSlots } from '../../dist/jobs/semaphore.js';
import { cleanupTempFilesSync, commitTemp, discardTemp, tempPathFor, trackTemp } from '../../dist/util/atomic.js';
import { throwIfAborted } from '../../dist/errors.js';

const o = JSON.parse(process.argv[2]);
const config = { maxConcurrentHeavyTasks: o.heavy ?? 2, maxConcurrentTts: 1, maxConcurrentVideo: 1, runtimeDir: o.runtimeDir };
const say = (rec) => process.stdout.write(`${JSON.stringify({ pid: process.pid, ...rec })}\n`);
const ac = new AbortController();
process.on('SIGINT', () => ac.abort());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

await mkdir(o.outDir, { recursive: true });
try {
  await runBounded(o.inputs, batchWorkers(config, o.inputs.length), async (input) => {
    const out = join(o.outDir, `${input}.out`);
    if (!o.force && existsSync(out)) {
      say({ event: 'file', input, status: 'skipped' });
      return;
    }
    await withSlots({ pools: ['heavy'], config, wait: true, signal: ac.signal, pollMs: 30, command: `jobs-batch ${input}` }, async () => {
      const start = Date.now();
      const tmp = tempPathFor(out);
      trackTemp(tmp);
      try {
        for (let i = 0; i < (o.chunks ?? 5); i++) {
          throwIfAborted(ac.signal);
          await appendFile(tmp, `${input} ${i}\n`);
          say({ event: 'writing', input, chunk: i });
          await sleep(o.chunkDelayMs ?? 50);
        }
        throwIfAborted(ac.signal);
        await commitTemp(tmp, out);
      } catch (e) {
        await discardTemp(tmp);
        throw e;
      }
      say({ event: 'file', input, status: 'ok', start, end: Date.now() });
    });
  }, ac.signal);
} catch (e) {
  cleanupTempFilesSync();
  say({ event: 'error', code: e.code, exitCode: e.exitCode, message: e.message });
  process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1;
}
