/**
 * Tiny ONNX models with the exact I/O contracts of the separation models (model-io.md §1.3, §2.1) and a
 * known behaviour (per-stem gains), built with GraphBuilder, so that expected stems can be computed
 * independently in the tests.
 */
import { writeFileSync } from 'node:fs';
import { GraphBuilder, attr } from '../../src/onnx/builder.js';

const L = 343980;
const F = 2048;
const T = 336;

/**
 * HTDemucs export contract A (sevagh/demucs.onnx): `input` [B,2,L] and a tracer-named spectrogram input
 * [B,4,2048,336] → `output` [B,S,4,2048,336] and a tracer-named waveform [B,S,2,L].
 * Behaviour: out_spec[s] = specGain[s]·spec, out_wave[s] = waveGain[s]·audio.
 */
export function htdemucsContractA(path: string, specGain: readonly number[], waveGain: readonly number[], batch: number | string = 1): void {
  const S = specGain.length;
  const g = new GraphBuilder('htdemucs_a');
  g.input('input', 'float32', [batch, 2, L]);
  g.input('x.1', 'float32', [batch, 4, F, T]);
  const axes = g.constant(new BigInt64Array([1n]), [1]);
  const us = g.op('Unsqueeze', ['x.1', axes]);
  g.op('Mul', [us, g.constant(Float32Array.from(specGain), [1, S, 1, 1, 1])], {}, 'output');
  const ua = g.op('Unsqueeze', ['input', axes]);
  g.op('Mul', [ua, g.constant(Float32Array.from(waveGain), [1, S, 1, 1])], {}, 'add_67');
  g.output('output', 'float32', [batch, S, 4, F, T]);
  g.output('add_67', 'float32', [batch, S, 2, L]);
  writeFileSync(path, g.build());
}

/**
 * HTDemucs export contract B (unblend): `spec_real`/`spec_imag` [B,2,2048,336] + `audio` [B,2,L] →
 * `out_spec_real`/`out_spec_imag` [B,S,2,2048,336] + `out_wave` [B,S,2,L], `sources` in metadata_props.
 * Behaviour as contract A.
 */
export function htdemucsContractB(path: string, sources: readonly string[], specGain: readonly number[], waveGain: readonly number[]): void {
  const S = sources.length;
  const g = new GraphBuilder('htdemucs_b');
  g.input('spec_real', 'float32', ['B', 2, F, T]);
  g.input('spec_imag', 'float32', ['B', 2, F, T]);
  g.input('audio', 'float32', ['B', 2, L]);
  const axes = g.constant(new BigInt64Array([1n]), [1]);
  const G = g.constant(Float32Array.from(specGain), [1, S, 1, 1, 1]);
  g.op('Mul', [g.op('Unsqueeze', ['spec_real', axes]), G], {}, 'out_spec_real');
  g.op('Mul', [g.op('Unsqueeze', ['spec_imag', axes]), G], {}, 'out_spec_imag');
  g.op('Mul', [g.op('Unsqueeze', ['audio', axes]), g.constant(Float32Array.from(waveGain), [1, S, 1, 1])], {}, 'out_wave');
  g.output('out_spec_real', 'float32', ['B', S, 2, F, T]);
  g.output('out_spec_imag', 'float32', ['B', S, 2, F, T]);
  g.output('out_wave', 'float32', ['B', S, 2, L]);
  g.meta('sources', JSON.stringify(sources)).meta('sample_rate', '44100').meta('audio_channels', '2').meta('precision', 'fp32');
  writeFileSync(path, g.build());
}

/**
 * MDX-Net contract: `input` [B,4,dimF,dimT] → `output` [B,4,dimF,dimT], output = gain·input + square·input².
 */
export function mdxModel(path: string, dimF: number, dimT: number, gain: number, square = 0): void {
  const g = new GraphBuilder('mdx');
  g.input('input', 'float32', ['batch', 4, dimF, dimT]);
  const m = g.op('Mul', ['input', g.constant(new Float32Array([gain]), [1])]);
  const sq = g.op('Mul', [g.op('Mul', ['input', 'input']), g.constant(new Float32Array([square]), [1])]);
  g.op('Add', [m, sq], {}, 'output');
  g.output('output', 'float32', ['batch', 4, dimF, dimT]);
  writeFileSync(path, g.build());
}

/** A UVR model-data sidecar beside an MDX-Net file. */
export function mdxSidecar(modelPath: string, entry: Record<string, unknown>): void {
  writeFileSync(modelPath.replace(/\.onnx$/, '.json'), JSON.stringify(entry));
}

/**
 * HTDemucs export contract D (StemSplit/demucs-onnx on Hugging Face): the whole network with its STFT/iSTFT inside
 * the graph, `mix` [1,2,L] → `stems` [1,S,2,L], no metadata. Behaviour, per stem s and channel c:
 *   stems[s][c][t] = gain[s]·mix[c][t] + square[s]·mix[c][t]² + segMean[s]·mean_t(mix[c])
 * The square term makes the result depend on the track-level scaling (σ does not cancel) and the segment mean on
 * exactly which samples (and how much zero padding) each 7.8 s segment holds, so the track pipeline is checkable.
 */
export function htdemucsContractD(path: string, gain: readonly number[], square: readonly number[], segMean: readonly number[], batch: number | string = 1): void {
  const S = gain.length;
  const g = new GraphBuilder('htdemucs_d');
  g.input('mix', 'float32', [batch, 2, L]);
  const axes = g.constant(new BigInt64Array([1n]), [1]);
  const per = (v: readonly number[]): string => g.constant(Float32Array.from(v), [1, S, 1, 1]);
  const x = g.op('Unsqueeze', ['mix', axes]); // [B,1,2,L]
  const lin = g.op('Mul', [x, per(gain)]);
  const sq = g.op('Mul', [g.op('Mul', [x, x]), per(square)]);
  const mean = g.op('ReduceMean', [x], { axes: attr.ints([3]), keepdims: attr.int(1) }); // [B,1,2,1]
  const mm = g.op('Mul', [mean, per(segMean)]);
  g.op('Add', [g.op('Add', [lin, sq]), mm], {}, 'stems');
  g.output('stems', 'float32', [batch, S, 2, L]);
  writeFileSync(path, g.build());
}
