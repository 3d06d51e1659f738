import { InputError } from '../../proto/errors.js';
import { MAX_LAYERS } from '../../proto/limits.js';
import type { TensorInfo } from '../io/safetensors.js';

/**
 * How a checkpoint becomes a Neuron Interaction Network. Every supported architecture is
 * the same chain per block — input → attention projections → (pass-through) → attention
 * output → MLP input → (pass-through, gated MLPs) → MLP output → next block — so one
 * description drives sampling, edge emission and full-NIN sharding alike.
 */

/** A stored tensor giving `rows` rows of a logical W [out, in]. */
export interface PartRef {
  tensor: string;
  rows: number;
  /** Conv1D weights (GPT-2) are stored [in, out]. */
  transposed: boolean;
}

/** A weight matrix W [out, in] as a vertical stack of stored tensors. */
export interface NinMatrix {
  name: string;
  inputs: number;
  outputs: number;
  parts: PartRef[];
}

/** The fixed, weight-free wiring between fused projections and what consumes them. */
export interface PassThrough {
  name: string;
  inputs: number;
  outputs: number;
  value: (i: number, j: number) => number;
}

/** One step of the chain: which sample sets feed it (X) and which it feeds (Y). */
export type Stage =
  | { kind: 'matrix'; matrix: NinMatrix; x: string; y: string }
  | { kind: 'pass'; pass: PassThrough; x: string; y: string };

/** A draw of `count` distinct indices in [0, n), in draw order. */
export interface Draw {
  name: string;
  n: number;
  count: number;
}
/** A composite set: the listed sets, each shifted by its offset, concatenated. */
export interface Derived {
  name: string;
  from: Array<{ set: string; offset: number }>;
}

export interface BlockPlan {
  stages: Stage[];
  draws: Draw[];
  derived: Derived[];
}

export interface Layout {
  /** Layout name reported with every result. */
  name: string;
  architecture: string;
  hidden: number;
  blocks: BlockPlan[];
  /** Drawn after the last block: the last MLP's output sample. */
  final: Draw;
  matrices: NinMatrix[];
}

export const SUPPORTED_ARCHITECTURES = [
  'GPTNeoXForCausalLM (gpt-neox)',
  'LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (llama)',
  'GPT2LMHeadModel, GPT2Model (gpt2)',
  'BertModel, BertForMaskedLM (bert)',
];

interface Shape {
  hidden: number;
  qDim: number;
  kvDim: number;
  intermediate: number;
  gated: boolean;
  /** k/v rows sampled at the query positions (NeoX, GPT-2 and any layout without GQA). */
  kvFollowsQuery: boolean;
}

interface Names {
  attnIn: PartRef[];
  attnOut: PartRef;
  mlpIn: PartRef[];
  mlpOut: PartRef;
}

function blockPlan(b: number, s: Shape, names: Names, k: number): BlockPlan {
  const { hidden: H, qDim, kvDim, intermediate: I } = s;
  const attnIn: NinMatrix = { name: `block${b}.attn_in`, inputs: H, outputs: qDim + 2 * kvDim, parts: names.attnIn };
  const attnOut: NinMatrix = { name: `block${b}.attn_out`, inputs: qDim, outputs: H, parts: [names.attnOut] };
  const mlpIn: NinMatrix = { name: `block${b}.mlp_in`, inputs: H, outputs: s.gated ? 2 * I : I, parts: names.mlpIn };
  const mlpOut: NinMatrix = { name: `block${b}.mlp_out`, inputs: I, outputs: H, parts: [names.mlpOut] };
  const attnPass: PassThrough = {
    name: `block${b}.attn_pass`,
    inputs: qDim + 2 * kvDim,
    outputs: qDim,
    // Reference quirk kept: queries map one-to-one, every key and value neuron to all outputs.
    value: (i, j) => (i < qDim ? (i === j ? 1 : 0) : 1),
  };
  const draws: Draw[] = [
    { name: 'nums1', n: H, count: k },
    { name: 't', n: qDim, count: k },
  ];
  // Without grouped-query attention k and v are sampled at the query positions, exactly as
  // the reference does for GPT-NeoX; with it they get their own draw `u`.
  const kv = s.kvFollowsQuery ? 't' : 'u';
  if (!s.kvFollowsQuery) draws.push({ name: 'u', n: kvDim, count: k });
  draws.push({ name: 'nums4', n: H, count: k });
  const derived: Derived[] = [
    { name: 'nums2', from: [{ set: 't', offset: 0 }, { set: kv, offset: qDim }, { set: kv, offset: qDim + kvDim }] },
    { name: 'nums3', from: [{ set: 't', offset: 0 }] },
  ];
  const stages: Stage[] = [{ kind: 'matrix', matrix: attnIn, x: 'nums1', y: 'nums2' }];
  stages.push({ kind: 'pass', pass: attnPass, x: 'nums2', y: 'nums3' });
  stages.push({ kind: 'matrix', matrix: attnOut, x: 'nums3', y: 'nums4' });
  if (s.gated) {
    draws.push({ name: 'mlp', n: I, count: 2 * k });
    derived.push({ name: 'nums5', from: [{ set: 'mlp', offset: 0 }, { set: 'mlp', offset: I }] });
    const gatePass: PassThrough = { name: `block${b}.mlp_pass`, inputs: 2 * I, outputs: I, value: (i, j) => (i % I === j ? 1 : 0) };
    stages.push({ kind: 'matrix', matrix: mlpIn, x: 'nums4', y: 'nums5' });
    stages.push({ kind: 'pass', pass: gatePass, x: 'nums5', y: 'mlp' });
    stages.push({ kind: 'matrix', matrix: mlpOut, x: 'mlp', y: 'next' });
  } else {
    draws.push({ name: 'nums5', n: I, count: 2 * k });
    stages.push({ kind: 'matrix', matrix: mlpIn, x: 'nums4', y: 'nums5' });
    stages.push({ kind: 'matrix', matrix: mlpOut, x: 'nums5', y: 'next' });
  }
  return { stages, draws, derived };
}

function num(config: Record<string, unknown>, key: string, where: string): number {
  const v = config[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new InputError(`${where}: config.json has no valid "${key}" (a positive integer is needed by the layout)`);
  }
  return v;
}

type Family = 'gpt-neox' | 'llama' | 'gpt2' | 'bert';

const BY_ARCH: Record<string, Family> = {
  GPTNeoXForCausalLM: 'gpt-neox',
  GPTNeoXModel: 'gpt-neox',
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen2ForCausalLM: 'llama',
  GPT2LMHeadModel: 'gpt2',
  GPT2Model: 'gpt2',
  BertModel: 'bert',
  BertForMaskedLM: 'bert',
};
const BY_TYPE: Record<string, Family> = { gpt_neox: 'gpt-neox', llama: 'llama', mistral: 'llama', qwen2: 'llama', gpt2: 'gpt2', bert: 'bert' };

/** The tensor-name prefix of block b, trying the names transformers uses with and without a head. */
function prefixFor(tensors: Map<string, TensorInfo>, candidates: string[], probe: string): string {
  return candidates.find((p) => tensors.has(p.replace('{b}', '0') + probe)) ?? candidates[0];
}

/**
 * Builds the layout of a checkpoint from its config.json and tensor table, checking every
 * tensor it needs exists with the shape the config implies.
 */
export function layoutFor(where: string, config: Record<string, unknown>, tensors: Map<string, TensorInfo>, k: number): Layout {
  const archs = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : [];
  const modelType = typeof config.model_type === 'string' ? config.model_type : '';
  const family = archs.map((a) => BY_ARCH[a]).find(Boolean) ?? BY_TYPE[modelType];
  const architecture = archs[0] ?? modelType;
  if (!family) {
    throw new InputError(
      `${where}: unsupported architecture ${architecture || '(config.json names none)'}${modelType ? ` (model_type ${modelType})` : ''}; supported: ${SUPPORTED_ARCHITECTURES.join('; ')}`,
    );
  }
  const H = num(config, family === 'gpt2' ? 'n_embd' : 'hidden_size', where);
  const L = num(config, family === 'gpt2' ? 'n_layer' : 'num_hidden_layers', where);
  const nHeads = num(config, family === 'gpt2' ? 'n_head' : 'num_attention_heads', where);
  const part = (tensor: string, rows: number, transposed = false): PartRef => ({ tensor, rows, transposed });
  let shape: Shape;
  let names: (b: number) => Names;
  if (family === 'gpt-neox') {
    const I = typeof config.intermediate_size === 'number' ? config.intermediate_size : 4 * H;
    shape = { hidden: H, qDim: H, kvDim: H, intermediate: I, gated: false, kvFollowsQuery: true };
    const p = prefixFor(tensors, ['gpt_neox.layers.{b}.', 'layers.{b}.'], 'attention.dense.weight');
    names = (b) => {
      const at = p.replace('{b}', String(b));
      return {
        attnIn: [part(`${at}attention.query_key_value.weight`, 3 * H)],
        attnOut: part(`${at}attention.dense.weight`, H),
        mlpIn: [part(`${at}mlp.dense_h_to_4h.weight`, I)],
        mlpOut: part(`${at}mlp.dense_4h_to_h.weight`, H),
      };
    };
  } else if (family === 'gpt2') {
    const I = typeof config.n_inner === 'number' ? config.n_inner : 4 * H;
    shape = { hidden: H, qDim: H, kvDim: H, intermediate: I, gated: false, kvFollowsQuery: true };
    const p = prefixFor(tensors, ['transformer.h.{b}.', 'h.{b}.'], 'attn.c_attn.weight');
    names = (b) => {
      const at = p.replace('{b}', String(b));
      return {
        attnIn: [part(`${at}attn.c_attn.weight`, 3 * H, true)],
        attnOut: part(`${at}attn.c_proj.weight`, H, true),
        mlpIn: [part(`${at}mlp.c_fc.weight`, I, true)],
        mlpOut: part(`${at}mlp.c_proj.weight`, H, true),
      };
    };
  } else if (family === 'llama') {
    const I = num(config, 'intermediate_size', where);
    const headDim = typeof config.head_dim === 'number' ? config.head_dim : H / nHeads;
    const nKv = typeof config.num_key_value_heads === 'number' ? config.num_key_value_heads : nHeads;
    const qDim = nHeads * headDim;
    const kvDim = nKv * headDim;
    shape = { hidden: H, qDim, kvDim, intermediate: I, gated: true, kvFollowsQuery: kvDim === qDim };
    const p = prefixFor(tensors, ['model.layers.{b}.', 'layers.{b}.'], 'self_attn.o_proj.weight');
    names = (b) => {
      const at = p.replace('{b}', String(b));
      return {
        attnIn: [part(`${at}self_attn.q_proj.weight`, qDim), part(`${at}self_attn.k_proj.weight`, kvDim), part(`${at}self_attn.v_proj.weight`, kvDim)],
        attnOut: part(`${at}self_attn.o_proj.weight`, H),
        mlpIn: [part(`${at}mlp.gate_proj.weight`, I), part(`${at}mlp.up_proj.weight`, I)],
        mlpOut: part(`${at}mlp.down_proj.weight`, H),
      };
    };
  } else {
    const I = num(config, 'intermediate_size', where);
    shape = { hidden: H, qDim: H, kvDim: H, intermediate: I, gated: false, kvFollowsQuery: true };
    const p = prefixFor(tensors, ['encoder.layer.{b}.', 'bert.encoder.layer.{b}.'], 'attention.output.dense.weight');
    names = (b) => {
      const at = p.replace('{b}', String(b));
      return {
        attnIn: [part(`${at}attention.self.query.weight`, H), part(`${at}attention.self.key.weight`, H), part(`${at}attention.self.value.weight`, H)],
        attnOut: part(`${at}attention.output.dense.weight`, H),
        mlpIn: [part(`${at}intermediate.dense.weight`, I)],
        mlpOut: part(`${at}output.dense.weight`, H),
      };
    };
  }
  checkBlockCount(where, family === 'gpt2' ? 'n_layer' : 'num_hidden_layers', L, (b) => names(b).attnOut.tensor, tensors);
  const blocks: BlockPlan[] = [];
  const matrices: NinMatrix[] = [];
  for (let b = 0; b < L; b++) {
    const plan = blockPlan(b, shape, names(b), k);
    for (const st of plan.stages) if (st.kind === 'matrix') matrices.push(st.matrix);
    blocks.push(plan);
  }
  for (const m of matrices) checkMatrix(where, m, tensors, config);
  return { name: family, architecture, hidden: H, blocks, final: { name: 'nums6', n: H, count: k }, matrices };
}

/**
 * The config's block count against the tensors that exist, before any block is planned:
 * `num_hidden_layers: 1e7` (or 1e300) used to plan ten million blocks — gigabytes, then a
 * heap overflow — before the first missing tensor was noticed.
 */
function checkBlockCount(where: string, key: string, L: number, probe: (b: number) => string, tensors: Map<string, TensorInfo>): void {
  if (L > MAX_LAYERS) throw new InputError(`${where}: config.json says ${key} = ${L}; at most ${MAX_LAYERS} blocks are supported`);
  if (tensors.has(probe(L - 1))) return;
  // Blocks are numbered 0, 1, ...: count those present (fewer than L, since block L-1 is not).
  let present = 0;
  while (tensors.has(probe(present))) present++;
  throw new InputError(`${where}: config.json says ${key} = ${L}, but the checkpoint holds ${present} block${present === 1 ? '' : 's'} (no tensor ${probe(present)}); the config does not match the weights`);
}

function checkMatrix(where: string, m: NinMatrix, tensors: Map<string, TensorInfo>, config: Record<string, unknown>): void {
  for (const p of m.parts) {
    const t = tensors.get(p.tensor);
    if (!t) throw new InputError(`${where}: missing tensor ${p.tensor} (needed by the layout for ${String(config.architectures ?? config.model_type)})`);
    const expected = p.transposed ? [m.inputs, p.rows] : [p.rows, m.inputs];
    if (t.shape.length !== 2 || t.shape[0] !== expected[0] || t.shape[1] !== expected[1]) {
      throw new InputError(
        `${where}: tensor ${p.tensor} has shape [${t.shape.join(', ')}] but config.json implies [${expected.join(', ')}]; the config does not match the weights`,
      );
    }
  }
}
