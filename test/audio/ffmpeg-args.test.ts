import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFfmpegArgs, buildFfprobeArgs, FfmpegError, parseFfprobeOutput, stderrTail, videoMuxerFor } from '../../src/audio/ffmpeg.js';
import { formatFromPath, isVideoPath } from '../../src/audio/open.js';

const base = ['-hide_banner', '-nostdin', '-v', 'error'];

describe('buildFfmpegArgs', () => {
  it('decode: first audio track to f32le on stdout, rate and channels pinned, path made absolute', () => {
    expect(buildFfmpegArgs({ mode: 'decode', input: 'in dir/-song.mp3', sampleRate: 44100, channels: 2 })).toEqual([
      ...base, '-i', resolve('in dir/-song.mp3'),
      '-map', '0:a:0', '-vn', '-sn', '-dn',
      '-ac', '2', '-ar', '44100',
      '-c:a', 'pcm_f32le', '-f', 'f32le', 'pipe:1',
    ]);
  });

  const enc = (format: 'flac' | 'mp3' | 'opus' | 'ogg' | 'm4a', extra: Record<string, unknown> = {}): string[] =>
    buildFfmpegArgs({ mode: 'encode', output: '/o/x.tmp.1.1', format, sampleRate: 48000, channels: 2, ...extra });
  const pipeIn = ['-f', 'f32le', '-ar', '48000', '-ac', '2', '-i', 'pipe:0', '-vn'];

  it.each([
    ['flac', {}, ['-c:a', 'flac', '-sample_fmt', 's16', '-f', 'flac']],
    ['flac', { bits: 24 }, ['-c:a', 'flac', '-sample_fmt', 's32', '-bits_per_raw_sample', '24', '-f', 'flac']],
    ['flac', { bits: 32 }, ['-c:a', 'flac', '-sample_fmt', 's32', '-bits_per_raw_sample', '24', '-f', 'flac']],
    ['mp3', {}, ['-c:a', 'libmp3lame', '-b:a', '320k', '-f', 'mp3']],
    ['mp3', { bitrate: '192k' }, ['-c:a', 'libmp3lame', '-b:a', '192k', '-f', 'mp3']],
    ['opus', {}, ['-c:a', 'libopus', '-b:a', '192k', '-f', 'opus']],
    ['ogg', {}, ['-c:a', 'libvorbis', '-b:a', '256k', '-f', 'ogg']],
    ['m4a', { bitrate: '128k' }, ['-c:a', 'aac', '-b:a', '128k', '-f', 'ipod']],
  ] as const)('encode %s %o', (format, extra, codec) => {
    expect(enc(format, extra)).toEqual([...base, ...pipeIn, ...codec, '-y', '/o/x.tmp.1.1']);
  });

  it('remux with one stem: map its audio, copy video', () => {
    expect(buildFfmpegArgs({ mode: 'remux', video: '/v/a.mp4', audio: ['/s/vocals.wav'], output: '/v/out.tmp', muxer: 'mp4', audioCodec: ['-c:a', 'aac', '-b:a', '256k'] })).toEqual([
      ...base, '-i', '/v/a.mp4', '-i', '/s/vocals.wav',
      '-map', '0:v', '-map', '1:a:0', '-map_metadata', '0',
      '-c:v', 'copy', '-c:a', 'aac', '-b:a', '256k', '-f', 'mp4', '-y', '/v/out.tmp',
    ]);
  });

  it('remux with several stems: summed by amix without normalisation', () => {
    expect(buildFfmpegArgs({ mode: 'remux', video: '/v/a.mkv', audio: ['/s/a.wav', '/s/b.wav', '/s/c.wav'], output: '/v/o', muxer: 'matroska', audioCodec: ['-c:a', 'flac'] })).toEqual([
      ...base, '-i', '/v/a.mkv', '-i', '/s/a.wav', '-i', '/s/b.wav', '-i', '/s/c.wav',
      '-map', '0:v', '-filter_complex', '[1:a:0][2:a:0][3:a:0]amix=inputs=3:duration=longest:normalize=0[aout]', '-map', '[aout]',
      '-map_metadata', '0', '-c:v', 'copy', '-c:a', 'flac', '-f', 'matroska', '-y', '/v/o',
    ]);
  });

  it('ffprobe prints JSON streams and format', () => {
    expect(buildFfprobeArgs('/a/b.mp3')).toEqual(['-hide_banner', '-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '/a/b.mp3']);
  });
});

describe('parseFfprobeOutput', () => {
  it('takes the first audio stream and ignores cover art as video', () => {
    const json = JSON.stringify({
      streams: [
        { codec_type: 'video', codec_name: 'mjpeg', disposition: { attached_pic: 1 } },
        { codec_type: 'audio', codec_name: 'mp3', sample_rate: '44100', channels: 2, duration: '12.5' },
        { codec_type: 'audio', codec_name: 'aac', sample_rate: '48000', channels: 6 },
      ],
      format: { format_name: 'mp3', duration: '12.6' },
    });
    expect(parseFfprobeOutput(json, 'x.mp3')).toEqual({ container: 'mp3', audioCodec: 'mp3', sampleRate: 44100, channels: 2, duration: 12.5, hasVideo: false, videoCodec: undefined });
  });

  it('video file: container first name, format duration when the stream has none', () => {
    const json = JSON.stringify({
      streams: [{ codec_type: 'video', codec_name: 'h264' }, { codec_type: 'audio', codec_name: 'opus', sample_rate: '48000', channels: 1, duration: 'N/A' }],
      format: { format_name: 'matroska,webm', duration: '600.04' },
    });
    expect(parseFfprobeOutput(json, 'x.webm')).toMatchObject({ container: 'matroska', audioCodec: 'opus', channels: 1, duration: 600.04, hasVideo: true, videoCodec: 'h264' });
  });

  it('no audio stream → audioCodec undefined', () => {
    expect(parseFfprobeOutput('{"streams":[{"codec_type":"video","codec_name":"h264"}],"format":{}}', 'v.mp4').audioCodec).toBeUndefined();
  });

  it('garbage → DataError 65', () => {
    expect(() => parseFfprobeOutput('not json', 'x')).toThrow(expect.objectContaining({ exitCode: 65 }));
  });
});

describe('errors and helpers', () => {
  it('stderrTail keeps the last 20 non-empty lines', () => {
    const text = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n') + '\n\n';
    const t = stderrTail(text);
    expect(t).toHaveLength(20);
    expect(t[0]).toBe('line 10');
    expect(t[19]).toBe('line 29');
  });

  it('FfmpegError: summary line, then the tail, and the tail in details', () => {
    const e = new FfmpegError('ffmpeg could not decode x.mp3 (exit code 1)', 65, ['a', 'b'], { hint: 'h' });
    expect(e.message).toBe('ffmpeg could not decode x.mp3 (exit code 1)\n  ffmpeg: a\n  ffmpeg: b');
    expect(e.details).toEqual({ stderr: ['a', 'b'] });
    expect(e.exitCode).toBe(65);
    expect(e.code).toBe('E_FFMPEG');
  });

  it.each([
    ['a.mp4', true], ['b.MKV', true], ['c.webm', true], ['d.mov', true], ['e.mp3', false], ['f.wav', false], ['g.m4a', false], ['noext', false],
  ])('isVideoPath(%s) = %s', (p, v) => expect(isVideoPath(p)).toBe(v));

  it.each([
    ['x.wav', 'wav'], ['x.WAV', 'wav'], ['x.flac', 'flac'], ['x.mp3', 'mp3'], ['x.opus', 'opus'], ['x.ogg', 'ogg'], ['x.m4a', 'm4a'], ['x.aiff', undefined],
  ])('formatFromPath(%s) = %s', (p, f) => expect(formatFromPath(p)).toBe(f));

  it('video muxers by extension', () => {
    expect(videoMuxerFor('.mkv')).toEqual({ muxer: 'matroska', audioCodec: ['-c:a', 'flac'] });
    expect(videoMuxerFor('.MP4')?.muxer).toBe('mp4');
    expect(videoMuxerFor('.webm')?.audioCodec).toEqual(['-c:a', 'libopus', '-b:a', '192k']);
    expect(videoMuxerFor('.xyz')).toBeUndefined();
  });
});
