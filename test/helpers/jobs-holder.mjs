// Test helper (a real, separate process): takes job slots through the built library, reports JSON lines
// on stdout, holds the slots, then releases them.
// Usage: node test/helpers/jobs-holder.mjs '<json options>'
//   { runtimeDir, pools?: ['heavy'], limits?: {heavy,tts,video}, wait?: true, timeoutSec?, holdMs?: 500,
//     end?: 'release' | 'exit' | 'hang' }
//   end: 'release' (default) releases then exits 0; 'exit' calls process.exit(0) without releasing (the exit
//   handler must clean up); 'hang' holds until killed.
// Lines: {"event":"waiting",...} {"event":"acquired","t":<ms>,...} {"event":"released","t":<ms>}
//        {"event":"error","code":...,"exitCode":...,"message":...} (then exits with exitCode)
import { acquireSlots } from '../../dist/jobs/semaphore.js';

const o = JSON.parse(process.argv[2] ?? '{}');
const limits = { heavy: 2, tts: 1, video: 1, ...(o.limits ?? {}) };
const config = {
  maxConcurrentHeavyTasks: limits.heavy,
  maxConcurrentTts: limits.tts,
  maxConcurrentVideo: limits.video,
  runtimeDir: o.runtimeDir,
};
const say = (rec) => process.stdout.write(`${JSON.stringify({ pid: process.pid, ...rec })}\n`);

try {
  const lease = await acquireSlots({
    pools: o.pools ?? ['heavy'],
    config,
    wait: o.wait ?? true,
    ...(o.timeoutSec === undefined ? {} : { timeoutSec: o.timeoutSec }),
    command: `jobs-holder ${o.tag ?? ''}`.trim(),
    pollMs: o.pollMs ?? 50,
    onLog: (e) => say({ event: 'waiting', t: Date.now(), message: e.message }),
  });
  say({ event: 'acquired', t: Date.now(), slots: lease.slots.map((s) => `${s.pool}-${s.index}`) });
  if (o.end === 'hang') {
    setInterval(() => undefined, 1 << 30);
  } else {
    await new Promise((r) => setTimeout(r, o.holdMs ?? 500));
    if (o.end === 'exit') {
      say({ event: 'released', t: Date.now() });
      process.exit(0);
    }
    say({ event: 'released', t: Date.now() });
    await lease.release();
  }
} catch (e) {
  say({ event: 'error', code: e.code, exitCode: e.exitCode, message: e.message });
  process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1;
}
