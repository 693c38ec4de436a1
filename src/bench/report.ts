/** Turns a suite's figures into the JSON object and the human table. */
import type { Comparison, Figure, Figures, Goal, Suite } from './harness.js';
import { BenchError, round } from './harness.js';

/** ours/baseline when higher is better, baseline/ours when lower is better: > 1 means we win. */
export function ratio(c: Comparison, figures: Figures): number | null {
  const ours = figures[c.figure];
  const base = figures[c.baseline];
  if (typeof ours !== 'number' || typeof base !== 'number' || ours <= 0 || base <= 0) return null;
  return round(c.better === 'higher' ? ours / base : base / ours);
}

/** The suite's figures plus the ratio keys its comparisons name. */
export function withRatios(suite: Suite, figures: Figures): Figures {
  const out: Figures = { ...figures };
  for (const c of suite.comparisons ?? []) {
    if (c.ratio === undefined) continue;
    if (c.ratio in figures) throw new BenchError(`suite ${suite.name} reports "${c.ratio}" itself and as a comparison ratio; keep one`);
    out[c.ratio] = ratio(c, figures);
  }
  return out;
}

function goalMet(g: Goal, figures: Figures): boolean | null {
  const v = figures[g.figure];
  const t = typeof g.target === 'number' ? g.target : figures[g.target];
  if (typeof v !== 'number' || typeof t !== 'number') return null;
  return g.op === '>=' ? v >= t : v <= t;
}

export function formatFigure(v: Figure | undefined): string {
  if (typeof v !== 'number') return String(v ?? '');
  if (Number.isInteger(v) && Math.abs(v) >= 10_000) return v.toLocaleString('en-US');
  return String(v);
}

/**
 * One row per figure. Figures with a baseline show it and the ratio; figures with goals show them and
 * whether they are met. Baselines and ratios appear in their comparison's row, not again on their own
 * (a goal on a ratio shows in that row too).
 */
export function formatTable(suite: Suite, figures: Figures): string {
  const comparisons = suite.comparisons ?? [];
  // A figure may have several baselines (bpf against http and nats): one row, every baseline in it.
  const byFigure = new Map<string, Comparison[]>();
  for (const c of comparisons) byFigure.set(c.figure, [...(byFigure.get(c.figure) ?? []), c]);
  const rowOf = new Map<string, string>();
  for (const c of comparisons) {
    if (!byFigure.has(c.baseline)) rowOf.set(c.baseline, c.figure);
    if (c.ratio !== undefined) rowOf.set(c.ratio, c.figure);
  }
  const goalsByRow = new Map<string, Goal[]>();
  for (const g of suite.goals ?? []) {
    const row = rowOf.get(g.figure) ?? g.figure;
    goalsByRow.set(row, [...(goalsByRow.get(row) ?? []), g]);
  }
  const rows: string[][] = [['figure', 'value', 'baseline', 'vs baseline', 'goal', 'status']];
  for (const [key, value] of Object.entries(figures)) {
    if (rowOf.has(key) && !byFigure.has(key)) continue;
    const cs = byFigure.get(key) ?? [];
    const goals = goalsByRow.get(key) ?? [];
    const met = goals.map((g) => goalMet(g, figures));
    const target = (g: Goal): string => (typeof g.target === 'number' ? formatFigure(g.target) : g.target);
    const versus = (c: Comparison): string => {
      const r = ratio(c, figures);
      return r === null ? '' : `${r}x ${r >= 1 ? 'better' : 'worse'}`;
    };
    rows.push([
      key,
      formatFigure(value),
      cs.map((c) => `${formatFigure(figures[c.baseline])} (${c.baseline})`).join('; '),
      cs.map(versus).join('; '),
      goals.map((g) => `${g.figure === key ? '' : `${g.figure} `}${g.op} ${target(g)}`).join('; '),
      met.length === 0 ? '' : met.every((m) => m === true) ? 'ok' : met.some((m) => m === false) ? 'MISSED' : 'n/a',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(rows[0]!), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join('\n');
}
