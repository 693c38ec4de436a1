/** Plain-text tables for people; scripts use --json. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Exit codes that mean something to a script. */
export const EXIT = {
  ok: 0,
  /** The proc ran and ended in error, crashed, was lost or evicted. */
  procFailed: 1,
  /** Bad command line. */
  usage: 2,
  /** The control plane refused (bad spec, unknown realm or program, never fits, queue full, over a realm quota). */
  refused: 3,
  /** No cluster answered. */
  unavailable: 4,
  /** A wait timed out. */
  timeout: 5,
} as const;
