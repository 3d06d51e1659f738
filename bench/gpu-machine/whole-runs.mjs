// f64 against webgpu, whole processes, by thread count (medians of 3 at 16 threads); run from the repository root.
import { execFileSync } from 'node:child_process';
const { edges4mDegree64, pythiaShaped } = await import('../../dist/bench/datasets.js');
const log = (s) => process.stderr.write(`${s}\n`);
const inputs = [
  ['mfa 4M degree-64', ['mfa', await edges4mDegree64(log), '--json'], [1, 4, 16]],
  ['analyze pythia-160m --full', ['analyze', await pythiaShaped('pythia-160m', 768, 12, log), '--full', '--json'], [1, 4, 16]],
  ['analyze pythia-410m --full', ['analyze', await pythiaShaped('pythia-410m', 1024, 24, log), '--full', '--json'], [16]],
];
const seconds = (args) => {
  const t0 = performance.now();
  execFileSync('node', ['bin/neuromfa.js', ...args], { stdio: ['ignore', 'ignore', 'ignore'], timeout: 90000 });
  return (performance.now() - t0) / 1000;
};
const median = (f) => [f(), f(), f()].sort((a, b) => a - b)[1];
for (const [label, args, threadCounts] of inputs) {
  for (const threads of threadCounts) {
    const time = threads < 16 ? (f) => f() : median;
    const a = time(() => seconds([...args, '--threads', String(threads), '--backend', 'f64']));
    const b = time(() => seconds([...args, '--threads', String(threads), '--backend', 'webgpu']));
    console.log(`${label}, --threads ${threads}: f64 ${a.toFixed(2)} s, webgpu ${b.toFixed(2)} s (${(a / b).toFixed(2)}× f64's speed)`);
  }
}
