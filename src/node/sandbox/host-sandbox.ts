import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RealmIds } from './realm-ids.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** The exec wrapper the bootstrap builds (src/native/sandbox/sigma-sandbox.c). */
export const SANDBOX_BINARY = join(ROOT, 'build', 'sigma-sandbox');
/** The uid of a node's trial start: the last of the realm range, never allocated to a realm in practice. */
const TRIAL_UID = 265_535;
const HOST_MAIN = join(ROOT, 'dist', 'src', 'host', 'main.js');
/** A realm's own directory under the node's data directory: the one place its hosts may write. */
export const REALMS_DIR = 'realms';
const TRAVERSE_ONLY = 0o711;
const OWNER_ONLY = 0o700;
const NATS_PORT_DEFAULT = 4222;
/** A host's writable directory is a tmpfs of its own of this size unless its realm's quota says otherwise. */
export const HOST_SCRATCH_MB_DEFAULT = 256;

/** What Node itself needs to start and run, read-only (found by starting it confined, one refusal at a time). */
const SYSTEM_READ = ['/usr/lib', '/lib', '/lib64', '/usr/lib64', '/etc/ld.so.cache', '/etc/ssl', '/etc/localtime', '/usr/share/zoneinfo', '/dev/urandom', '/sys/fs/cgroup', '/proc'];
/** The dynamic loaders a Node binary may name (the kernel opens them for execve, so they need execute). */
const LOADERS = ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1', '/lib/ld-linux-armhf.so.3'];

export interface HostSandboxOptions {
  /** The node's data directory (realm ids are recorded there, realm directories live below it). */
  dataDir: string;
  /** The NATS servers hosts may connect to (their ports are the only TCP connects allowed). */
  natsUrls: string[];
  /** Module paths of the configured programs: their directories are readable. */
  programs: readonly string[];
  /** The directory of a realm's deployed programs (src/node/program-cache.ts): readable by its hosts only. */
  programDirFor?: (realm: string) => string;
  /** Each host's scratch directory, MiB, where a realm's quota sets it (diskMb). */
  diskMbFor?: (realm: string) => number | undefined;
}

export interface SandboxedCommand {
  execPath: string;
  /** The wrapper's policy, `--`, then node and its flags (fork appends the host module). */
  execArgv: string[];
  env: Record<string, string>;
}

/**
 * Confines proc hosts: each realm's hosts run as a uid of their own through the exec wrapper, with
 * read-only access to Node, the project's built code and the programs, one writable directory (the
 * realm's, with a capped tmpfs of the host's own mounted over it), TCP connects to NATS only, and a
 * syscall filter (src/native/sandbox/sigma-sandbox.c).
 */
export class HostSandbox {
  readonly #ids: RealmIds;
  readonly #read: string[];
  readonly #exec: string[];
  readonly #ports: number[];

  constructor(private readonly o: HostSandboxOptions) {
    this.#ids = new RealmIds(o.dataDir);
    this.#exec = systemExec();
    // Programs often share a directory: one rule each (the wrapper takes at most PATHS_MAX).
    this.#read = [...new Set([...SYSTEM_READ, ...projectRead(), ...o.programs.map((m) => dirname(resolve(m)))])];
    this.#ports = [...new Set(o.natsUrls.map(portOf))];
    chmodSync(o.dataDir, TRAVERSE_ONLY);
  }

  /** The paths every host reads and executes, whatever its realm. */
  static basePolicy(): string[] {
    return [...systemExec().flatMap((p) => ['--rx', p]), ...[...SYSTEM_READ, ...projectRead()].flatMap((p) => ['--ro', p]), '--rw', '/dev/null'];
  }

  /** The realm's uid (= gid), allocated on first use and kept across restarts. */
  uidOf(realm: string): number {
    return this.#ids.idOf(realm);
  }

  /** The realm's writable directory, created owned by its uid and closed to everyone else. */
  realmDir(realm: string): string {
    const base = join(this.o.dataDir, REALMS_DIR);
    mkdirSync(base, { recursive: true, mode: TRAVERSE_ONLY });
    const dir = join(base, realm);
    const uid = this.uidOf(realm);
    mkdirSync(dir, { recursive: true, mode: OWNER_ONLY });
    chownSync(dir, uid, uid);
    chmodSync(dir, OWNER_ONLY);
    return dir;
  }

  /** How to start a host of `realm` that keeps fds 0 .. keepFds-1, with `nodeFlags` for node. */
  command(realm: string, keepFds: number, nodeFlags: string[], cgroupProcs: string[] = []): SandboxedCommand {
    const uid = this.uidOf(realm);
    const dir = this.realmDir(realm);
    const policy = ['--uid', String(uid), '--gid', String(uid), '--keep-fds', String(keepFds)];
    for (const p of cgroupProcs) policy.push('--cgroup-procs', p);
    for (const p of this.#exec) policy.push('--rx', p);
    for (const p of this.#read) policy.push('--ro', p);
    const programs = this.o.programDirFor?.(realm);
    if (programs !== undefined) policy.push('--ro', programs);
    policy.push('--rw', '/dev/null', '--rw', dir);
    policy.push('--scratch', dir, '--scratch-mb', String(Math.max(1, this.o.diskMbFor?.(realm) ?? HOST_SCRATCH_MB_DEFAULT)));
    for (const port of this.#ports) policy.push('--connect-port', String(port));
    return { execPath: SANDBOX_BINARY, execArgv: [...policy, '--', process.execPath, ...nodeFlags], env: { HOME: dir, TMPDIR: dir } };
  }
}

function systemExec(): string[] {
  return [realpathSync(process.execPath), ...LOADERS.filter(existsSync).map((l) => realpathSync(l))];
}

function projectRead(): string[] {
  return ['dist', 'node_modules', 'package.json', 'src/native/build/Release'].map((p) => join(ROOT, p));
}

/**
 * Starts node confined as a spare uid and has it read the host's own module: undefined when that works,
 * else why not (the project may sit below a directory other users cannot enter, such as /root).
 */
export function trialStart(): string | undefined {
  const policy = ['--uid', String(TRIAL_UID), '--gid', String(TRIAL_UID), ...HostSandbox.basePolicy()];
  const script = `require('fs').readFileSync(${JSON.stringify(HOST_MAIN)})`;
  try {
    execFileSync(SANDBOX_BINARY, [...policy, '--', process.execPath, '-e', script], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    return undefined;
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? '').trim().split('\n').slice(-1)[0];
    return `${HOST_MAIN} is not readable by realm uids: ${stderr || (e as Error).message}; put the project where other users may enter its parent directories`;
  }
}

function portOf(url: string): number {
  const u = new URL(url.includes('://') ? url : `nats://${url}`);
  return u.port === '' ? NATS_PORT_DEFAULT : Number(u.port);
}
