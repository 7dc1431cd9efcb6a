/**
 * `stemkit tts` argument checks happen before any model is loaded or downloaded: a real process, an empty
 * model cache and a model mirror on 127.0.0.1 that counts the requests it gets.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/audio-fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('stemkit tts: checks before loading', () => {
  let tmp: { dir: string; cleanup: () => void };
  let server: Server;
  let requests = 0;
  let mirror = '';
  beforeAll(async () => {
    tmp = makeTempDir('stemkit-tts-args-');
    server = createServer((_req, res) => {
      requests += 1;
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A PATH with node and nothing else: no espeak-ng.
    mkdirSync(join(tmp.dir, 'bin'));
    symlinkSync(process.execPath, join(tmp.dir, 'bin', 'node'));
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    tmp.cleanup();
  });

  const run = (args: string[], path = process.env['PATH'] ?? ''): Promise<{ code: number | null; stderr: string }> =>
    new Promise((res) => {
      const cache = join(tmp.dir, `cache-${Math.random().toString(36).slice(2)}`);
      mkdirSync(cache);
      const p = spawn(process.execPath, [join(ROOT, 'bin/stemkit.js'), 'tts', ...args], {
        cwd: tmp.dir,
        env: { PATH: path, HOME: tmp.dir, STEMKIT_CACHE_DIR: cache, STEMKIT_RUNTIME_DIR: join(tmp.dir, 'run'), STEMKIT_MODEL_MIRROR: mirror, NO_COLOR: '1' },
      });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => {
        // Nothing was fetched into the cache either.
        expect(readdirSync(cache)).toEqual([]);
        res({ code, stderr });
      });
    });

  it.each([
    { args: ['Hello', '--speed', '5', '-o', 'x.wav'], code: 64, err: 'stemkit: --speed must be a number from 0.5 to 2 (got "5")\n' },
    { args: ['Hello', '--speed', '50', '-m', 'en_US-lessac-medium', '-o', 'x.wav'], code: 64, err: 'stemkit: --speed must be a number from 0.1 to 10 (got "50")\n' },
    {
      args: ['Hello', '-o', 'hello.xyz'],
      code: 64,
      err: 'stemkit: cannot tell the output format from "hello.xyz"\nhint: End the file name with one of: .wav, .flac, .mp3, .opus, .ogg, .m4a (e.g. -o hello.wav).\n',
    },
  ])('$args → $code, nothing downloaded', async ({ args, code, err }) => {
    const r = await run(args);
    expect(r.stderr).toBe(err);
    expect(r.code).toBe(code);
    expect(requests).toBe(0);
  });

  it('--lang es without espeak-ng on PATH → 69 naming the fix, nothing downloaded', async () => {
    const r = await run(['Hola', '--lang', 'es', '-o', 'hola.wav'], join(tmp.dir, 'bin'));
    expect(r.stderr).toBe(
      'stemkit: language "es" needs the espeak-ng program, which was not found\n' +
        'hint: Install espeak-ng (Debian/Ubuntu: `sudo apt install espeak-ng`; macOS: `brew install espeak-ng`), or pass its path with --espeak. English works without it.\n',
    );
    expect(r.code).toBe(69);
    expect(requests).toBe(0);
  });
});
