/** A small dependency-free SVG line chart for reports. */
export interface Series {
  label: string;
  x: number[];
  y: number[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Categorical x tick labels (e.g. checkpoint names) instead of numbers. */
  xTicks?: string[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (lo === hi) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = 720;
  const H = 440;
  const m = { l: 70, r: 160, t: 40, b: 55 };
  const xs = series.flatMap((s) => s.x).filter(Number.isFinite);
  const ys = series.flatMap((s) => s.y).filter(Number.isFinite);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(W - m.r + m.l) / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
  ];
  const xt = o.xTicks ? o.xTicks.map((_, i) => i) : niceTicks(x0, x1);
  for (const t of xt) {
    const label = o.xTicks ? o.xTicks[t] : String(t);
    parts.push(`<line x1="${px(t)}" y1="${H - m.b}" x2="${px(t)}" y2="${H - m.b + 5}" stroke="black"/>`);
    parts.push(`<text x="${px(t)}" y="${H - m.b + 18}" text-anchor="middle">${esc(label)}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.l - 5}" y1="${py(t)}" x2="${m.l}" y2="${py(t)}" stroke="black"/>`);
    parts.push(`<text x="${m.l - 8}" y="${py(t) + 4}" text-anchor="end">${t}</text>`);
  }
  parts.push(`<text x="${(W - m.r + m.l) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${(H - m.b + m.t) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = s.x.map((x, k) => [x, s.y[k]]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.8" points="${pts.map(([x, y]) => `${px(x).toFixed(2)},${py(y).toFixed(2)}`).join(' ')}"/>`);
    if (pts.length <= 30) for (const [x, y] of pts) parts.push(`<circle cx="${px(x).toFixed(2)}" cy="${py(y).toFixed(2)}" r="3" fill="${c}"/>`);
    parts.push(`<rect x="${W - m.r + 15}" y="${m.t + i * 18}" width="12" height="3" fill="${c}"/>`);
    parts.push(`<text x="${W - m.r + 32}" y="${m.t + i * 18 + 5}">${esc(s.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
