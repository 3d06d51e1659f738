/**
 * Contract — one report figure, written three ways from one Vega-Lite spec:
 *
 *   writeFigure(dir, name, spec) → [DIR/NAME.vl.json, DIR/NAME.svg, DIR/NAME.png]
 *
 * - `spec` is a Vega-Lite TopLevelSpec (v6) with its data inline (`data.values`, or
 *   `datasets` + `data.name`): the figure is the spec, so a user restyles it (or loads it in
 *   Altair) without us. `NAME.vl.json` is the spec exactly as given.
 * - `NAME.svg` is Vega's server-side render (no browser, no canvas: text widths are
 *   estimated); `NAME.png` is that SVG rasterised by resvg at 2× with the system's fonts
 *   (without any font installed the PNG has no text; the SVG still has it).
 * - Each file is written atomically (temporary name, then rename); the directory must exist.
 * - Put the model, parameters, commit and tool version in the spec (figureSubtitle in
 *   figure-meta.ts builds that subtitle; topLevel in figure-style.ts the shared look) — the
 *   PNG travels without its caption.
 * The same spec goes into report.html (html-report.ts) unchanged.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';

/**
 * Loaded on first use (commands that draw nothing never pay for vega's startup), once, one
 * module after another: concurrent import() of these packages, some of whose CJS parts
 * require() ESM ones, made Node 20 fail now and then with "Unexpected status of a module
 * that is imported again after being required".
 */
let loaded: Promise<{ vega: typeof import('vega'); vegaLite: typeof import('vega-lite'); Resvg: typeof import('@resvg/resvg-js').Resvg }> | undefined;
const libraries = () =>
  (loaded ??= (async () => {
    const vega = await import('vega');
    const vegaLite = await import('vega-lite');
    const { Resvg } = await import('@resvg/resvg-js');
    return { vega, vegaLite, Resvg };
  })());

/** The SVG of a Vega-Lite spec, rendered by Vega without a DOM. */
export async function renderSvg(spec: object): Promise<string> {
  const { vega, vegaLite } = await libraries();
  const compiled = vegaLite.compile(spec as Parameters<typeof vegaLite.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A PNG of an SVG at `scale`× its size, on white. */
async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { Resvg } = await libraries();
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    // resvg knows no CSS generic families by itself: name the common sans fonts Vega's
    // `sans-serif` should become; any loaded font is the fallback.
    font: { loadSystemFonts: true, sansSerifFamily: 'DejaVu Sans', defaultFontFamily: 'DejaVu Sans' },
    logLevel: 'off',
  });
  return resvg.render().asPng();
}

export async function writeFigure(dir: string, name: string, spec: object): Promise<string[]> {
  const svg = await renderSvg(spec);
  const png = await svgToPng(svg);
  const files = ['vl.json', 'svg', 'png'].map((ext) => join(dir, `${name}.${ext}`));
  await writeFileAtomic(files[0], JSON.stringify(spec, null, 2) + '\n');
  await writeFileAtomic(files[1], svg);
  await writeFileAtomic(files[2], png);
  return files;
}
