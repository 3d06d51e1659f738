import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { mfaOfGroups, nfdOfGroups } from '../coordinator/analysis/edge-analysis.js';
import { groupBySource } from '../worker/plan/edge-groups.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { readNpyEdges } from '../worker/io/npy.js';
import { conformanceDir, firstMismatch, readJson, within } from './helpers/shared.js';

const casesDir = join(conformanceDir, 'cases');
const cases = readdirSync(casesDir).sort();
const backend = new InProcessBackend();

test('the conformance set has its six cases', (t) => {
  t.deepEqual(cases, ['decimals-1', 'gaussian-init', 'half-even', 'heterogeneous', 'laplace-small', 'sparse-degrees']);
});

for (const name of cases) {
  test(`mfa matches the reference: ${name}`, async (t) => {
    const expected = readJson(join(casesDir, name, 'expected.json'));
    const groups = groupBySource(await readNpyEdges(join(casesDir, name, 'edges.npy')));
    const { spectrum: s } = await mfaOfGroups(groups, expected.params, backend, 3);
    t.is(s.nodesSelected, expected.nodesSelected);
    t.deepEqual(s.radii, expected.radii);
    t.deepEqual(s.q, expected.params.q);
    t.is(firstMismatch(s.tau, expected.tau), -1, 'tau');
    t.is(firstMismatch(s.alpha, expected.alpha), -1, 'alpha');
    t.is(firstMismatch(s.f, expected.f), -1, 'f');
    t.is(s.alpha0Index, expected.alpha0Index);
    t.true(within(s.alpha0, expected.alpha0), `alpha0 ${s.alpha0} vs ${expected.alpha0}`);
    t.true(within(s.width, expected.width), `width ${s.width} vs ${expected.width}`);
    t.is(s.fit.r2.length, s.q.length);
    t.true(s.fit.r2.every((r) => r >= 0 && r <= 1));
  });

  test(`nfd matches the reference: ${name}`, async (t) => {
    const expected = readJson(join(casesDir, name, 'expected.json'));
    const groups = groupBySource(await readNpyEdges(join(casesDir, name, 'edges.npy')));
    const { values, nodes } = await nfdOfGroups(groups, { threshold: expected.nfd.threshold, decimals: expected.nfd.decimals }, backend, 2);
    t.is(nodes.length, expected.nfd.values.length);
    t.is(firstMismatch(values, expected.nfd.values), -1);
  });
}
