import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DType } from '../../worker/io/dtype.js';
import { float64ToBF16Bits, float64ToF16Bits, writeConfigJson, writeSafetensors } from '../../worker/io/safetensors-writer.js';

/**
 * Synthetic GPT-NeoX checkpoints for the demo and the benchmarks: Gaussian initialisation
 * (std 0.02, as Pythia's) moved by `progress` in [0, 1] towards heavy-tailed weights with
 * heterogeneous per-neuron scales — the direction training moves real weights.
 */
export interface SyntheticNeox {
  hidden: number;
  blocks: number;
  vocab: number;
  dtype: DType;
  progress: number;
  seed: number;
}

/** mulberry32: small, fast and deterministic across platforms. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function matrix(rows: number, cols: number, p: SyntheticNeox, rand: () => number): Float64Array {
  const out = new Float64Array(rows * cols);
  // Per-input-neuron scale: log-normal, so trained columns differ in how many strong weights they have.
  const colScale = new Float64Array(cols);
  for (let c = 0; c < cols; c++) colScale[c] = Math.exp(0.8 * Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand()));
  for (let i = 0; i < out.length; i++) {
    const g = 0.02 * Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
    if (p.progress === 0) {
      out[i] = g;
      continue;
    }
    // Laplace noise with the column's scale: a heavier tail than the Gaussian start.
    const u = rand() - 0.5;
    const lap = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.012 * colScale[i % cols];
    out[i] = (1 - p.progress) * g + p.progress * lap;
  }
  return out;
}

function encode(data: Float64Array, dtype: DType): Float64Array | Float32Array | Uint16Array {
  if (dtype === 'F64') return data;
  if (dtype === 'F32') return Float32Array.from(data);
  const bits = new Uint16Array(data.length);
  const f = dtype === 'F16' ? float64ToF16Bits : float64ToBF16Bits;
  for (let i = 0; i < data.length; i++) bits[i] = f(data[i]);
  return bits;
}

export async function writeSyntheticNeox(dir: string, p: SyntheticNeox): Promise<void> {
  await mkdir(dir, { recursive: true });
  const rand = rng(p.seed);
  const H = p.hidden;
  const tensors: Array<{ name: string; dtype: DType; shape: number[]; data: Float64Array | Float32Array | Uint16Array }> = [];
  const add = (name: string, rows: number, cols: number) => tensors.push({ name, dtype: p.dtype, shape: [rows, cols], data: encode(matrix(rows, cols, p, rand), p.dtype) });
  add('gpt_neox.embed_in.weight', p.vocab, H);
  for (let b = 0; b < p.blocks; b++) {
    const at = `gpt_neox.layers.${b}.`;
    add(`${at}attention.query_key_value.weight`, 3 * H, H);
    add(`${at}attention.dense.weight`, H, H);
    add(`${at}mlp.dense_h_to_4h.weight`, 4 * H, H);
    add(`${at}mlp.dense_4h_to_h.weight`, H, 4 * H);
  }
  add('embed_out.weight', p.vocab, H);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeConfigJson(dir, {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    hidden_size: H,
    num_hidden_layers: p.blocks,
    num_attention_heads: Math.max(1, H / 64),
    intermediate_size: 4 * H,
    vocab_size: p.vocab,
    torch_dtype: { F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[p.dtype],
  });
}
