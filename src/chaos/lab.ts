/**
 * Several machines on one: a network namespace per machine, each joined to one bridge by a veth pair,
 * with an address of a private /24 that exists only inside these namespaces (the bridge has none, so
 * parallel labs never meet). Faults on the links: cut (link down), lossy (nftables `numgen random`
 * drops), slow (a tbf qdisc: this kernel has no netem). Everything is named after the lab's tag, which
 * carries its owner's pid: destroyLab removes all of it, and cleanStaleLabs whatever a killed run left.
 * Harness code: real commands, real time.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { assert } from '../assert.js';

/** Every lab's names start with this. */
export const LAB_PREFIX = 'sx';
const PID_CHARS = 5; // base 36: pids up to 60 million
const TAG_RE = new RegExp(`^${LAB_PREFIX}([0-9a-z]{${PID_CHARS}})[0-9a-z]{2}`);
/** Interface names are at most 15 bytes: a tag of 9 plus `v12` fits. */
export const LAB_MACHINES_MAX = 32;
/** The lab's /24, inside its namespaces only. */
export const LAB_SUBNET = '10.77.0';
/** nftables table the lossy-link rules live in, inside a machine's namespace. */
const NFT_TABLE = 'sigma_chaos';
/** How long destroyLab waits for killed processes to leave a namespace before deleting it. */
const DRAIN_WAIT_MS = 2_000;

export class LabError extends Error {
  readonly type = 'lab';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LabError';
  }
}

export interface LabMachine {
  readonly index: number;
  readonly name: string;
  /** Its network namespace. */
  readonly ns: string;
  /** Its address on the lab's bridge. */
  readonly addr: string;
}

export interface Lab {
  readonly tag: string;
  readonly machines: readonly LabMachine[];
}

/** A fresh tag: the prefix, this process's pid (so a later run knows whether the owner lives), two random characters. */
export function labTag(pid = process.pid): string {
  return `${LAB_PREFIX}${pid.toString(36).padStart(PID_CHARS, '0')}${randomInt(36 * 36).toString(36).padStart(2, '0')}`;
}

/** Runs a command to completion; a failure is a LabError with its stderr. */
export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  if (r.error !== undefined) throw new LabError(`${cmd} ${args.join(' ')}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) throw new LabError(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

const quiet = (cmd: string, args: string[]): void => void spawnSync(cmd, args, { stdio: 'ignore' });
const inNs = (m: LabMachine, cmd: string, args: string[], input?: string): string => sh('ip', ['netns', 'exec', m.ns, cmd, ...args], input);

/** Whether this process may make namespaces (root with iproute2); the reason when not. */
export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (`ip`) is not installed';
  return undefined;
}

/** Whether nftables is there (lossy links need it; bootstrap installs it). */
export const hasNft = (): boolean => spawnSync('nft', ['--version']).status === 0;

/** Makes the lab: the bridge, then each machine's namespace, veth pair and address. On failure, removes what it made. */
export function createLab(names: readonly string[], tag = labTag()): Lab {
  assert(names.length >= 1 && names.length <= LAB_MACHINES_MAX, `a lab has 1..${LAB_MACHINES_MAX} machines`);
  const bridge = `${tag}b`;
  const machines = names.map((name, i) => ({ index: i, name, ns: `${tag}-${name}`, addr: `${LAB_SUBNET}.${i + 1}` }));
  try {
    sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
    sh('ip', ['link', 'set', bridge, 'up']);
    for (const m of machines) {
      const host = `${tag}v${m.index}`;
      const peer = `${tag}p${m.index}`;
      sh('ip', ['netns', 'add', m.ns]);
      sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
      sh('ip', ['link', 'set', peer, 'netns', m.ns]);
      inNs(m, 'ip', ['link', 'set', peer, 'name', 'eth0']);
      inNs(m, 'ip', ['addr', 'add', `${m.addr}/24`, 'dev', 'eth0']);
      inNs(m, 'ip', ['link', 'set', 'eth0', 'up']);
      inNs(m, 'ip', ['link', 'set', 'lo', 'up']);
      sh('ip', ['link', 'set', host, 'master', bridge, 'up']);
    }
  } catch (e) {
    destroyLab(tag);
    throw e;
  }
  return { tag, machines };
}

/** Namespaces of a tag (or of every lab), from `ip netns list`. */
export function labNamespaces(tag = LAB_PREFIX): string[] {
  return sh('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(tag) && TAG_RE.test(n));
}

/** Links of a tag (or of every lab) in this namespace: bridges and host-side veths. */
export function labLinks(tag = LAB_PREFIX): string[] {
  return sh('ip', ['-o', 'link', 'show'])
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(tag) && TAG_RE.test(n));
}

/**
 * Removes everything of the tag: every process in its namespaces (continued, then killed), the
 * namespaces (their veth ends and rules go with them), the bridge. Idempotent; never throws.
 */
export function destroyLab(tag: string): void {
  const namespaces = labNamespaces(tag);
  const pids = namespaces.flatMap((ns) => spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter((p) => /^\d+$/.test(p)).map(Number));
  for (const pid of pids) for (const sig of ['SIGCONT', 'SIGKILL'] as const) killQuietly(pid, sig);
  const deadline = Date.now() + DRAIN_WAIT_MS;
  while (pids.some(alive) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
  for (const ns of namespaces) quiet('ip', ['netns', 'del', ns]);
  for (const link of labLinks(tag)) quiet('ip', ['link', 'del', link]);
}

/** Destroys the labs whose owner process is gone (a run killed before it could clean up); returns their tags. */
export function cleanStaleLabs(): string[] {
  const tags = new Set([...labNamespaces(), ...labLinks()].map((n) => n.slice(0, LAB_PREFIX.length + PID_CHARS + 2)));
  const stale = [...tags].filter((t) => !alive(parseInt(TAG_RE.exec(t)![1]!, 36)));
  for (const t of stale) destroyLab(t);
  return stale;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

/** A process in a machine's namespace (`ip netns exec` execs it: the child's pid is the command's). */
export function spawnIn(m: LabMachine, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', m.ns, cmd, ...args], options);
}

/** Cuts the machine off the bridge (its link down), or heals it. */
export function setCut(m: LabMachine, cut: boolean): void {
  inNs(m, 'ip', ['link', 'set', 'eth0', cut ? 'down' : 'up']);
}

/** Drops `percent` of the packets the machine sends and receives (nftables numgen random); 0 removes the rule. */
export function setLoss(m: LabMachine, percent: number): void {
  assert(Number.isInteger(percent) && percent >= 0 && percent <= 100, `loss is a whole percentage, got ${percent}`);
  quiet('ip', ['netns', 'exec', m.ns, 'nft', 'delete', 'table', 'inet', NFT_TABLE]);
  if (percent === 0) return;
  const share = percent === 100 ? '' : `numgen random mod 100 < ${percent}`; // nft refuses "< 100"
  const rule = (dir: 'input' | 'output', iface: string): string => `  chain ${dir} {\n    type filter hook ${dir} priority 0; policy accept;\n    ${iface} "eth0" ${share} drop\n  }\n`;
  inNs(m, 'nft', ['-f', '-'], `table inet ${NFT_TABLE} {\n${rule('input', 'iifname')}${rule('output', 'oifname')}}\n`);
}

/** Limits what the machine sends to `kbit` per second (a tbf qdisc: queueing delay under load); 0 removes it. */
export function setSlow(m: LabMachine, kbit: number): void {
  quiet('ip', ['netns', 'exec', m.ns, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root']);
  if (kbit === 0) return;
  inNs(m, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '16kbit', 'latency', '400ms']);
}
