/**
 * Real Redis servers for the queue tests: Debian's redis-server on 127.0.0.1 at a free port, in a private
 * folder, stopped at the end. `redis-server --port 0` does not listen on TCP at all, so a port is found by
 * binding 127.0.0.1:0 first (with a retry if another process takes it in between).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

export const HAS_REDIS = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

export interface TestRedis {
  port: number;
  url: string;
  /** Stops the server (SIGKILL when `hard`: no final save; with appendfsync always nothing acknowledged is lost). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and folder (the AOF is replayed). */
  restart(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.write('PING\r\n');
    });
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
  });
}

async function launch(port: number, dir: string, aof: boolean): Promise<ChildProcess | undefined> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'yes'];
  args.push(...(aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  for (let i = 0; i < 100; i++) {
    if (await answers(port)) return child;
    const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))]);
    if (gone) return undefined; // port taken meanwhile: the caller picks another
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not answer`);
}

/** Starts a server; `aof` turns on the append-only file with fsync on every write (for restart tests). */
export async function startRedis(dir: string, opts: { aof?: boolean } = {}): Promise<TestRedis> {
  mkdirSync(dir, { recursive: true });
  const aof = opts.aof === true;
  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    child = await launch(port, dir, aof);
  }
  if (!child) throw new Error('could not start redis-server on a free port');
  const stop = async (hard = false): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await gone;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop();
      child = await launch(port, join(dir), aof);
      if (!child) throw new Error(`port ${port} was taken while Redis was down`);
    },
  };
}
