import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError, IntegrityError } from '../../proto/errors.js';
import type { ShardResult, ShardTask } from '../../proto/shard.js';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';

const MANIFEST = 'run.json';

/** The identity of a run: what would make a stored shard result wrong if it changed. */
export function runFingerprint(description: unknown, tasks: readonly ShardTask[]): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(description));
  for (const t of tasks) {
    const i = t.input;
    const shape =
      i.kind === 'model'
        ? i
        : i.kind === 'matrix'
          ? { parts: i.parts.map((p) => [p.tensor, p.file, p.dataStart, p.dtype, p.rows, p.transposed]), cols: [i.colStart, i.colEnd] }
          : { nodes: i.offsets.length - 1, edges: i.offsets[i.offsets.length - 1], stride: i.stride };
    h.update(JSON.stringify({ id: t.id, measure: t.measure, params: t.params, shape }));
    // Edge-list shards: the weights themselves, so a changed input file is noticed.
    if (i.kind === 'groups') h.update(new Uint8Array(i.weights.buffer, i.weights.byteOffset, i.weights.byteLength));
  }
  return h.digest('hex');
}

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function typed<T>(text: string, Ctor: { new (b: ArrayBuffer): T }): T {
  const buf = Buffer.from(text, 'base64');
  return new Ctor(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function plain(r: ShardResult): object {
  if (r.measure === 'mfa') return { ...r, present: b64(r.present), sums: b64(r.sums) };
  if (r.measure === 'nfd') return { ...r, values: b64(r.values) };
  return { ...r, samples: r.samples.map((s) => ({ ...s, partials: s.partials.map(plain) })) };
}

function typedResult(o: any): ShardResult {
  // Journals written before results named their backend hold f64 results: there was no other.
  o.backend ??= 'f64';
  if (o.measure === 'mfa') return { ...o, present: typed(o.present, Int32Array), sums: typed(o.sums, Float64Array) };
  if (o.measure === 'nfd') return { ...o, values: typed(o.values, Float64Array) };
  return { ...o, samples: o.samples.map((s: any) => ({ ...s, partials: s.partials.map(typedResult) })) };
}

const encode = (r: ShardResult) => JSON.stringify(plain(r));
const decode = (text: string) => typedResult(JSON.parse(text));

/**
 * Finished shards of a run, one file each under DIR/shards as they arrive, so a killed run
 * loses only the shards in flight and `--resume DIR` recomputes nothing that finished.
 */
export class RunJournal {
  private constructor(
    private readonly dir: string,
    private readonly done: Map<number, ShardResult>,
    readonly resumed: number,
  ) {}

  /** Starts a fresh journal (clearing an old one) or, with `resume`, loads one of the same run. */
  static async open(outDir: string, fingerprint: string, resume: boolean): Promise<RunJournal> {
    const dir = join(outDir, 'shards');
    const done = new Map<number, ShardResult>();
    if (resume) {
      let manifest: { fingerprint?: string };
      try {
        manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8'));
      } catch {
        throw new InputError(`${outDir}: no run to resume here (no shards/${MANIFEST}); start it with --out ${outDir}`);
      }
      if (manifest.fingerprint !== fingerprint) {
        throw new IntegrityError(`${outDir}: --resume found a run of another model, input or parameters; start a new run with --out`);
      }
      for (const f of await readdir(dir)) {
        if (!/^shard-\d+\.json$/.test(f)) continue;
        const r = decode(await readFile(join(dir, f), 'utf8'));
        done.set(r.id, r);
      }
    } else {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(join(dir, MANIFEST), JSON.stringify({ fingerprint, created: new Date().toISOString() }) + '\n');
    }
    return new RunJournal(dir, done, done.size);
  }

  /** Shards held, resumed ones included. */
  get kept(): number {
    return this.done.size;
  }

  /** The run's output directory, as `--resume` takes it. */
  get outDir(): string {
    return dirname(this.dir);
  }

  get(id: number): ShardResult | undefined {
    return this.done.get(id);
  }

  async save(r: ShardResult): Promise<void> {
    if (this.done.has(r.id)) return;
    this.done.set(r.id, r);
    await writeFileAtomic(join(this.dir, `shard-${r.id}.json`), encode(r));
  }
}
