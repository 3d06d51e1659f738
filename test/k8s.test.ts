import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Command } from 'commander';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { workerCommand } from '../coordinator/cli/commands/worker.js';
import { repoRoot } from './helpers/shared.js';

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const hasKubectl = kubectl.status === 0;
const k8sTest = hasKubectl ? test : test.skip;
if (!hasKubectl) console.log('k8s tests skipped: kubectl (with its built-in kustomize) is not installed');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec: any };

function render(...path: string[]): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', join(repoRoot, 'k8s', ...path)], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj);
}

/** Worker flags as `--name=value` pairs, checked against the worker command's own options. */
function flagsOf(args: string[]): Map<string, string> {
  const cmd = new Command('worker');
  workerCommand.configure(cmd);
  const known = new Set(cmd.options.map((o) => o.long));
  const flags = new Map<string, string>();
  for (const a of args.slice(1)) {
    const [name, value] = a.split('=');
    if (!known.has(name)) throw new Error(`the manifest passes ${name}, which neuromfa worker does not have`);
    flags.set(name, value);
  }
  return flags;
}

for (const overlay of ['cpu', 'gpu', 'nats']) {
  k8sTest(`${overlay} overlay renders, and the worker's args, ports, probes and mounts agree with its CLI`, (t) => {
    const objs = render('overlays', overlay);
    const kinds = objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    t.true(kinds.includes('Deployment/neuromfa-worker'));
    t.true(kinds.includes('Service/neuromfa-worker'));
    t.true(kinds.includes('HorizontalPodAutoscaler/neuromfa-worker'));
    t.true(kinds.includes('PersistentVolumeClaim/neuromfa-models'));
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    t.is(c.args[0], 'worker');
    const flags = flagsOf(c.args);
    const grpcPort = Number(flags.get('--grpc')!.split(':')[1]);
    const port = (name: string) => c.ports.find((p: any) => p.name === name).containerPort;
    t.is(port('grpc'), grpcPort);
    t.is(c.readinessProbe.grpc.port, grpcPort);
    t.is(c.livenessProbe.grpc.port, grpcPort);
    t.is(port('metrics'), Number(flags.get('--metrics-port')));
    t.is(dep.spec.template.metadata.annotations['prometheus.io/port'], flags.get('--metrics-port'));
    t.is(c.volumeMounts[0].mountPath, flags.get('--model-root'));
    t.true(c.volumeMounts[0].readOnly);
    t.is(Number(flags.get('--threads')), Number(c.resources.limits.cpu), 'threads match the CPU limit');
    const pvc = objs.find((o) => o.kind === 'PersistentVolumeClaim')!;
    t.deepEqual(pvc.spec.accessModes, ['ReadOnlyMany']);
    const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'neuromfa-worker')!;
    t.is(svc.spec.clusterIP, 'None');
    const job = render('run').find((o) => o.kind === 'Job')!;
    t.is(job.spec.template.spec.containers[0].image, c.image, 'the run uses the workers\' image');
    const jobArgs: string[] = job.spec.template.spec.containers[0].args;
    t.is(jobArgs[0], 'analyze');
    t.true(jobArgs.some((a) => a.startsWith('--workers=dns:///neuromfa-worker.') && a.endsWith(`:${grpcPort}`)));
    if (overlay === 'gpu') {
      t.is(c.resources.limits['nvidia.com/gpu'], '1');
      t.truthy(pod.nodeSelector);
      t.true(pod.tolerations.some((x: any) => x.key === 'nvidia.com/gpu'));
      t.is(flags.get('--backend'), 'webgpu', 'GPU workers compute partition sums on WebGPU');
      t.true(c.env.some((e: any) => e.name === 'NVIDIA_DRIVER_CAPABILITIES' && e.value.split(',').includes('graphics')), 'Dawn needs the Vulkan ICD, mounted only with graphics');
    } else {
      t.is(flags.get('--backend'), undefined, 'CPU workers keep the default (auto)');
    }
    if (overlay === 'nats') {
      t.is(flags.get('--nats'), 'nats://nats:4222');
      const sts = objs.find((o) => o.kind === 'StatefulSet')!;
      t.is(sts.metadata.name, 'nats');
      const conf = objs.find((o) => o.kind === 'ConfigMap')!;
      t.regex((conf as any).data['nats.conf'], /jetstream/);
    }
  });
}

/** `kubernetes-models` subpath of an object's type: `apps/v1` + `Deployment`, core `v1` as is. */
const modelPath = (o: Obj) => `kubernetes-models/${o.apiVersion}/${o.kind}`;

/**
 * The objects' schema errors. kubernetes-models' validators (compiled from the Kubernetes
 * OpenAPI schemas) check types, required fields and formats but let unknown fields through,
 * as the API server's non-strict mode does; a misspelt field is the common manifest bug, so
 * unknown fields are found the way `kubectl --validate=strict` finds them — here by
 * TypeScript's excess-property check of each object against the model's interface.
 */
async function schemaErrors(objs: Obj[]): Promise<string[]> {
  const errors: string[] = [];
  for (const o of objs) {
    const mod = await import(modelPath(o)).catch(() => undefined);
    const Model = mod?.[o.kind];
    if (!Model) {
      errors.push(`${o.kind}/${o.metadata.name}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (err) {
      errors.push(`${o.kind}/${o.metadata.name}: ${(err as Error).message}`);
    }
  }
  const file = join(repoRoot, 'k8s-objects.virtual.ts');
  const source =
    objs.map((o, i) => `import type { I${o.kind} as T${i} } from '${modelPath(o)}';`).join('\n') +
    '\n' +
    objs.map((o, i) => `export const o${i}: T${i} = ${JSON.stringify(o, null, 1)};`).join('\n');
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true, types: [], skipLibCheck: true };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const owner = d.file?.fileName === file ? source.split('\n').slice(0, at + 1).reverse().find((l) => l.startsWith('export const o')) : undefined;
    const i = owner ? Number(/^export const o(\d+)/.exec(owner)![1]) : -1;
    const where = i >= 0 ? `${objs[i].kind}/${objs[i].metadata.name}` : (d.file?.fileName ?? 'schema check');
    errors.push(`${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  }
  return errors;
}

k8sTest('every object of every overlay and of the run Job validates against the Kubernetes schemas, with no unknown field', async (t) => {
  const objs = [...render('overlays', 'cpu'), ...render('overlays', 'gpu'), ...render('overlays', 'nats'), ...render('run')];
  t.deepEqual(await schemaErrors(objs), []);
});

k8sTest('the schema check catches a wrong type, a missing required field and a misspelt field', async (t) => {
  const dep = render('overlays', 'cpu').find((o) => o.kind === 'Deployment')!;
  const broken = (change: (d: any) => void) => {
    const d = structuredClone(dep);
    change(d);
    return d;
  };
  const one = async (o: Obj) => (await schemaErrors([o])).join('\n');
  t.regex(await one(broken((d) => (d.spec.template.spec.containers[0].ports[0].containerPort = '50051'))), /containerPort must be integer/);
  t.regex(await one(broken((d) => delete d.spec.selector)), /^Deployment\/neuromfa-worker: data\/spec must have required property selector$/m);
  t.regex(await one(broken((d) => (d.spec.template.spec.containers[0].imagePullPolcy = 'Always'))), /^Deployment\/neuromfa-worker: Object literal may only specify known properties, and '"imagePullPolcy"' does not exist in type 'IContainer'/);
});
