import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import { workerCommand } from '../coordinator/cli/commands/worker.js';
import { repoRoot } from './helpers/shared.js';

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const hasKubectl = kubectl.status === 0;
const k8sTest = hasKubectl ? test : test.skip;
if (!hasKubectl) console.log('k8s tests skipped: kubectl (with its built-in kustomize) is not installed');

type Obj = { kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec: any };

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
