import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist');
const built = existsSync(join(dist, 'cli', 'context.js'));

/**
 * A real process running a runAction handler that writes a tracked temp file, then either honours
 * ctx.signal ('respect') or ignores it ('ignore'). Returns its exit code, stderr and what is left in the folder.
 */
async function interrupt(mode: 'respect' | 'ignore', signals: number): Promise<{ code: number | null; stderr: string; left: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'stemkit-sig-'));
  const script = `
    import { Command } from 'commander';
    import { writeFileSync } from 'node:fs';
    import { defaultIO, runAction } from ${JSON.stringify(join(dist, 'cli', 'context.js'))};
    import { reportError } from ${JSON.stringify(join(dist, 'cli', 'main.js'))};
    import { tempPathFor, trackTemp } from ${JSON.stringify(join(dist, 'util', 'atomic.js'))};
    const tmp = tempPathFor(${JSON.stringify(join(dir, 'out.wav'))});
    const cmd = new Command('x').exitOverride().action(runAction(async (ctx) => {
      writeFileSync(tmp, 'partial');
      trackTemp(tmp);
      process.stdout.write('ready\\n');
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, 30000);
        if (${JSON.stringify(mode)} === 'respect') ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(new Error('killed child')); });
      });
    }));
    try { await cmd.parseAsync([], { from: 'user' }); }
    catch (e) { process.exitCode = reportError(e, defaultIO(), { json: false, verbose: false, color: false }); }
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env: { ...process.env, NO_COLOR: '1', HOME: dir } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
  child.kill('SIGINT');
  if (signals === 2) {
    // The second signal only after the first was seen, as a user pressing Ctrl-C twice.
    while (!stderr.includes('interrupting')) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
  }
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stderr, left: readdirSync(dir) };
}

describe.skipIf(!built)('Ctrl-C in a real process', () => {
  it('first SIGINT: the handler sees the abort, the run ends with 130 and the partial output is removed', async () => {
    const r = await interrupt('respect', 1);
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('interrupting... (press Ctrl-C again to stop immediately)');
    expect(r.stderr).toContain('stemkit: interrupted\n');
    expect(r.left).toEqual([]);
  });

  it('second SIGINT while the handler ignores the first: exit 130 at once, temp files removed', async () => {
    const r = await interrupt('ignore', 2);
    expect(r.code).toBe(130);
    expect(r.left).toEqual([]);
  });
});
