/**
 * A real pseudo-terminal for tests: a command runs in a detached tmux pane of a given size, and the test
 * reads the screen exactly as a user would see it (`tmux capture-pane`). Each helper uses its own tmux
 * server socket, so tests never touch a user's sessions.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const HAS_TMUX: boolean = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface Pane {
  /** The visible screen, one string per row, trailing blank rows dropped; with `escapes`, colour codes too. */
  screen(escapes?: boolean): string[];
  /** Polls the screen until `pred` holds; throws with the last screen after `timeoutMs`. */
  waitFor(pred: (rows: string[]) => boolean, timeoutMs?: number): Promise<string[]>;
  /** Types text followed by Enter into the pane. */
  sendLine(text: string): void;
  close(): void;
}

/**
 * Starts `argv` in a `cols`×`rows` terminal with exactly `env` (plus TERM). When it exits the pane shows
 * `[exit N]` on its own row and stays open until close().
 */
export function openPane(argv: readonly string[], opts: { cols: number; rows: number; env: Record<string, string>; cwd: string }): Pane {
  const socket = `stemkit-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmux = (...args: string[]): string => {
    const r = spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const env = Object.entries({ TERM: 'xterm-256color', ...opts.env }).map(([k, v]) => quote(`${k}=${v}`));
  const script = `cd ${quote(opts.cwd)} && env -i ${env.join(' ')} ${argv.map(quote).join(' ')}; echo "[exit $?]"; exec sleep 600`;
  tmux('new-session', '-d', '-s', 't', '-x', String(opts.cols), '-y', String(opts.rows), 'sh', '-c', script);
  const screen = (escapes = false): string[] => {
    const rows = tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', 't').split('\n').map((r) => r.replace(/\s+$/, ''));
    while (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();
    return rows;
  };
  return {
    screen,
    async waitFor(pred, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const rows = screen();
        if (pred(rows)) return rows;
        if (Date.now() > end) throw new Error(`timed out waiting for the screen; it shows:\n${rows.join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    sendLine(text) {
      tmux('send-keys', '-t', 't', '-l', text);
      tmux('send-keys', '-t', 't', 'Enter');
    },
    close() {
      spawnSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
    },
  };
}
