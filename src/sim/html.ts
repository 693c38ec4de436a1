import type { TraceHeader } from './trace.js';

/** Lanes per node row in the timeline; more concurrent procs than this share the last lane. */
export const HTML_LANES_MAX = 24;

type Ev = [number, string, ...Array<string | number | boolean | null>];

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/**
 * One run as a self-contained HTML page (inline SVG and CSS, no scripts fetched): one row per node
 * against virtual time, each proc a bar from start to exit coloured by how it ended, faults as bands
 * over the rows they hit, leadership terms on a row of their own, violations as red lines.
 */
export function renderHtml(header: TraceHeader & { hash: string }, lines: readonly string[]): string {
  const evs = lines.map((l) => JSON.parse(l) as Ev);
  const endMs = Math.max(1, ...evs.map((e) => e[0]));
  const nodes = [...new Set(evs.flatMap((e) => (e[1] === 'host-up' || e[1] === 'run' ? [String(e[2])] : [])))].sort();
  const W = 1300;
  const left = 90;
  const x = (t: number): number => left + (t / endMs) * (W - left - 10);
  const laneH = 5;
  const rowH = HTML_LANES_MAX * laneH + 16;
  const top = 60;
  const rowY = (n: string): number => top + 30 + nodes.indexOf(n) * rowH;
  const height = top + 30 + nodes.length * rowH + 120;
  const parts: string[] = [];

  // Rows and time axis.
  nodes.forEach((n) => parts.push(`<rect x="${left}" y="${rowY(n)}" width="${W - left - 10}" height="${rowH - 6}" fill="#f6f6f6"/><text x="6" y="${rowY(n) + 14}" class="l">${esc(n)}</text>`));
  for (let i = 0; i <= 10; i++) {
    const t = (endMs * i) / 10;
    parts.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${height - 100}" stroke="#ddd"/><text x="${x(t) - 10}" y="${height - 86}" class="s">${(t / 1000).toFixed(1)}s</text>`);
  }

  // Faults: bands from fault to heal over the rows they hit (all rows for cluster-wide ones).
  const open = new Map<string, number[]>();
  const bands: Array<{ from: number; to: number; kind: string; targets: string[] }> = [];
  for (const e of evs) {
    if (e[1] !== 'fault' && e[1] !== 'heal') continue;
    const key = `${String(e[2])}|${String(e[3])}`;
    if (e[1] === 'fault') {
      const instant = e[2] === 'host-crash' || e[2] === 'proc-crash';
      if (instant) bands.push({ from: e[0], to: e[0] + endMs / 300, kind: String(e[2]), targets: e[3] === null ? nodes : String(e[3]).split(',') });
      else open.set(key, [...(open.get(key) ?? []), e[0]]);
    } else {
      const starts = open.get(key) ?? [];
      const from = starts.shift();
      if (from !== undefined) bands.push({ from, to: e[0], kind: String(e[2]), targets: e[3] === null ? nodes : String(e[3]).split(',') });
    }
  }
  for (const [key, starts] of open) for (const from of starts) bands.push({ from, to: endMs, kind: key.split('|')[0]!, targets: key.split('|')[1] === 'null' ? nodes : key.split('|')[1]!.split(',') });
  for (const b of bands) {
    for (const n of b.targets.filter((t) => nodes.includes(t))) {
      parts.push(`<rect x="${x(b.from)}" y="${rowY(n)}" width="${Math.max(2, x(b.to) - x(b.from))}" height="${rowH - 6}" class="f ${esc(b.kind)}"><title>${esc(b.kind)} ${esc(n)} ${b.from.toFixed(0)}–${b.to.toFixed(0)} ms</title></rect>`);
    }
    parts.push(`<text x="${x(b.from) + 2}" y="${top + 22}" class="s">${esc(b.kind)}</text>`);
  }

  // Procs: from run to exit (or to the end, or to their host's death), in lanes per node.
  const started = new Map<string, { t: number; node: string; host: string }>();
  const lanes = new Map<string, number[]>();
  const bar = (pid: string, from: number, to: number, node: string, kind: string): void => {
    const ends = lanes.get(node) ?? [];
    let lane = ends.findIndex((t) => t <= from);
    if (lane < 0) lane = ends.length < HTML_LANES_MAX ? ends.length : HTML_LANES_MAX - 1;
    ends[lane] = to;
    lanes.set(node, ends);
    parts.push(`<rect x="${x(from)}" y="${rowY(node) + 8 + lane * laneH}" width="${Math.max(1, x(to) - x(from))}" height="${laneH - 1}" class="p ${esc(kind)}"><title>${esc(pid)} ${esc(kind)} ${from.toFixed(0)}–${to.toFixed(0)} ms</title></rect>`);
  };
  for (const e of evs) {
    if (e[1] === 'run') started.set(String(e[4]), { t: e[0], node: String(e[2]), host: String(e[3]) });
    else if (e[1] === 'exit') {
      const s = started.get(String(e[4]));
      if (s !== undefined) bar(String(e[4]), s.t, e[0], s.node, String(e[5]));
      started.delete(String(e[4]));
    } else if (e[1] === 'host-down') {
      for (const [pid, s] of [...started]) if (s.host === e[3]) { bar(pid, s.t, e[0], s.node, 'crashed'); started.delete(pid); }
      parts.push(`<line x1="${x(e[0])}" y1="${rowY(String(e[2]))}" x2="${x(e[0])}" y2="${rowY(String(e[2])) + rowH - 6}" stroke="#555" stroke-dasharray="2,2"><title>host ${esc(String(e[3]))} down</title></line>`);
    }
  }
  for (const [pid, s] of started) bar(pid, s.t, endMs, s.node, 'running');

  // Leadership terms.
  const terms = evs.filter((e) => e[1] === 'lease' && e[3] === 0 && e[2] !== null && e[2] !== '');
  terms.forEach((e, i) => {
    const to = terms[i + 1]?.[0] ?? endMs;
    parts.push(`<rect x="${x(e[0])}" y="${top}" width="${Math.max(1, x(to) - x(e[0]))}" height="14" class="t${i % 2}"><title>term ${String(e[4])}: ${esc(String(e[2]))}</title></rect><text x="${x(e[0]) + 2}" y="${top + 11}" class="s">${esc(String(e[2]))}</text>`);
  });
  parts.push(`<text x="6" y="${top + 11}" class="l">leader</text>`);

  // Violations.
  const violations = evs.filter((e) => e[1] === 'violation');
  violations.slice(0, 20).forEach((e, i) => {
    parts.push(`<line x1="${x(e[0])}" y1="${top}" x2="${x(e[0])}" y2="${height - 100}" class="v"/><text x="${left}" y="${height - 70 + (i % 5) * 13}" class="vt">${esc(`${String(e[2])}: ${String(e[3])}`).slice(0, 160)}</text>`);
  });

  const title = `${header.scenario} seed ${header.seed}${header.mutant === null ? '' : ` mutant ${header.mutant}`}`;
  const legend = ['ok', 'error', 'crashed', 'lost', 'evicted', 'running'].map((k, i) => `<rect x="${left + i * 90}" y="${height - 30}" width="12" height="8" class="p ${k}"/><text x="${left + i * 90 + 16}" y="${height - 22}" class="s">${k}</text>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font:13px system-ui,sans-serif;margin:16px}.l{font:12px monospace}.s{font:10px monospace;fill:#444}
.p.ok{fill:#3a7}.p.error{fill:#e90}.p.crashed{fill:#a3a}.p.lost{fill:#777}.p.evicted{fill:#48c}.p.running{fill:#bbb}
.f{fill:#f44;opacity:.13}.f.clock-skew{fill:#fc0;opacity:.2}.f.slow-kv{fill:#08f;opacity:.12}.f.net{fill:#f80;opacity:.15}
.t0{fill:#cde}.t1{fill:#dec}.v{stroke:#d00;stroke-width:2}.vt{font:11px monospace;fill:#d00}
</style></head><body><h3>${esc(title)}</h3><div>${violations.length} violation(s) · ${lines.length} trace events · hash ${esc(header.hash.slice(0, 16))} · ${(endMs / 1000).toFixed(1)} s virtual</div>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}">${parts.join('')}${legend}</svg></body></html>\n`;
}
