import { HEIGHT, topLevel, WIDTH } from '../figure-style.js';
import type { StepAxis } from '../step-axis.js';

export interface CompareRow {
  run: string;
  label: string;
  step: number | null;
  E: number | null;
  ELow: number | null;
  EHigh: number | null;
}

const tooltip = [{ field: 'run' }, { field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: 'E' }];

/** E against training step, one coloured line per run (sorted by model size), with ± std bars. */
export function compareStepsSpec(title: string, subtitle: string[], rows: CompareRow[], runs: string[], axis: StepAxis): object {
  const color = { field: 'run', type: 'nominal', sort: runs, title: 'run', scale: { scheme: 'tableau10' } };
  return {
    ...topLevel(title, subtitle),
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    layer: [
      // E = 0 is the initial checkpoint's level: a full-width reference line.
      { mark: { type: 'rule', strokeDash: [4, 4], color: '#999' }, encoding: { y: { datum: 0, type: 'quantitative' } } },
      { mark: { type: 'rule', opacity: 0.5 }, encoding: { x: axis.x, color, y: { field: 'ELow', type: 'quantitative', title: 'E' }, y2: { field: 'EHigh' } } },
      { mark: { type: 'line', point: { filled: true, size: 25 } }, encoding: { x: axis.x, color, y: { field: 'E', type: 'quantitative', title: 'E' }, tooltip } },
    ],
  };
}

export interface SizeRow {
  run: string;
  parameters: number;
  layoutParameters: number;
  E: number | null;
  ELow: number | null;
  EHigh: number | null;
}

/** E at one training step against model size (parameters of the checkpoint, log scale), as the reference's "emergence vs model size". */
export function compareSizeSpec(title: string, subtitle: string[], rows: SizeRow[], step: number): object {
  const x = { field: 'parameters', type: 'quantitative', title: 'parameters (checkpoint, log scale)', scale: { type: 'log' }, axis: { format: '~s' } };
  return {
    ...topLevel(title, subtitle),
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    encoding: { x },
    layer: [
      { mark: { type: 'rule', color: '#7aa6d8' }, encoding: { y: { field: 'ELow', type: 'quantitative', title: `E at step ${step}` }, y2: { field: 'EHigh' } } },
      { mark: { type: 'line', point: { filled: true, size: 50 }, color: '#1f5fa8' }, encoding: { y: { field: 'E', type: 'quantitative' } } },
      { mark: { type: 'text', dy: -12, fontSize: 10 }, encoding: { y: { field: 'E', type: 'quantitative' }, text: { field: 'run' } } },
      {
        mark: { type: 'point', opacity: 0, size: 120 },
        encoding: { y: { field: 'E', type: 'quantitative' }, tooltip: [{ field: 'run' }, { field: 'parameters', format: ',' }, { field: 'layoutParameters', title: 'NIN weights', format: ',' }, { field: 'E' }] },
      },
    ],
  };
}
