#!/usr/bin/env node
// Thin launcher: everything lives in dist/cli/main.js (built by `npm ci` via the prepare script).
import { main } from '../dist/cli/main.js';

let settled = false;
// The event loop emptied while main() was still pending: some promise can never settle. Without this the
// process would end with exit 0 and no word, reporting a run that never finished as a success.
process.on('beforeExit', () => {
  if (settled) return;
  // One more turn first: a rejection scheduled by another 'beforeExit' listener may still finish main().
  setImmediate(() => {
    if (settled) return;
    settled = true;
    process.stderr.write('stemkit: internal error: the command stopped before finishing (it was waiting for something that can never happen)\nhint: This is a bug in stemkit. Re-run with --verbose and report it.\n');
    process.exitCode = 70;
  });
});

main(process.argv).then((code) => {
  settled = true;
  process.exitCode = code;
  // The command is over; a handle someone else left open (a config module's timer) must not keep the process
  // alive. Unref'd, so a normal exit is not delayed, and late enough for pending output to flush.
  setTimeout(() => process.exit(), 2000).unref();
});
