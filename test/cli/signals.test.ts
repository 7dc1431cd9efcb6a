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
async function interrupt(
  mode: 'respect' | 'ignore',
  signals: number,
  unwind = false,
  sig: NodeJS.Signals = 'SIGINT',
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; left: string[] }> {
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
    if (${JSON.stringify(unwind)}) {
      // A slow unwind after the action returned (main() flushing output, say): the window a late Ctrl-C can hit.
      process.stdout.write('unwinding\\n');
      setTimeout(() => {}, 30000);
    }
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env: { ...process.env, NO_COLOR: '1', HOME: dir } });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  while (!stdout.includes('ready')) await new Promise((r) => setTimeout(r, 10));
  child.kill(sig);
  if (unwind) {
    while (!stdout.includes('unwinding')) await new Promise((r) => setTimeout(r, 10));
    child.kill(sig);
  } else if (signals === 2) {
    // The second signal only after the first was seen, as a user pressing Ctrl-C twice.
    while (!stderr.includes('interrupting')) await new Promise((r) => setTimeout(r, 20));
    child.kill(sig);
  }
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  return { code, signal, stderr, left: readdirSync(dir) };
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

  // Regression (seen once in CI): the action had ended and removed its listeners, so a second Ctrl-C
  // arriving while main() unwound killed the process by SIGINT instead of exiting 130.
  it('second SIGINT after the interrupted action returned, while the process unwinds: still exit 130, not death by signal', async () => {
    const r = await interrupt('respect', 2, true);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(130);
    expect(r.left).toEqual([]);
  });

  it.each([
    { sig: 'SIGTERM' as const, code: 143 },
    { sig: 'SIGHUP' as const, code: 129 },
  ])('$sig is handled like Ctrl-C: graceful abort, temp files removed, exit $code (128 + the signal number)', async ({ sig, code }) => {
    const r = await interrupt('respect', 1, false, sig);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(`stemkit: stopped by ${sig}\n`);
    expect(r.left).toEqual([]);
    const twice = await interrupt('ignore', 2, false, sig);
    expect(twice.code).toBe(code);
    expect(twice.left).toEqual([]);
  });
});
