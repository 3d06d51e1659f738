/**
 * Contract — the offline HTML report of a run:
 *
 *   writeHtmlReport(dir, page) → DIR/report.html (its path)
 *
 * - One self-contained file: Vega and Vega-Lite (the browser bundles from node_modules),
 *   every figure's Vega-Lite spec and every table are inlined. A Content-Security-Policy
 *   forbids any request (no CDN, no fonts, no data fetch), so the page works offline and
 *   cannot leak.
 * - `page.meta` is shown as a key/value list at the top (model, parameters, commit, version).
 * - Each section has a heading and, in this order, its `figures` (drawn interactively from
 *   `spec`, which should be the spec given to writeFigure under the same `name`: the page
 *   links NAME.svg, NAME.png and NAME.vl.json beside it), its `tables` (numbers shown to 6
 *   significant digits; `csv` names a file in DIR to link as the full-precision source) and
 *   `html` — trusted markup the caller built (escape user text with escapeHtml).
 * - Hovering a mark that has a Vega-Lite `tooltip` encoding shows its values in a box
 *   (div#tooltip) next to the pointer.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';

export interface ReportTable {
  caption: string;
  columns: string[];
  rows: Array<Array<string | number | null>>;
  /** A CSV file beside report.html holding this table at full precision. */
  csv?: string;
}

export interface ReportFigure {
  name: string;
  spec: object;
  caption?: string;
}

export interface ReportSection {
  heading: string;
  figures?: ReportFigure[];
  tables?: ReportTable[];
  html?: string;
}

export interface ReportPage {
  title: string;
  meta: Record<string, string>;
  sections: ReportSection[];
}

export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JSON or a bundle inside <script>: `</script` or `<!--` in a string would end or change the element. */
const scriptSafe = (text: string) => text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');

const cell = (v: string | number | null) => (v === null ? '–' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)))) : v);

let bundles: Promise<string> | undefined;
/** vega.min.js then vega-lite.min.js (which expects the global `vega`), read once per process. */
function browserBundles(): Promise<string> {
  // Both packages' entry points live in their build/ folder, beside the minified browser bundles.
  const beside = (pkg: string, file: string) => fileURLToPath(new URL(file, import.meta.resolve(pkg)));
  bundles ??= Promise.all([readFile(beside('vega', 'vega.min.js'), 'utf8'), readFile(beside('vega-lite', 'vega-lite.min.js'), 'utf8')]).then((b) =>
    b.map(scriptSafe).join('\n;\n'),
  );
  return bundles;
}

const STYLE = `
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;font-size:.9em}dl.meta dt{font-weight:bold}dl.meta dd{margin:0}
figure{margin:1.5em 0}figcaption{font-size:.85em;color:#444;max-width:900px}figcaption a{margin-right:.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:right}th{background:#f4f4f4}
caption{text-align:left;font-weight:bold;padding:.3em 0}.error{color:#b00}
#tooltip{position:fixed;display:none;background:#fff;border:1px solid #888;padding:.3em .5em;font-size:12px;pointer-events:none;box-shadow:0 1px 4px rgba(0,0,0,.3);z-index:10}
#tooltip td{border:none;padding:0 .4em;text-align:left}`;

/** Draws every figure; a hover box replaces the browser's slow `title` tooltip. */
const DRAW = `
const tip=document.getElementById('tooltip');
function tooltip(handler,event,item,value){
  if(value==null||value===''){tip.style.display='none';return;}
  const rows=typeof value==='object'?Object.entries(value):[['',value]];
  tip.querySelector('table').replaceChildren(...rows.map(([k,v])=>{const tr=document.createElement('tr');for(const t of [k,v]){const td=document.createElement('td');td.textContent=String(t);tr.append(td);}return tr;}));
  tip.style.left=(event.clientX+12)+'px';tip.style.top=(event.clientY+12)+'px';tip.style.display='block';
}
const specs=JSON.parse(document.getElementById('figure-specs').textContent);
window.reportReady=Promise.all(specs.map(async([id,spec])=>{
  const el=document.getElementById(id);
  try{
    const view=new vega.View(vega.parse(vegaLite.compile(spec).spec),{renderer:'svg',hover:true});
    view.tooltip(tooltip);
    await view.initialize(el).runAsync();
  }catch(err){el.textContent='figure failed: '+err.message;el.className='error';console.error(err);}
}));`;

function figureHtml(f: ReportFigure, id: string): string {
  const links = ['svg', 'png', 'vl.json'].map((ext) => `<a href="${escapeHtml(`${f.name}.${ext}`)}">${ext === 'vl.json' ? 'Vega-Lite spec' : ext.toUpperCase()}</a>`).join('');
  return `<figure><div id="${id}" class="chart" data-figure="${escapeHtml(f.name)}"></div><figcaption>${f.caption ? `${escapeHtml(f.caption)}<br>` : ''}${links}</figcaption></figure>`;
}

function tableHtml(t: ReportTable): string {
  const head = `<tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(cell(v))}</td>`).join('')}</tr>`).join('\n');
  const csv = t.csv ? ` (<a href="${escapeHtml(t.csv)}">${escapeHtml(t.csv)}</a>)` : '';
  return `<table><caption>${escapeHtml(t.caption)}${csv}</caption>\n${head}\n${body}\n</table>`;
}

export async function writeHtmlReport(dir: string, page: ReportPage): Promise<string> {
  const specs: Array<[string, object]> = [];
  const sections = page.sections.map((s) => {
    const figures = (s.figures ?? []).map((f) => {
      const id = `figure-${specs.length}`;
      specs.push([id, f.spec]);
      return figureHtml(f, id);
    });
    return `<section><h2>${escapeHtml(s.heading)}</h2>\n${figures.join('\n')}\n${(s.tables ?? []).map(tableHtml).join('\n')}\n${s.html ?? ''}</section>`;
  });
  const meta = Object.entries(page.meta)
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`)
    .join('');
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(page.title)}</h1>
<dl class="meta">${meta}</dl>
${sections.join('\n')}
<div id="tooltip"><table></table></div>
<script id="figure-specs" type="application/json">${scriptSafe(JSON.stringify(specs))}</script>
<script>${await browserBundles()}</script>
<script>${DRAW}</script>
</body></html>
`;
  const path = join(dir, 'report.html');
  await writeFileAtomic(path, html);
  return path;
}
