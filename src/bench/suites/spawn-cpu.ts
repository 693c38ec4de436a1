import { readFileSync, readdirSync } from 'node:fs';

/**
 * CPU time of this process and every process it started (the cluster: nats-server, node processes,
 * proc hosts), grouped by role, read from /proc. Descendants only: other people's processes on a
 * shared machine are not counted. Linux only; elsewhere it returns undefined.
 */
export type CpuByRole = Record<'bench' | 'nats' | 'nodes' | 'hosts' | 'other', number>;

/** /proc reports utime/stime in USER_HZ ticks, which the kernel ABI fixes at 100 per second. */
const USER_HZ = 100;

export function treeCpuMs(root = process.pid): CpuByRole | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  const info = new Map<number, { ppid: number; cpuMs: number; cmd: string }>();
  for (const p of entries) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after "(comm)": state ppid ... utime(14th overall) stime(15th).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      info.set(Number(p), { ppid: Number(f[1]), cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / USER_HZ, cmd });
    } catch {
      // The process ended while we looked.
    }
  }
  const out: CpuByRole = { bench: 0, nats: 0, nodes: 0, hosts: 0, other: 0 };
  for (const [pid, i] of info) {
    let up = pid;
    for (let hops = 0; up !== root && up > 1 && hops < 64; hops++) up = info.get(up)?.ppid ?? 0;
    if (up !== root) continue;
    const role = pid === root ? 'bench' : i.cmd.includes('nats-server') ? 'nats' : i.cmd.includes('host/main') ? 'hosts' : i.cmd.includes('node/main') ? 'nodes' : 'other';
    out[role] += i.cpuMs;
  }
  return out;
}

/** CPU µs per item between two readings, per role and in total. */
export function cpuUsPer(before: CpuByRole | undefined, after: CpuByRole | undefined, items: number): (CpuByRole & { total: number }) | undefined {
  if (before === undefined || after === undefined || items <= 0) return undefined;
  const per = (k: keyof CpuByRole): number => Math.round(((after[k] - before[k]) * 1000) / items);
  const r = { bench: per('bench'), nats: per('nats'), nodes: per('nodes'), hosts: per('hosts'), other: per('other') };
  return { ...r, total: r.bench + r.nats + r.nodes + r.hosts + r.other };
}
