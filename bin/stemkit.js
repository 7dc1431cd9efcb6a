#!/usr/bin/env node
// Thin launcher: everything lives in dist/cli/main.js (built by `npm ci` via the prepare script).
import { main } from '../dist/cli/main.js';

main(process.argv).then((code) => {
  process.exitCode = code;
});
