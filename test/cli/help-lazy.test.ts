import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const built = existsSync(join(root, 'dist', 'cli', 'main.js'));

/** Runs the built CLI in a fresh node and returns the CommonJS modules it loaded (require.cache). */
function loadedModules(args: string[]): string[] {
  const script = `
    import { main } from ${JSON.stringify(join(root, 'dist', 'cli', 'main.js'))};
    import { createRequire } from 'node:module';
    import { Writable } from 'node:stream';
    const sink = new Writable({ write(_c, _e, cb) { cb(); } });
    const code = await main(['node', 'stemkit', ...${JSON.stringify(args)}], { stdout: sink, stderr: sink, env: { HOME: '/h', NO_COLOR: '1' } });
    const req = createRequire(import.meta.url);
    process.stdout.write(JSON.stringify({ code, modules: Object.keys(req.cache) }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const parsed = JSON.parse(out) as { code: number; modules: string[] };
  expect(parsed.code).toBe(0);
  return parsed.modules;
}

// Needs the build (`npm test` builds first); skipped when dist/ is absent.
describe.skipIf(!built)('stemkit --help stays light', () => {
  it('does not load onnxruntime-node, cosmiconfig or cli-progress', () => {
    const mods = loadedModules(['--help']);
    expect(mods.filter((m) => /onnxruntime|cosmiconfig|cli-progress/.test(m))).toEqual([]);
  });

  it('the same probe does see onnxruntime-node when a command uses it (the check can fail)', () => {
    const mods = loadedModules(['doctor', '--json']);
    expect(mods.some((m) => m.includes(`${join('node_modules', 'onnxruntime-node')}`))).toBe(true);
    expect(mods.some((m) => m.includes('cosmiconfig'))).toBe(true);
  });
});
