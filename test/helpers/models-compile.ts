/**
 * Compiles src/models (and what it imports) to plain JS in a temp folder, so tests can run the real module in
 * separate Node processes. Type checking is skipped (`--noCheck`): `tsc -p` covers it.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Returns the folder holding `dist/models/ensure.js` (+ `models/registry.json` where the code expects it). */
export function compileModelsModule(): string {
  const out = mkdtempSync(join(tmpdir(), 'stemkit-models-js-'));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(
    process.execPath,
    [tsc, '--outDir', join(out, 'dist'), '--rootDir', join(root, 'src'), '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
      '--target', 'ES2022', '--skipLibCheck', '--types', 'node', '--noCheck', join(root, 'src', 'models', 'ensure.ts')],
    { cwd: root, stdio: 'pipe' },
  );
  // The registry is read from ../../models/registry.json relative to dist/models/registry.js, as in the package.
  mkdirSync(join(out, 'models'));
  copyFileSync(join(root, 'models', 'registry.json'), join(out, 'models', 'registry.json'));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  return out;
}
