/**
 * The separation dispatch table: one row per model architecture. A new architecture is one adapter file
 * (a factory returning a StemModel) plus one row here; the registry's `adapter` field, or the contract
 * detected in an unregistered .onnx file, picks the row.
 */
import { DataError } from '../errors.js';
import type { ModelSession, SessionOptions } from '../runtime/onnx.js';
import { createHtdemucsModel } from './htdemucs.js';
import { createMdxModel, resolveMdxParams, type MdxOverrides } from './mdxnet.js';
import { createDtlnModel, createGtcrnModel } from './speech.js';
import { withSpeechLanes } from './speech-lanes.js';
import type { StemModel } from './types.js';

/** What an adapter gets: the model's files, its registry parameters and the run's options. */
export interface AdapterInput {
  id: string;
  /** Every file, in registry order (one file for an unregistered .onnx). */
  files: readonly string[];
  /** The file of a role (`model`, `stage1`, …). @throws DataError (65) when the model has none. */
  file(role: string): string;
  /** Registry parameters; undefined for an unregistered file (then only its own metadata and overrides count). */
  params: Record<string, unknown> | undefined;
  /** Bags (htdemucs_ft): the stem names of the sources, and the stems the written outputs need. */
  sources?: string[];
  onlyStems?: string[];
  denoise: boolean;
  mdx: MdxOverrides | undefined;
  session: SessionOptions;
  createSession(path: string, opts: SessionOptions): Promise<ModelSession>;
}

export type SeparationAdapter = 'classic' | 'htdemucs' | 'mdxnet' | 'gtcrn' | 'dtln';

/** Architecture → model factory. */
export const SEPARATION_ADAPTERS: Readonly<Record<SeparationAdapter, (a: AdapterInput) => Promise<StemModel>>> = {
  async classic(a) {
    const { createClassicModel } = await import('./classic.js');
    return createClassicModel(a.file('model'), a.session);
  },
  async htdemucs(a) {
    const o: Parameters<typeof createHtdemucsModel>[0] = { id: a.id, files: a.files, session: a.session, createSession: a.createSession };
    if (Array.isArray(a.params?.['bagWeights'])) o.bagWeights = a.params['bagWeights'] as number[][];
    if (a.sources) o.sources = a.sources;
    if (a.onlyStems) o.onlyStems = a.onlyStems;
    return createHtdemucsModel(o);
  },
  async mdxnet(a) {
    const path = a.file('model');
    const opts: Parameters<typeof resolveMdxParams>[1] = {};
    if (a.params) opts.registry = a.params;
    if (a.mdx) opts.overrides = a.mdx;
    const params = await resolveMdxParams(path, opts);
    return createMdxModel({ id: a.id, path, params, denoise: a.denoise, session: a.session, createSession: a.createSession });
  },
  // A multi-channel file's extra channels go to worker threads when the budget allows (src/separate/speech-lanes.ts).
  gtcrn: async (a) => withSpeechLanes(await createGtcrnModel(a.file('model'), { id: a.id, session: a.session, createSession: a.createSession }), { kind: 'gtcrn', id: a.id, paths: [a.file('model')] }, a.session),
  dtln: async (a) =>
    withSpeechLanes(await createDtlnModel(a.file('stage1'), a.file('stage2'), { id: a.id, session: a.session, createSession: a.createSession }), { kind: 'dtln', id: a.id, paths: [a.file('stage1'), a.file('stage2')] }, a.session),
};

export function isSeparationAdapter(name: string): name is SeparationAdapter {
  return Object.hasOwn(SEPARATION_ADAPTERS, name);
}

/** `file(role)` over a role → path map. */
export function roleLookup(id: string, paths: Record<string, string>): (role: string) => string {
  return (role) => {
    const p = paths[role];
    if (!p) throw new DataError(`model ${id} has no file for role "${role}"`, { code: 'E_MODEL_CONTRACT', hint: 'check the registry entry' });
    return p;
  };
}
