import { join } from 'node:path';
import { makeDirectory, writeFileAtomic } from '../../worker/io/atomic-write.js';
import { analyzeFigureSet, analyzePage, analyzeSamplesCsv, type AnalyzeResult } from './analyze-report.js';
import { emergenceCsv, emergenceFigureSet, emergencePage, samplesCsv, type EmergenceResult } from './emergence-report.js';
import { writeFigure } from './figure.js';
import { writeHtmlReport, type ReportFigure, type ReportSection } from './html-report.js';

async function ensureDir(dir: string): Promise<void> {
  await makeDirectory(dir);
}

async function writeFigures(dir: string, figures: ReportFigure[]): Promise<string[]> {
  const files: string[] = [];
  for (const f of figures) files.push(...(await writeFigure(dir, f.name, f.spec)));
  return files;
}

/**
 * report.json, samples.csv, spectrum and tau figures (.vl.json, .svg, .png) and report.html.
 * `extra` sections (drawn by other analyses with writeFigure into `dir`) join the page.
 */
export async function writeAnalyzeReport(dir: string, report: AnalyzeResult, extra: ReportSection[] = []): Promise<string[]> {
  await ensureDir(dir);
  const files = [join(dir, 'report.json'), join(dir, 'samples.csv')];
  await writeFileAtomic(files[0], JSON.stringify(report, null, 2) + '\n');
  await writeFileAtomic(files[1], analyzeSamplesCsv(report));
  const figures = analyzeFigureSet(report);
  files.push(...(await writeFigures(dir, figures)));
  files.push(await writeHtmlReport(dir, analyzePage(report, figures, extra)));
  return files;
}

/**
 * report.json, emergence.csv, samples.csv, the emergence, spectra and alpha0-width figures
 * and report.html of an emergence curve; `extra` sections join the page.
 */
export async function writeEmergenceReport(dir: string, result: EmergenceResult, extra: ReportSection[] = []): Promise<string[]> {
  await ensureDir(dir);
  const files = ['report.json', 'emergence.csv', 'samples.csv'].map((f) => join(dir, f));
  await writeFileAtomic(files[0], JSON.stringify(result, null, 2) + '\n');
  await writeFileAtomic(files[1], emergenceCsv(result));
  await writeFileAtomic(files[2], samplesCsv(result));
  const figures = emergenceFigureSet(result);
  files.push(...(await writeFigures(dir, figures)));
  files.push(await writeHtmlReport(dir, emergencePage(result, figures, extra)));
  return files;
}
