import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  availablePrecisions,
  defaultModelForMode,
  getModel,
  listModels,
  modelFiles,
  packageModelsDir,
  resolveModelRef,
} from '../../src/models/registry.js';
import { UnavailableError, UsageError } from '../../src/errors.js';

describe('registry', () => {
  it('holds the required entries', () => {
    const ids = listModels().map((e) => e.id);
    for (const id of [
      'classic', 'gtcrn', 'dtln', 'kokoro', 'en_US-lessac-medium', 'en_US-amy-low', 'en_GB-alan-medium',
      'en_US-libritts_r-medium', 'UVR-MDX-NET-Inst_HQ_3', 'Kim_Vocal_2', 'UVR_MDXNET_KARA_2', 'UVR-MDX-NET-Voc_FT',
      'htdemucs', 'htdemucs_6s', 'htdemucs_ft',
    ]) expect(ids).toContain(id);
    expect(listModels({ task: 'tts' }).every((e) => e.task === 'tts')).toBe(true);
    expect(listModels({ task: 'tts' }).map((e) => e.id)).toContain('kokoro');
    expect(listModels({ task: 'separate' }).map((e) => e.id)).not.toContain('kokoro');
  });

  it('pins the GTCRN and DTLN checksums of the upstream commits', () => {
    expect(getModel('gtcrn').files).toEqual([
      expect.objectContaining({ name: 'gtcrn_simple.onnx', role: 'model', size: 535190, sha256: 'b4718df6228e7bdf1a8a435cf98f838636eb2fd331acabf86ba87c5192ebcb87' }),
    ]);
    expect(getModel('dtln').files.map((f) => [f.role, f.name, f.size])).toEqual([
      ['stage1', 'model_1.onnx', 1458237],
      ['stage2', 'model_2.onnx', 2510010],
    ]);
  });

  it('gives every downloadable file an https URL and every URL-less model an import hint', () => {
    for (const e of listModels()) {
      const files = [...e.files, ...Object.values(e.variants ?? {}).flatMap((v) => v.files)];
      if (e.embedded) continue;
      for (const f of files) {
        if (f.url) expect(f.url).toMatch(/^https:\/\//);
        else expect(e.importHint).toContain(`stemkit models import ${e.id}`);
      }
    }
    // HTDemucs: StemSplit's contract-D exports on Hugging Face; `auto` picks the fp16-weights files (fp32 compute).
    const hf = 'https://huggingface.co/StemSplitio';
    expect(getModel('htdemucs').files[0]!.url).toBe(`${hf}/htdemucs-onnx/resolve/main/htdemucs.onnx`);
    expect(getModel('htdemucs').variants?.fp16?.files[0]!.url).toBe(`${hf}/htdemucs-onnx/resolve/main/htdemucs_fp16weights.onnx`);
    expect(getModel('htdemucs_6s').variants?.fp16?.files[0]!.url).toBe(`${hf}/htdemucs-6s-onnx/resolve/main/htdemucs_6s_fp16weights.onnx`);
    expect(getModel('htdemucs_ft').files.map((f) => [f.role, f.url])).toEqual(
      ['drums', 'bass', 'other', 'vocals'].map((s, i) => [`sub${i}`, `${hf}/htdemucs-ft-${s}-onnx/resolve/main/htdemucs_ft_${s}.onnx`]),
    );
    expect(getModel('htdemucs_ft').variants?.fp16?.files.map((f) => f.name)).toEqual(['drums', 'bass', 'other', 'vocals'].map((s) => `htdemucs_ft_${s}_fp16weights.onnx`));
    for (const id of ['htdemucs', 'htdemucs_6s', 'htdemucs_ft']) expect(getModel(id).autoPrecision).toBe('fp16');
  });

  it('carries the MDX-Net parameters of model-io §2.2', () => {
    expect(getModel('Kim_Vocal_2').params).toMatchObject({ nFft: 7680, dimF: 3072, dimT: 256, hop: 1024, compensate: 1.009, primaryStem: 'vocals' });
    expect(getModel('UVR-MDX-NET-Inst_HQ_3').params).toMatchObject({ nFft: 6144, dimF: 3072, compensate: 1.022, primaryStem: 'instrumental' });
    expect(getModel('UVR_MDXNET_KARA_2').params).toMatchObject({ nFft: 5120, dimF: 2048, compensate: 1.065, isKaraoke: true });
    expect(getModel('UVR-MDX-NET-Voc_FT').params).toMatchObject({ nFft: 7680, dimF: 3072, compensate: 1.021 });
  });

  it('resolves aliases, case and precision suffixes', () => {
    expect(getModel('KIM_VOCAL_2').id).toBe('Kim_Vocal_2');
    expect(getModel('lessac').id).toBe('en_US-lessac-medium');
    expect(resolveModelRef('kokoro-int8')).toMatchObject({ entry: { id: 'kokoro' }, precision: 'int8' });
    expect(resolveModelRef('kokoro')).toMatchObject({ precision: undefined });
    expect(availablePrecisions(getModel('kokoro'))).toEqual(['fp32', 'fp16', 'int8']);
    expect(() => resolveModelRef('gtcrn-fp16')).toThrow(/no fp16 variant/);
  });

  it('merges variant files by role', () => {
    expect(modelFiles(getModel('kokoro'), 'fp16').map((f) => f.name)).toEqual(['voices-v1.0.bin', 'kokoro-v1.0.fp16.onnx']);
    expect(modelFiles(getModel('kokoro')).map((f) => f.name)).toEqual(['kokoro-v1.0.onnx', 'voices-v1.0.bin']);
    expect(() => modelFiles(getModel('gtcrn'), 'int8')).toThrow(UsageError);
  });

  it('rejects unknown ids with the valid list and a suggestion', () => {
    let err: unknown;
    try {
      getModel('htdemuc');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(64);
    expect((err as UsageError).message).toBe('unknown model "htdemuc"; did you mean "htdemucs", "htdemucs_6s" or "htdemucs_ft"?');
    expect((err as UsageError).hint).toContain('valid models: classic, htdemucs,');
  });

  it('picks default models per mode', () => {
    expect(defaultModelForMode(2)).toBe('classic');
    expect(defaultModelForMode(4, () => false)).toBe('classic');
    expect(defaultModelForMode(4, (id) => id === 'htdemucs')).toBe('htdemucs');
    expect(defaultModelForMode(2, (id) => id === 'htdemucs')).toBe('htdemucs');
    expect(defaultModelForMode(6)).toBe('htdemucs_6s');
    expect(() => defaultModelForMode(6, () => false)).toThrow(UnavailableError);
  });

  it('resolves the embedded classic model inside the package', () => {
    expect(packageModelsDir()).toBe(join(process.cwd(), 'models'));
    expect(existsSync(join(packageModelsDir(), 'registry.json'))).toBe(true);
  });
});
