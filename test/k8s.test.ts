import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { analyzeCommand } from '../coordinator/cli/commands/analyze.js';
import type { CommandSpec } from '../coordinator/cli/commands/common.js';
import { emergenceCommand } from '../coordinator/cli/commands/emergence.js';
import { workerCommand } from '../coordinator/cli/commands/worker.js';
import { repoRoot } from './helpers/shared.js';

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const hasKubectl = kubectl.status === 0;
const k8sTest = hasKubectl ? test : test.skip;
if (!hasKubectl) console.log('k8s tests skipped: kubectl (with its built-in kustomize) is not installed');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec: any; data?: any };

function render(...path: string[]): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', join(repoRoot, 'k8s', ...path)], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj);
}

/** A command's `--name=value` flags (value undefined for a switch), each checked against that command's own options. */
function flagsOf(spec: CommandSpec, args: string[]): Map<string, string | undefined> {
  const cmd = new Command(spec.name);
  spec.configure(cmd);
  const known = new Set(cmd.options.map((o) => o.long));
  const flags = new Map<string, string | undefined>();
  for (const a of args.filter((x) => x.startsWith('-'))) {
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    if (!known.has(name)) throw new Error(`the manifest passes ${name}, which neuromfa ${spec.name} does not have`);
    flags.set(name, eq < 0 ? undefined : a.slice(eq + 1));
  }
  return flags;
}

for (const overlay of ['cpu', 'gpu', 'nats']) {
  k8sTest(`${overlay} overlay renders, and the worker's args, ports, probes and mounts agree with its CLI`, (t) => {
    const objs = render('overlays', overlay);
    const kinds = objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    t.true(kinds.includes('Deployment/neuromfa-worker'));
    t.true(kinds.includes('Service/neuromfa-worker'));
    // One autoscaler per Deployment: the CPU HPA for gRPC workers, KEDA's ScaledObject for NATS.
    t.is(kinds.includes('HorizontalPodAutoscaler/neuromfa-worker'), overlay !== 'nats');
    t.is(kinds.includes('ScaledObject/neuromfa-worker'), overlay === 'nats');
    t.true(kinds.includes('PersistentVolumeClaim/neuromfa-models'));
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    t.is(c.args[0], 'worker');
    const flags = flagsOf(workerCommand, c.args.slice(1));
    const grpcPort = Number(flags.get('--grpc')!.split(':')[1]);
    const port = (name: string) => c.ports.find((p: any) => p.name === name).containerPort;
    t.is(port('grpc'), grpcPort);
    t.is(c.readinessProbe.grpc.port, grpcPort);
    t.is(c.livenessProbe.grpc.port, grpcPort);
    t.is(port('metrics'), Number(flags.get('--metrics-port')));
    t.is(dep.spec.template.metadata.annotations['prometheus.io/port'], flags.get('--metrics-port'));
    const models = c.volumeMounts.find((m: any) => m.name === 'models');
    t.is(models.mountPath, flags.get('--model-root'));
    t.true(models.readOnly);
    t.is(Number(flags.get('--threads')), Number(c.resources.limits.cpu), 'threads match the CPU limit');
    const pvc = objs.find((o) => o.kind === 'PersistentVolumeClaim')!;
    t.deepEqual(pvc.spec.accessModes, ['ReadOnlyMany']);
    const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'neuromfa-worker')!;
    t.is(svc.spec.clusterIP, 'None');
    const job = render('run').find((o) => o.kind === 'Job')!;
    t.is(job.spec.template.spec.containers[0].image, c.image, 'the run uses the workers\' image');
    const jobArgs: string[] = job.spec.template.spec.containers[0].args;
    t.is(jobArgs[0], 'analyze');
    t.notThrows(() => flagsOf(analyzeCommand, jobArgs.slice(1)));
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
    t.is(flags.get('--nats'), overlay === 'nats' ? 'nats://nats:4222' : undefined);
  });
}

/** Models of API groups that are not Kubernetes' own: KEDA's CRDs (v2.10.1's schemas). */
const CRD_MODELS: Record<string, string> = { 'keda.sh': '@kubernetes-models/keda' };

/** Model module of an object's type: `kubernetes-models/apps/v1/Deployment`, core `v1` as is, CRDs from their package. */
const modelPath = (o: Obj) => `${CRD_MODELS[o.apiVersion.split('/')[0]] ?? 'kubernetes-models'}/${o.apiVersion}/${o.kind}`;

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

k8sTest('every object of every overlay and of the run Jobs validates against the Kubernetes and KEDA schemas, with no unknown field', async (t) => {
  const objs = [...render('overlays', 'cpu'), ...render('overlays', 'gpu'), ...render('overlays', 'nats'), ...render('run'), ...render('run', 'emergence'), hfTokenExample()];
  t.true(objs.some((o) => o.kind === 'ScaledObject'), 'the KEDA ScaledObject is among them');
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

/** The example Secret, kept out of every kustomization: a token is never committed. */
const hfTokenExample = (): Obj => parseAllDocuments(readFileSync(join(repoRoot, 'k8s', 'overlays', 'nats', 'hf-token-secret.example.yaml'), 'utf8'))[0].toJS() as Obj;

/** Bytes of a nats.conf size: `k`, `m`, `g` are powers of 1000, `kb`/`mb`/`gb` (and `ki`, `kib`...) of 1024, as nats-server reads them. */
function natsBytes(v: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(v.trim());
  const units: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
  for (const [i, u] of ['k', 'm', 'g', 't'].entries()) for (const s of [`${u}b`, `${u}i`, `${u}ib`]) units[s] = 1024 ** (i + 1);
  const unit = m ? units[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a nats.conf size: ${v}`);
  return Number(m[1]) * unit;
}

/** Bytes of a Kubernetes quantity with a binary or decimal suffix (`20Gi`, `500M`). */
function quantityBytes(v: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(v);
  if (!m) throw new Error(`not a storage quantity: ${v}`);
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? units[m[2]] : 1);
}

/** A top-level (or `jetstream { }`) setting of a nats.conf. */
function natsSetting(conf: string, key: string): string {
  const m = new RegExp(`^\\s*${key}\\s*[:=]\\s*(\\S+)\\s*$`, 'm').exec(conf);
  if (!m) throw new Error(`nats.conf sets no ${key}`);
  return m[1];
}

/** The durable consumer the NATS workers pull shards through, on the stream the coordinator publishes them to. */
const JETSTREAM = { stream: 'NEUROMFA_SHARDS', consumer: 'neuromfa-workers' };

/** The nats-jetstream scaler's metadata keys, as KEDA's documentation lists them (v2.8 and later). */
const KEDA_JETSTREAM_KEYS = ['natsServerMonitoringEndpoint', 'account', 'stream', 'consumer', 'lagThreshold', 'activationLagThreshold', 'useHttps'];

const secretRef = (c: any, name: string) => c.env.find((e: any) => e.name === name)?.valueFrom?.secretKeyRef;
const envValue = (c: any, name: string) => c.env.find((e: any) => e.name === name)?.value;

k8sTest('nats overlay: JetStream stores on its own volume, and KEDA scales the workers on the durable consumer, to zero when idle', (t) => {
  const objs = render('overlays', 'nats');
  const one = (kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name)!;
  const conf: string = one('ConfigMap', 'nats-config').data['nats.conf'];
  const sts = one('StatefulSet', 'nats');
  const server = sts.spec.template.spec.containers[0];

  // JetStream's store is the StatefulSet's claim, not the container's filesystem.
  t.regex(conf, /jetstream\s*\{/);
  const storeDir = natsSetting(conf, 'store_dir');
  const dataMount = server.volumeMounts.find((m: any) => storeDir.startsWith(`${m.mountPath}/`));
  t.is(dataMount?.name, 'data');
  t.false(sts.spec.template.spec.volumes.some((v: any) => v.name === 'data'), 'data comes from volumeClaimTemplates, not a pod volume');
  const claim = sts.spec.volumeClaimTemplates.find((c: any) => c.metadata.name === 'data');
  t.deepEqual(claim.spec.accessModes, ['ReadWriteOnce']);
  const volumeBytes = quantityBytes(claim.spec.resources.requests.storage);
  t.is(volumeBytes, 20 * 2 ** 30);
  const fileStore = natsBytes(natsSetting(conf, 'max_file_store'));
  t.true(fileStore < volumeBytes, `max_file_store (${fileStore} B) stays under the volume (${volumeBytes} B)`);
  t.true(natsBytes(natsSetting(conf, 'max_memory_store')) < quantityBytes(server.resources.limits.memory), 'the memory store fits the pod');
  t.is(natsBytes(natsSetting(conf, 'max_payload')), 8 * 2 ** 20, 'a shard result of a few MB is one JetStream message');

  // The monitoring port: in the config, on the container, and in the Service KEDA reads.
  const monitorPort = Number(natsSetting(conf, 'http_port'));
  t.is(server.ports.find((p: any) => p.name === 'monitor').containerPort, monitorPort);
  const svc = one('Service', 'nats');
  t.deepEqual(svc.spec.ports.find((p: any) => p.name === 'monitor'), { name: 'monitor', port: monitorPort, targetPort: 'monitor' });
  t.is(svc.spec.ports.find((p: any) => p.name === 'client').port, Number(natsSetting(conf, 'port')));

  // KEDA, and no HPA beside it.
  t.false(objs.some((o) => o.kind === 'HorizontalPodAutoscaler'));
  const so = one('ScaledObject', 'neuromfa-worker');
  const dep = one('Deployment', 'neuromfa-worker');
  t.is(so.apiVersion, 'keda.sh/v1alpha1');
  t.is(so.spec.scaleTargetRef.name, dep.metadata.name);
  t.is(so.spec.minReplicaCount, 0);
  t.is(so.spec.maxReplicaCount, 32);
  t.true(so.spec.cooldownPeriod > 0);
  t.is(dep.spec.replicas, undefined, 'KEDA owns the replica count: an apply must not reset it');
  t.is(so.spec.triggers.length, 1);
  const [trigger] = so.spec.triggers;
  t.is(trigger.type, 'nats-jetstream');
  t.deepEqual(Object.keys(trigger.metadata).filter((k) => !KEDA_JETSTREAM_KEYS.includes(k)), [], 'only metadata keys the scaler reads');
  t.like(trigger.metadata, { account: '$G', stream: JETSTREAM.stream, consumer: JETSTREAM.consumer, activationLagThreshold: '0' });
  t.regex(trigger.metadata.natsServerMonitoringEndpoint, new RegExp(`^${svc.metadata.name}\\.[a-z0-9-]+\\.svc\\.cluster\\.local:${monitorPort}$`));
  const worker = dep.spec.template.spec.containers[0];
  t.is(trigger.metadata.lagThreshold, flagsOf(workerCommand, worker.args.slice(1)).get('--threads'), 'one pending shard per pool thread of each worker');
});

k8sTest('nats overlay: the worker reads HF_TOKEN from an optional Secret, caches the hub on an emptyDir, and no Secret is rendered', (t) => {
  const objs = render('overlays', 'nats');
  const pod = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec;
  const c = pod.containers[0];
  t.deepEqual(secretRef(c, 'HF_TOKEN'), { name: 'neuromfa-hf-token', key: 'token', optional: true });
  const cacheMount = c.volumeMounts.find((m: any) => m.mountPath === envValue(c, 'NEUROMFA_CACHE'));
  t.is(envValue(c, 'NEUROMFA_CACHE'), '/cache');
  t.false(cacheMount.readOnly ?? false);
  t.deepEqual(pod.volumes.find((v: any) => v.name === cacheMount.name), { name: cacheMount.name, emptyDir: { sizeLimit: '50Gi' } });
  t.false(objs.some((o) => o.kind === 'Secret'), 'a token is never part of the manifests');
  const example = hfTokenExample();
  t.is(example.kind, 'Secret');
  t.is(example.metadata.name, 'neuromfa-hf-token');
  t.deepEqual(Object.keys((example as any).stringData), ['token']);
  const kustomization = readFileSync(join(repoRoot, 'k8s', 'overlays', 'nats', 'kustomization.yaml'), 'utf8');
  t.false(kustomization.includes('hf-token-secret'), 'the example is not a resource of the overlay');
});

k8sTest('the emergence Job runs on the NATS workers, is retried when its pod dies, and its args agree with neuromfa emergence', (t) => {
  const objs = render('run', 'emergence');
  const job = objs.find((o) => o.kind === 'Job' && o.metadata.name === 'neuromfa-emergence')!;
  const pod = job.spec.template.spec;
  const c = pod.containers[0];
  const worker = render('overlays', 'nats').find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0];
  t.is(c.image, worker.image, 'the run uses the workers\' image');
  t.is(c.args[0], 'emergence');
  const flags = flagsOf(emergenceCommand, c.args.slice(1));
  t.deepEqual(c.args.slice(1).filter((a: string) => !a.startsWith('-')), ['hf://EleutherAI/pythia-1.4b']);
  t.is(flags.get('--revisions'), 'all');
  t.is(flags.get('--samples'), '0-9');
  t.is(flags.get('--nats'), flagsOf(workerCommand, worker.args.slice(1)).get('--nats'), 'the coordinator publishes where the workers pull');
  t.false(flags.has('--workers'));

  // A killed coordinator is started again (results live in JetStream); hopeless errors are not.
  t.true(job.spec.backoffLimit > 0);
  t.is(pod.restartPolicy, 'Never');
  const rules = job.spec.podFailurePolicy.rules;
  t.deepEqual(rules.find((r: any) => r.action === 'FailJob').onExitCodes, { containerName: c.name, operator: 'In', values: [2, 3, 4] });
  t.deepEqual(rules.find((r: any) => r.action === 'Ignore').onPodConditions, [{ type: 'DisruptionTarget', status: 'True' }]);

  // --out and the cache are on the runs claim, which outlives the pods.
  const runs = c.volumeMounts.find((m: any) => m.name === 'runs');
  t.true(flags.get('--out')!.startsWith(`${runs.mountPath}/`));
  t.true(envValue(c, 'NEUROMFA_CACHE').startsWith(`${runs.mountPath}/`));
  const claimName = pod.volumes.find((v: any) => v.name === 'runs').persistentVolumeClaim.claimName;
  const pvc = objs.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === claimName)!;
  t.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
  t.is(pod.securityContext.fsGroup, 1000, 'the image\'s node user can write the new volume');
  t.deepEqual(secretRef(c, 'HF_TOKEN'), secretRef(worker, 'HF_TOKEN'));

  // The analyze run is still its own kustomization.
  t.deepEqual(render('run').filter((o) => o.kind === 'Job').map((o) => o.metadata.name), ['neuromfa-analyze']);
});

k8sTest('the KEDA schema check catches a trigger without type, a replica count that is not an integer, and a misspelt field', async (t) => {
  const so = render('overlays', 'nats').find((o) => o.kind === 'ScaledObject')!;
  const broken = (change: (d: any) => void) => {
    const d = structuredClone(so);
    change(d);
    return d;
  };
  const one = async (o: Obj) => (await schemaErrors([o])).join('\n');
  t.is(await one(so), '');
  t.regex(await one(broken((d) => delete d.spec.triggers[0].type)), /^ScaledObject\/neuromfa-worker: data\/spec\/triggers\/0 must have required property type$/m);
  t.regex(await one(broken((d) => (d.spec.minReplicaCount = 'zero'))), /^ScaledObject\/neuromfa-worker: data\/spec\/minReplicaCount must be integer$/m);
  t.regex(await one(broken((d) => (d.spec.triggers[0].metadata.lagThreshold = 4))), /data\/spec\/triggers\/0\/metadata\/lagThreshold must be string/);
  t.regex(await one(broken((d) => (d.spec.minReplicas = 0))), /^ScaledObject\/neuromfa-worker: Object literal may only specify known properties, and '"minReplicas"' does not exist/m);
});
