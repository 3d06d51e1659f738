import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { decodePng, inkOf } from './helpers/png-pixels.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

/**
 * report.html in headless Chromium: self-contained (every request is refused and counted),
 * no console error, every chart drawn with marks, hover shows a point's values, and a
 * screenshot that is not blank.
 */

const CHROMIUM = '/usr/bin/chromium';
const series = join(conformanceDir, 'series', 'tiny-neox-f16');
const STEPS = ['step0', 'step8', 'step64', 'step512'];

let T = '';
let cleanup: () => Promise<void> = async () => undefined;
let browser: Browser | undefined;
let curve: any;
test.before(async () => {
  ({ dir: T, cleanup } = await makeTmpDir('neuromfa-report-html-'));
  const [e, a] = await Promise.all([
    runCli(['emergence', ...STEPS.map((s) => join(series, s)), '--samples', '0-2', '--threads', '1', '--json', '--out', join(T, 'e')]),
    runCli(['analyze', join(series, 'step512'), '--samples', '0-2', '--threads', '1', '--out', join(T, 'a')]),
  ]);
  if (e.code !== 0 || a.code !== 0) throw new Error(`${e.stderr}${a.stderr}`);
  curve = JSON.parse(e.stdout);
  if (existsSync(CHROMIUM)) {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  }
});
test.after.always(async () => {
  await browser?.close();
  await cleanup();
});

/** Opens a report: every request but the page itself is refused and counted; console errors are collected. */
async function open(path: string) {
  const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
  const url = pathToFileURL(path).href;
  const refused: string[] = [];
  const errors: string[] = [];
  await page.route('**/*', (route) => {
    if (route.request().url() === url) return route.continue();
    refused.push(route.request().url());
    return route.abort();
  });
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => void errors.push(e.message));
  await page.goto(url);
  // The page sets reportReady once every figure has drawn (or failed, which logs a console error).
  await page.evaluate(() => (globalThis as unknown as { reportReady: Promise<unknown> }).reportReady);
  return { page, refused, errors };
}

/** Marks drawn in each chart: Vega's SVG puts each mark's items in a g.mark-TYPE. */
const marksPerChart = (page: import('playwright-core').Page) =>
  page.$$eval('div.chart', (charts) => charts.map((c) => [c.getAttribute('data-figure'), c.querySelectorAll('svg g[class^="mark-"] > path, svg g[class^="mark-"] > line').length] as const));

test('emergence report.html: offline, no console error, every chart drawn, hover shows a point, screenshot not blank', async (t) => {
  if (!browser) return t.fail(`${CHROMIUM} is missing (apt-get install chromium)`);
  const html = readFileSync(join(T, 'e', 'report.html'), 'utf8');
  t.notRegex(html, /<script[^>]+src=|<link[^>]+href=/, 'no external script or stylesheet');
  const { page, refused, errors } = await open(join(T, 'e', 'report.html'));
  t.deepEqual(errors, []);
  t.deepEqual(refused, [], 'no request beyond the page');
  const marks = await marksPerChart(page);
  t.deepEqual(
    marks.map(([name]) => name),
    ['emergence', 'alpha0-width', 'spectra'],
  );
  for (const [name, n] of marks) t.true(n > 4, `${name}: ${n} marks`);

  // The E curve's last point is step512: its hover box names it and shows E.
  const points = page.locator('[data-figure="emergence"] g.mark-symbol path');
  t.is(await points.count(), 4);
  await points.nth(3).hover();
  const tip = page.locator('#tooltip');
  t.true(await tip.isVisible());
  const text = await tip.innerText();
  t.regex(text, /checkpoint\s+step512/);
  t.regex(text, /step\s+512/);
  t.regex(text, new RegExp(`E\\s+${String(Number(curve.checkpoints[3].E.toPrecision(6))).replace('.', '\\.')}`));

  // Tables and links to the files beside the page.
  t.is(await page.locator('table:has(a[href="emergence.csv"]) tr').count(), 1 + 4);
  t.is(await page.locator('a[href="emergence.csv"]').count(), 1);
  t.is(await page.locator('a[href="emergence.vl.json"]').count(), 1);

  const shot = inkOf(decodePng(await page.screenshot({ fullPage: true })));
  t.true(shot.colours > 100, `${shot.colours} colours`);
  t.true(shot.inked > 0.02, `${(100 * shot.inked).toFixed(1)}% inked`);
  await page.close();
});

test('analyze report.html: both charts drawn, hover on the mean spectrum gives q, alpha and f', async (t) => {
  if (!browser) return t.fail(`${CHROMIUM} is missing (apt-get install chromium)`);
  const { page, refused, errors } = await open(join(T, 'a', 'report.html'));
  t.deepEqual(errors, []);
  t.deepEqual(refused, []);
  const marks = await marksPerChart(page);
  t.deepEqual(
    marks.map(([name]) => name),
    ['spectrum', 'tau'],
  );
  for (const [name, n] of marks) t.true(n > 4, `${name}: ${n} marks`);
  await page.locator('[data-figure="spectrum"] g.mark-symbol path').nth(30).hover({ force: true });
  const text = await page.locator('#tooltip').innerText();
  t.regex(text, /^q\s+0$/m);
  t.regex(text, /mean alpha\s+[\d.]+/);
  t.regex(text, /mean f\s+-?[\d.e-]+/);
  await page.close();
});
