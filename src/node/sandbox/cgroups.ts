import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** cgroup v1's default cpu.shares and v2's default cpu.weight: what one core's worth of reservation maps to. */
const V1_SHARES_PER_CORE = 1024;
const V2_WEIGHT_PER_CORE = 100;
const MCPU_PER_CORE = 1000;
const V2_WEIGHT_MIN = 1;
const V2_WEIGHT_MAX = 10_000;
const V1_SHARES_MIN = 2;
const BYTES_PER_MB = 2 ** 20;

/** What one proc host may use. */
export interface HostLimits {
  memMb: number;
  /** CPU weight relative to other hosts, from reserved millicores (BE hosts: a low weight). */
  mcpu: number;
  pidsMax: number;
  /**
   * Best-effort: the group runs only on CPU time nothing else wants (cpu.idle, cgroup v1 and v2 since
   * Linux 5.15): a waking LC task preempts it at once, where weights alone leave it a slice to finish.
   */
  idle?: boolean;
}

/** A host's cgroup(s): the files its wrapper writes its pid into, and what it can tell after the host died. */
export interface HostCgroup {
  readonly procsFiles: string[];
  readonly limits: HostLimits;
  /** Times the kernel killed something in it for going over its memory limit. */
  oomKills(): number;
  remove(): void;
}

/**
 * cgroups for proc hosts, v2 where the machine has it (a unified hierarchy with the memory, cpu and
 * pids controllers) and v1 where it does not (this machine: v1 memory, cpu and pids, an empty v2).
 * Each host gets a group under `sigma/<node>/`, made before it starts and removed once it has gone.
 */
export class HostCgroups {
  readonly version: 1 | 2 | undefined;
  /** One directory per node process: a restarted node's host ids start again from 0. */
  readonly #group: string;

  constructor(node: string) {
    this.version = detect();
    this.#group = `${node}.${process.pid}`;
    if (this.version !== undefined) removeStale(this.version, node);
  }

  create(hostId: string, limits: HostLimits): HostCgroup | undefined {
    if (this.version === 2) return this.#v2(hostId, limits);
    if (this.version === 1) return this.#v1(hostId, limits);
    return undefined;
  }

  #v2(hostId: string, l: HostLimits): HostCgroup {
    const parent = join(CGROUP_ROOT, 'sigma', this.#group);
    mkdirSync(parent, { recursive: true });
    // Controllers reach a group only when every ancestor delegates them.
    for (const dir of [join(CGROUP_ROOT, 'sigma'), parent]) writeFileSync(join(dir, 'cgroup.subtree_control'), '+memory +cpu +pids');
    const dir = join(parent, hostId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'memory.max'), String(l.memMb * BYTES_PER_MB));
    writeFileSync(join(dir, 'memory.swap.max'), '0');
    writeFileSync(join(dir, 'cpu.weight'), String(Math.min(V2_WEIGHT_MAX, Math.max(V2_WEIGHT_MIN, Math.round((l.mcpu / MCPU_PER_CORE) * V2_WEIGHT_PER_CORE)))));
    writeFileSync(join(dir, 'pids.max'), String(l.pidsMax));
    if (l.idle === true) writeIdle(dir);
    return { procsFiles: [join(dir, 'cgroup.procs')], limits: l, oomKills: () => counter(join(dir, 'memory.events'), 'oom_kill'), remove: () => removeDirs([dir]) };
  }

  #v1(hostId: string, l: HostLimits): HostCgroup {
    const dirs = (['memory', 'cpu', 'pids'] as const).map((c) => join(CGROUP_ROOT, c, 'sigma', this.#group, hostId));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    const [mem, cpu, pids] = dirs as [string, string, string];
    writeFileSync(join(mem, 'memory.limit_in_bytes'), String(l.memMb * BYTES_PER_MB));
    // Without this a host could swap its way past the limit (where swap accounting exists).
    if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(mem, 'memory.memsw.limit_in_bytes'), String(l.memMb * BYTES_PER_MB));
    writeFileSync(join(cpu, 'cpu.shares'), String(Math.max(V1_SHARES_MIN, Math.round((l.mcpu / MCPU_PER_CORE) * V1_SHARES_PER_CORE))));
    writeFileSync(join(pids, 'pids.max'), String(l.pidsMax));
    if (l.idle === true) writeIdle(cpu);
    return { procsFiles: dirs.map((d) => join(d, 'cgroup.procs')), limits: l, oomKills: () => counter(join(mem, 'memory.oom_control'), 'oom_kill'), remove: () => removeDirs(dirs) };
  }
}

/** Groups an earlier incarnation of this node left (killed before it could remove them), once empty. */
function removeStale(version: 1 | 2, node: string): void {
  const bases = version === 2 ? [join(CGROUP_ROOT, 'sigma')] : ['memory', 'cpu', 'pids'].map((c) => join(CGROUP_ROOT, c, 'sigma'));
  for (const base of bases) {
    if (!existsSync(base)) continue;
    // Only those of node processes that are gone: another cluster on this machine may run a node of the same name.
    for (const g of readdirSync(base).filter((d) => d.startsWith(`${node}.`) && !alive(Number(d.slice(node.length + 1))))) {
      // Another node process of the same name may be removing the same group right now: whatever is
      // already gone is not an error.
      const dir = join(base, g);
      removeDirs([...subdirs(dir).map((h) => join(dir, h)), dir]);
    }
  }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** Where the kernel has cpu.idle (5.15 and later); elsewhere the low weight is all a BE group gets. */
function writeIdle(dir: string): void {
  if (existsSync(join(dir, 'cpu.idle'))) writeFileSync(join(dir, 'cpu.idle'), '1');
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

function detect(): 1 | 2 | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined;
  const controllers = join(CGROUP_ROOT, 'cgroup.controllers');
  if (existsSync(controllers) && ['memory', 'cpu', 'pids'].every((c) => readFileSync(controllers, 'utf8').split(/\s+/).includes(c))) return 2;
  if (['memory', 'cpu', 'pids'].every((c) => existsSync(join(CGROUP_ROOT, c, 'cgroup.procs')))) return 1;
  return undefined;
}

/** The value of `key` in a flat-keyed cgroup file ("oom_kill 3"); 0 when absent. */
function counter(file: string, key: string): number {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

/** A cgroup goes once its last process has (rmdir fails while one is left: it is tried again by the caller's next removal). */
function removeDirs(dirs: string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // still busy (a process lingering) or already gone
    }
  }
}
