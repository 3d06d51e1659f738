import { HEIGHT, topLevel, WIDTH } from '../figure-style.js';
import type { StepAxis } from '../step-axis.js';

/** A task's panel: E of every checkpoint and the task's score at every evaluated step. */
export interface TaskSeries {
  /** `arc_easy (0-shot)`, with the coefficients for the scatter's header. */
  name: string;
  metric: string;
  E: Array<{ label: string; step: number; E: number | null }>;
  scores: Array<{ step: number; score: number | null }>;
}

const E_COLOR = '#1f5fa8';
const SCORE_COLOR = '#d45500';

function panel(t: TaskSeries, axis: StepAxis) {
  const x = { ...axis.x, field: 'step' };
  return {
    width: WIDTH,
    height: HEIGHT - 120,
    title: { text: t.name, fontSize: 12 },
    layer: [
      {
        data: { values: t.E },
        mark: { type: 'line', point: { filled: true, size: 25, color: E_COLOR }, color: E_COLOR },
        encoding: { x, y: { field: 'E', type: 'quantitative', title: 'E', axis: { titleColor: E_COLOR } }, tooltip: [{ field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: 'E' }] },
      },
      {
        data: { values: t.scores },
        mark: { type: 'line', point: { shape: 'square', filled: true, size: 25, color: SCORE_COLOR }, color: SCORE_COLOR, strokeDash: [5, 3] },
        encoding: {
          x,
          y: { field: 'score', type: 'quantitative', title: t.metric, scale: { zero: false }, axis: { orient: 'right', titleColor: SCORE_COLOR } },
          tooltip: [{ field: 'step' }, { field: 'score', title: t.metric }],
        },
      },
    ],
    resolve: { scale: { y: 'independent' } },
  };
}

/** Per task: E (left axis, solid) and the benchmark score (right axis, dashed) against training step. */
export function benchmarkStepsSpec(title: string, subtitle: string[], tasks: TaskSeries[], axis: StepAxis): object {
  return { ...topLevel(title, subtitle), vconcat: tasks.map((t) => panel(t, axis)) };
}

/** One matched checkpoint in a task's scatter. */
export interface ScatterRow {
  /** The facet: task, shots and the coefficients. */
  panel: string;
  label: string;
  step: number;
  E: number | null;
  score: number | null;
}

/** Score against E, one panel per task (independent score scales), points coloured by step. */
export function benchmarkScatterSpec(title: string, subtitle: string[], rows: ScatterRow[], panels: string[], metric: string, axis: StepAxis): object {
  return {
    ...topLevel(title, subtitle),
    data: { values: rows },
    facet: { field: 'panel', type: 'nominal', sort: panels, title: null, header: { labelFontSize: 11, labelExpr: "split(datum.value, '|')" } },
    columns: 2,
    resolve: { scale: { y: 'independent', x: 'independent' } },
    spec: {
      width: WIDTH / 2,
      height: WIDTH / 2 - 40,
      mark: { type: 'point', filled: true, size: 40 },
      encoding: {
        x: { field: 'E', type: 'quantitative', title: 'E', scale: { zero: false } },
        y: { field: 'score', type: 'quantitative', title: metric, scale: { zero: false } },
        color: axis.color,
        tooltip: [{ field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: 'E' }, { field: 'score', title: metric }],
      },
    },
  };
}
