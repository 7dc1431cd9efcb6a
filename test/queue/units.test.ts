/**
 * The queue's pure parts and small pieces: config keys, path mapping and roots (real folders and a real
 * symbolic link), the error line a failed job stores, the reconnect delays and URL checks.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { ConfigError, DataError, InputError, StemkitError, UsageError } from '../../src/errors.js';
import { checkQueueUrl, reconnectDelayMs } from '../../src/queue/connection.js';
import { decodeJobError, encodeJobError } from '../../src/queue/jobs.js';
import { localPath, mapPath, unmapPath } from '../../src/queue/paths.js';

const FILE = '/proj/.stemrc.json';
const resolveWith = (config: unknown, env: Record<string, string> = {}) => resolveConfig({ env, flags: {}, cores: 4, homeDir: '/home/u', file: { path: FILE, config } });


describe('queue config', () => {
  it('defaults, file keys (roots relative to the file) and env STEMKIT_QUEUE_URL over the file', () => {
    expect(resolveWith({}).config.queue).toEqual({ url: undefined, name: 'stemkit', pathMap: {}, roots: undefined, attempts: 3, jobTimeoutSec: 3600, stallSec: 30, maxDownloadMB: 2048 });
    const { config, sources } = resolveWith(
      { queue: { url: 'redis://a:6379', name: 'farm-1', pathMap: { '/shared': '/mnt/nas' }, roots: ['data', '/mnt/nas'], attempts: 5, jobTimeoutSec: 60, stallSec: 2, maxDownloadMB: 10 } },
      { STEMKIT_QUEUE_URL: 'rediss://:pw@b:6380/2' },
    );
    expect(config.queue).toEqual({ url: 'rediss://:pw@b:6380/2', name: 'farm-1', pathMap: { '/shared': '/mnt/nas' }, roots: ['/proj/data', '/mnt/nas'], attempts: 5, jobTimeoutSec: 60, stallSec: 2, maxDownloadMB: 10 });
    expect(sources['queue.url']).toBe('env STEMKIT_QUEUE_URL');
    expect(sources['queue.name']).toBe(FILE);
  });

  it('reports every bad queue value at once, never echoing a password', () => {
    let e: unknown;
    try {
      resolveWith({ queue: { url: 'http://:secret@h', name: 'a:b', pathMap: { rel: '/x' }, roots: [], attempts: 0, jobTimeoutSec: -1, stallSec: 'x', maxDownloadMB: 0, retries: 2 } });
    } catch (err) {
      e = err;
    }
    if (!(e instanceof ConfigError)) throw new Error('expected a ConfigError');
    expect(e.problems.map((p) => p.key).sort()).toEqual(['queue.attempts', 'queue.jobTimeoutSec', 'queue.maxDownloadMB', 'queue.name', 'queue.pathMap', 'queue.retries', 'queue.roots', 'queue.stallSec', 'queue.url'].sort());
    const url = e.problems.find((p) => p.key === 'queue.url')!;
    expect(url.value).toBe('http://***@h/');
    expect(url.expected).toContain('redis://');
    expect(JSON.stringify(e.problems)).not.toContain('secret');
  });
});

describe('queue URL', () => {
  it.each(['redis://localhost', 'redis://:pw@10.0.0.5:6379/3', 'rediss://user:pw@redis.example.com:6380'])('accepts %s', (u) => {
    expect(checkQueueUrl(u)).toBe(u);
  });
  it('refuses other schemes and missing URLs with 64, the password redacted', () => {
    expect(() => checkQueueUrl('http://:hunter2@h:6379')).toThrow(UsageError);
    expect(() => checkQueueUrl('http://:hunter2@h:6379')).toThrow('not a Redis URL: http://***@h:6379/');
    expect(() => checkQueueUrl('redis://h/not-a-db')).toThrow(UsageError);
    expect(() => checkQueueUrl(undefined)).toThrow('no queue URL given');
  });

  it('reconnect delays: 0.5 s doubling to a 30 s cap, within ±50 % jitter', () => {
    expect([1, 2, 3, 7, 50].map((t) => reconnectDelayMs(t, () => 0.5))).toEqual([500, 1000, 2000, 30000, 30000]);
    expect(reconnectDelayMs(1, () => 0)).toBe(250);
    expect(reconnectDelayMs(20, () => 0.999999)).toBe(45000);
  });
});

describe('job errors', () => {
  it('round-trips code, exit code and message through failedReason', () => {
    const line = encodeJobError(new DataError('x.wav: not a WAV file', { code: 'E_BAD_INPUT' }));
    expect(line).toBe('[E_BAD_INPUT 65] x.wav: not a WAV file');
    expect(decodeJobError(line)).toEqual({ code: 'E_BAD_INPUT', exitCode: 65, message: 'x.wav: not a WAV file' });
    expect(decodeJobError(encodeJobError(new InputError('gone\nsecond line')))).toEqual({ code: 'E_INPUT_NOT_FOUND', exitCode: 66, message: 'gone\nsecond line' });
    expect(decodeJobError(encodeJobError(new TypeError('boom')))).toEqual({ code: 'E_INTERNAL', exitCode: 70, message: 'boom' });
    expect(decodeJobError(encodeJobError(new StemkitError('E_JOB_TIMEOUT', 75, 'too long')))).toEqual({ code: 'E_JOB_TIMEOUT', exitCode: 75, message: 'too long' });
    // BullMQ's own reasons carry no code: temporary (75).
    expect(decodeJobError('job stalled more than allowable limit')).toEqual({ code: 'E_QUEUE', exitCode: 75, message: 'job stalled more than allowable limit' });
    expect(decodeJobError(undefined)).toBeUndefined();
  });
});

describe('paths', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stemkit-qpaths-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('maps by the longest whole-segment prefix, and back', () => {
    const map = { '/shared': '/mnt/nas', '/shared/music': '/fast/music' };
    expect(mapPath('/shared/a.wav', map)).toBe('/mnt/nas/a.wav');
    expect(mapPath('/shared/music/b/c.wav', map)).toBe('/fast/music/b/c.wav');
    expect(mapPath('/shared', map)).toBe('/mnt/nas');
    expect(mapPath('/shared2/a.wav', map)).toBe('/shared2/a.wav');
    expect(mapPath('/other/a.wav', map)).toBe('/other/a.wav');
    expect(unmapPath('/fast/music/b/c.wav', map)).toBe('/shared/music/b/c.wav');
    expect(unmapPath('/mnt/nas/x/y.wav', map)).toBe('/shared/x/y.wav');
  });

  it('keeps jobs inside the roots: mapped paths, outputs not written yet, links out and .. refused with 64', async () => {
    const root = join(dir, 'nas');
    mkdirSync(join(root, 'in'), { recursive: true });
    mkdirSync(join(dir, 'secret'));
    symlinkSync(join(dir, 'secret'), join(root, 'escape'));
    const map = { '/shared': root };
    expect(await localPath('/shared/in/a.wav', 'input', map, [root])).toBe(join(root, 'in', 'a.wav'));
    expect(await localPath('/shared/new/deep/out', 'output folder', map, [root])).toBe(join(root, 'new', 'deep', 'out'));
    await expect(localPath('/shared/escape/x.wav', 'input', map, [root])).rejects.toMatchObject({ code: 'E_OUTSIDE_ROOTS', exitCode: 64 });
    await expect(localPath('/shared/../secret/x.wav', 'input', map, [root])).rejects.toMatchObject({ code: 'E_OUTSIDE_ROOTS' });
    await expect(localPath(join(dir, 'secret', 'x.wav'), 'input', map, [root])).rejects.toThrow(/outside this worker's roots/);
    await expect(localPath('relative/x.wav', 'input', map, [root])).rejects.toThrow('is not an absolute path');
    // A sibling whose name only starts like the root is not inside it.
    mkdirSync(`${root}2`);
    await expect(localPath(`${root}2/x.wav`, 'input', {}, [root])).rejects.toMatchObject({ code: 'E_OUTSIDE_ROOTS' });
  });
});
