import type { Spectrum } from '../analysis/spectrum.js';

const fmt = (v: number) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(6) : v.toExponential(4));

/** The human summary of one spectrum: key numbers, then tau and fit quality per q. */
export function formatSpectrum(label: string, s: Spectrum, stats?: { edges: number; skippedNonFinite: number }): string {
  const lines = [
    `${label}`,
    `  nodes selected ${s.nodesSelected}, radii ${s.radii.length} (${s.radii[0]} .. ${s.radii[s.radii.length - 1]})${stats ? `, edges ${stats.edges}${stats.skippedNonFinite ? `, non-finite weights skipped ${stats.skippedNonFinite}` : ''}` : ''}`,
    `  alpha0 ${fmt(s.alpha0)}   width ${fmt(s.width)}`,
    `     q        tau(q)       R^2     stderr`,
  ];
  s.q.forEach((q, k) => {
    const se = s.fit.stderr[k];
    lines.push(`  ${q.toFixed(2).padStart(5)}  ${fmt(s.tau[k]).padStart(11)}  ${s.fit.r2[k].toFixed(6)}  ${se === null ? '-' : se.toExponential(2)}`);
  });
  return lines.join('\n') + '\n';
}

/** A plain aligned table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
