/**
 * The malformed-WAV corpus: every file is generated from this table (nothing binary is committed), and
 * test/audio/malformed.test.ts checks that each one gives exactly the expected exit code and message.
 */
import { buildWav, patternBytes, type WavSpec } from './audio-fixtures.js';

export interface CorpusCase {
  name: string;
  bytes: Uint8Array;
  exitCode: 65 | 66;
  /** Expected StemkitError code, when it is not the class default. */
  code?: string;
  message: RegExp;
}

const pcm16: WavSpec = { formatTag: 1, channels: 2, sampleRate: 44100, bits: 16 };
const frames16 = patternBytes(1, 400); // 100 stereo 16-bit frames

function withFmtSize(buf: Buffer, cut: number): Buffer {
  return buf.subarray(0, cut);
}

export function malformedCorpus(): CorpusCase[] {
  const valid = buildWav(pcm16, frames16);
  return [
    { name: 'empty.wav', bytes: new Uint8Array(0), exitCode: 65, message: /empty file \(0 bytes\)/ },
    { name: 'riff-only.wav', bytes: Buffer.from('RIFF\x10\x00', 'latin1'), exitCode: 65, message: /truncated WAV header \(6 bytes\)/ },
    { name: 'text.wav', bytes: Buffer.from('this is not audio at all, just text\n'), exitCode: 65, message: /not a WAV file \(no RIFF header\)$/ },
    { name: 'flac-named.wav', bytes: Buffer.concat([Buffer.from('fLaC'), patternBytes(2, 60)]), exitCode: 65, message: /not a WAV file \(looks like FLAC\)/ },
    { name: 'mp3-named.wav', bytes: Buffer.concat([Buffer.from('ID3\x04'), patternBytes(3, 60)]), exitCode: 65, message: /looks like MP3/ },
    { name: 'rifx.wav', bytes: buildWav({ ...pcm16, riff: 'RIFX' }, frames16), exitCode: 65, message: /big-endian WAV \(RIFX\)/ },
    { name: 'avi-form.wav', bytes: buildWav({ ...pcm16, form: 'AVI ' }, frames16), exitCode: 65, message: /RIFF file of type "AVI ", not WAVE/ },
    { name: 'header-cut-in-fmt.wav', bytes: withFmtSize(valid, 28), exitCode: 65, message: /truncated WAV header \(fmt chunk of 16 bytes\)/ },
    { name: 'header-only.wav', bytes: withFmtSize(valid, 36), exitCode: 65, message: /truncated WAV file \(no data chunk\)/ },
    { name: 'no-fmt.wav', bytes: Buffer.concat([Buffer.from('RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00', 'latin1')]), exitCode: 65, message: /no fmt chunk/ },
    {
      name: 'data-longer-than-file.wav',
      bytes: buildWav({ ...pcm16, dataSizeField: 1000 }, frames16),
      exitCode: 65,
      code: 'E_WAV_TRUNCATED',
      message: /truncated WAV file: the data chunk declares 1000 bytes but only 400 follow/,
    },
    { name: 'zero-frames.wav', bytes: buildWav(pcm16, new Uint8Array(0)), exitCode: 65, code: 'E_EMPTY_AUDIO', message: /contains no audio \(0 frames\)/ },
    { name: 'less-than-a-frame.wav', bytes: buildWav(pcm16, new Uint8Array(3)), exitCode: 65, code: 'E_EMPTY_AUDIO', message: /contains no audio \(0 frames\)/ },
    { name: 'odd-block-align.wav', bytes: buildWav({ ...pcm16, blockAlign: 3 }, frames16), exitCode: 65, message: /invalid block align 3 \(expected 2 channels × 2 bytes = 4\)/ },
    { name: 'ima-adpcm.wav', bytes: buildWav({ formatTag: 0x11, channels: 1, sampleRate: 22050, bits: 4, blockAlign: 256 }, patternBytes(4, 512)), exitCode: 65, code: 'E_WAV_CODEC', message: /compressed WAV \(IMA ADPCM \(0x0011\)\) is not supported natively/ },
    { name: 'ms-adpcm.wav', bytes: buildWav({ formatTag: 0x02, channels: 2, sampleRate: 22050, bits: 4, blockAlign: 512 }, patternBytes(5, 1024)), exitCode: 65, code: 'E_WAV_CODEC', message: /Microsoft ADPCM \(0x0002\)/ },
    { name: 'mulaw.wav', bytes: buildWav({ formatTag: 0x07, channels: 1, sampleRate: 8000, bits: 8 }, patternBytes(6, 100)), exitCode: 65, code: 'E_WAV_CODEC', message: /µ-law \(0x0007\)/ },
    { name: 'unknown-codec.wav', bytes: buildWav({ formatTag: 0x1234, channels: 1, sampleRate: 8000, bits: 8 }, patternBytes(7, 100)), exitCode: 65, code: 'E_WAV_CODEC', message: /compressed WAV \(format 0x1234\)/ },
    {
      name: 'extensible-adpcm.wav',
      bytes: buildWav({ formatTag: 0xfffe, subFormat: 0x11, channels: 1, sampleRate: 22050, bits: 4, blockAlign: 256 }, patternBytes(8, 512)),
      exitCode: 65,
      code: 'E_WAV_CODEC',
      message: /IMA ADPCM \(0x0011\)/,
    },
    { name: 'zero-channels.wav', bytes: buildWav({ ...pcm16, channels: 0, blockAlign: 0 }, frames16), exitCode: 65, message: /invalid channel count 0/ },
    { name: 'rate-zero.wav', bytes: buildWav({ ...pcm16, sampleRate: 0 }, frames16), exitCode: 65, message: /unsupported sample rate 0 Hz/ },
    { name: 'rate-too-high.wav', bytes: buildWav({ ...pcm16, sampleRate: 2_000_000 }, frames16), exitCode: 65, message: /unsupported sample rate 2000000 Hz \(1000–768000 Hz supported\)/ },
    { name: 'pcm-12-bit.wav', bytes: buildWav({ ...pcm16, bits: 12, blockAlign: 4 }, frames16), exitCode: 65, message: /unsupported PCM bit depth 12 \(supported: 8, 16, 24, 32\)/ },
    { name: 'float-16-bit.wav', bytes: buildWav({ ...pcm16, formatTag: 3, bits: 16 }, frames16), exitCode: 65, message: /unsupported float bit depth 16 \(supported: 32, 64\)/ },
    {
      name: 'huge-chunk-before-fmt.wav',
      // A chunk claiming ~4 GiB must end the walk at end of file, not hang or allocate.
      bytes: (() => {
        const b = buildWav({ ...pcm16, extraChunks: [{ id: 'LIST', body: new Uint8Array(4) }] }, frames16);
        b.writeUInt32LE(0xfffffff0, 16);
        return b;
      })(),
      exitCode: 65,
      message: /truncated WAV header \(no fmt chunk\)/,
    },
    { name: 'garbage.wav', bytes: patternBytes(9, 1000), exitCode: 65, message: /not a WAV file/ },
  ];
}
