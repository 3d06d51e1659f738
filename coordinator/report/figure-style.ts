/** The look every report figure shares; a user restyles a figure by editing its .vl.json. */
const FIGURE_CONFIG = {
  font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif',
  title: { anchor: 'start', fontSize: 14, subtitleFontSize: 10, subtitleColor: '#555' },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#eee' },
  legend: { labelFontSize: 10, titleFontSize: 11 },
  view: { stroke: '#ccc' },
} as const;

export const WIDTH = 600;
export const HEIGHT = 300;

/** Figure data keeps 6 significant digits (the JSON and CSV beside it keep every digit). */
export const r6 = (v: number | null): number | null => (v === null || !Number.isFinite(v) ? null : Number(v.toPrecision(6)));

export function topLevel(title: string, subtitle: string[]): Record<string, unknown> {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title: { text: title, subtitle }, config: FIGURE_CONFIG, background: 'white', padding: 8 };
}
