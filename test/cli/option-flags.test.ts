import { describe, expect, it } from 'vitest';
import { UsageError, fromSystemError, type StemkitError } from '../../src/errors.js';
import { planOutputs } from '../../src/separate/separate.js';
import { validateFilenameTemplate } from '../../src/separate/paths.js';
import { cliHint, flagForOption, hintWithFlags, withFlags } from '../../src/cli/messages.js';
import { requireVoices } from '../../src/tts/engines.js';
import { resolveSpeaker } from '../../src/tts/piper.js';

function thrown(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error('expected a UsageError');
}

describe('library errors name options; the CLI shows flags', () => {
  it('flagForOption: kebab case, with the exceptions table', () => {
    expect(flagForOption('twoStems')).toBe('--two-stems');
    expect(flagForOption('batchSize')).toBe('--batch-size');
    expect(flagForOption('stems')).toBe('--stems');
    expect(flagForOption('channelMode')).toBe('--channels');
  });

  it('planOutputs speaks of twoStems and stems; withFlags turns exactly those words into flags', () => {
    const two = thrown(() => planOutputs(['vocals', 'drums'], { twoStems: 'bass' }));
    expect(two.message).toBe('twoStems bass: the model has no stem "bass"');
    expect(two.details).toEqual({ option: 'twoStems' });
    expect(withFlags(two.message, two.details)).toBe('--two-stems bass: the model has no stem "bass"');
    const stems = thrown(() => planOutputs(['vocals', 'drums'], { stems: ['stems'] }));
    // The option word is replaced; the same word as a value inside quotes stays.
    expect(withFlags(stems.message, stems.details)).toBe('--stems: unknown stem "stems"');
    expect(withFlags('no option here', undefined)).toBe('no option here');
  });

  it('filename template errors name filename (and outDir); the CLI shows --filename and -o', () => {
    const cases: Array<[string, string, string]> = [
      ['{track}/{nope}.{ext}', 'filename: unknown field {nope}', '--filename: unknown field {nope}'],
      ['{track}.{ext}', 'filename must contain {stem} (otherwise every stem gets the same name)', '--filename must contain {stem} (otherwise every stem gets the same name)'],
      ['/abs/{stem}.{ext}', 'filename must be relative to the output folder (outDir)', '--filename must be relative to the output folder (-o)'],
      ['../{stem}.{ext}', 'filename must not contain ".." (outputs stay inside the output folder)', '--filename must not contain ".." (outputs stay inside the output folder)'],
    ];
    for (const [template, library, cli] of cases) {
      const e = thrown(() => validateFilenameTemplate(template));
      expect(e.message).toBe(library);
      expect(e.message).not.toMatch(/--|-o\b/);
      expect(withFlags(e.message, e.details)).toBe(cli);
    }
  });

  it('a list of options maps each; timeoutSec and outDir have their own flags', () => {
    expect(withFlags('raise timeoutSec or change outDir', { option: ['timeoutSec', 'outDir'] })).toBe('raise --wait-timeout or change -o');
    expect(withFlags('remux ignored for a.wav: not a video file', { option: ['remux', 'clip'] })).toBe('--remux ignored for a.wav: not a video file');
    expect(withFlags('vocals: peak 1.20 was rescaled by -1.7 dB to avoid clipping (clip rescale)', { option: ['remux', 'clip'] })).toBe('vocals: peak 1.20 was rescaled by -1.7 dB to avoid clipping (--clip rescale)');
  });

  it('cliHint: the slot pool\'s busy hint becomes --no-wait; other hints go through withFlags', () => {
    expect(cliHint('E_BUSY', 'Retry later, or let stemkit wait for a free slot (wait: true).', { pool: 'heavy', used: 2, limit: 2 })).toBe('Retry later, or let stemkit wait for a free slot (drop --no-wait).');
    expect(cliHint('E_BUSY', 'wait for the other install', undefined)).toBe('wait for the other install');
    expect(cliHint('E_BUSY_TIMEOUT', 'Retry later, or raise timeoutSec.', { option: 'timeoutSec' })).toBe('Retry later, or raise --wait-timeout.');
  });

  it('hintOption: an option named only in the hint (the message uses the word plainly)', () => {
    const e = thrown(() => requireVoices({ model: 'k.onnx' }));
    expect(e.message).toBe('the Kokoro model k.onnx needs voices');
    expect(e.hint).toBe('Pass voices <voices-v1.0.bin | file.npz | folder of .bin files>.');
    expect(withFlags(e.message, e.details)).toBe('the Kokoro model k.onnx needs voices');
    expect(hintWithFlags(e.hint!, e.details)).toBe('Pass --voices <voices-v1.0.bin | file.npz | folder of .bin files>.');
    expect(cliHint(e.code, e.hint!, e.details)).toBe('Pass --voices <voices-v1.0.bin | file.npz | folder of .bin files>.');
  });

  it('nested options (mdx.nFft) map to their own flags, and the parent option does not touch them', () => {
    const details = { hintOption: ['mdx.nFft', 'mdx.dimF', 'mdx.dimT'] };
    expect(hintWithFlags('fix it, or pass the parameters with mdx.nFft/mdx.dimF/mdx.dimT', details)).toBe(
      'fix it, or pass the parameters with --mdx-n-fft/--mdx-dim-f/--mdx-dim-t',
    );
    expect(hintWithFlags('see mdx.nFft, or the mdx options', { hintOption: 'mdx' })).toBe('see mdx.nFft, or the --mdx-* options');
    // A dotted name matches only itself: `mdx.nFft` is not `mdxXnFft`.
    expect(hintWithFlags('mdxXnFft stays', details)).toBe('mdxXnFft stays');
    // An option word inside a dotted config key is not a flag.
    expect(hintWithFlags('turn it off (models.offline)', { hintOption: 'offline' })).toBe('turn it off (models.offline)');
    expect(hintWithFlags('use `device cpu`', { hintOption: 'device' })).toBe('use `--device cpu`');
  });

  it('Piper speakers and full disks: the library names speaker / outDir / format, the CLI shows the flags', () => {
    const e = thrown(() => resolveSpeaker({ numSpeakers: 1, speakerIdMap: {} }, 'amy', false));
    expect(e.message).toBe('this Piper voice is single-speaker; speaker "amy" does not apply');
    expect(withFlags(e.message, e.details)).toBe('this Piper voice is single-speaker; --speaker "amy" does not apply');
    expect(cliHint(e.code, e.hint!, e.details)).toBe('Drop --speaker, or pick a multi-speaker voice.');
    const sys = (code: string): StemkitError =>
      fromSystemError(Object.assign(new Error(code), { code, syscall: 'write', path: '/o/x.wav' })) as StemkitError;
    expect(sys('ENOSPC').hint).toBe('free some space or write to another disk (outDir); nothing incomplete was left under a final name');
    expect(cliHint('E_DISK_FULL', sys('ENOSPC').hint!, sys('ENOSPC').details)).toBe(
      'free some space or write to another disk (-o); nothing incomplete was left under a final name',
    );
    expect(cliHint('E_DISK_FULL', sys('EFBIG').hint!, sys('EFBIG').details)).toBe('write to another file system or a compressed output (--format flac)');
    expect(cliHint('E_OUTPUT', sys('EROFS').hint!, sys('EROFS').details)).toBe('write to another folder (-o)');
  });
});
