/**
 * How a client finds its cluster from any directory, as kubectl finds its kubeconfig: `--nats`, then
 * `SIGMA_NATS`, then the context file `npm run cluster` writes (~/.sigma/context.json, or the file
 * `SIGMA_CONTEXT` names), then, in a checkout of this project, its cluster.config.ts. Every answer says
 * where it came from, so a failed connection can say which address it tried and why that one.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Names the context file instead of ~/.sigma/context.json (tests, several clusters on one machine). */
export const CONTEXT_ENV = 'SIGMA_CONTEXT';
export const NATS_ENV = 'SIGMA_NATS';
const OWNER_ONLY_FILE = 0o600;
const OWNER_ONLY_DIR = 0o700;

/** What `npm run cluster` leaves for clients: the URL carries the control plane's user and password. */
export interface ClusterContext {
  name: string;
  nats: string;
  /** The cluster's data directory on this machine (proc logs live there). */
  dataDir: string;
}

export interface ClusterAddress {
  url: string;
  /** Where the URL came from, for messages: `--nats`, `SIGMA_NATS`, `context file <path>`, ... */
  source: string;
  /** The data directory, when the source knows it. */
  dataDir?: string;
}

export function contextFile(env: NodeJS.ProcessEnv = process.env): string {
  return env[CONTEXT_ENV] ?? join(homedir(), '.sigma', 'context.json');
}

/** Written by `sigma cluster`: readable by its owner only (it holds the admin password). */
export function writeContext(ctx: ClusterContext, file = contextFile()): void {
  mkdirSync(dirname(file), { recursive: true, mode: OWNER_ONLY_DIR });
  writeFileSync(file, `${JSON.stringify(ctx, null, 2)}\n`, { mode: OWNER_ONLY_FILE });
  chmodSync(file, OWNER_ONLY_FILE);
}

/** The context file's cluster, if there is a well-formed one; a malformed file is an error naming it. */
export function readContext(file = contextFile()): ClusterContext | undefined {
  if (!existsSync(file)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ContextError(`the context file ${file} is not JSON (${(e as Error).message}); remove it or run \`npm run cluster\` again`);
  }
  const c = v as Partial<ClusterContext>;
  if (typeof c !== 'object' || c === null || typeof c.nats !== 'string' || typeof c.name !== 'string' || typeof c.dataDir !== 'string') throw new ContextError(`the context file ${file} lacks name, nats or dataDir; remove it or run \`npm run cluster\` again`);
  return { name: c.name, nats: c.nats, dataDir: c.dataDir };
}

export class ContextError extends Error {
  readonly type = 'bad-context';
  constructor(message: string) {
    super(message);
    this.name = 'ContextError';
  }
}

/** The cluster could not be reached at the address found, and where that address came from. */
export class NoClusterError extends Error {
  readonly type = 'no-cluster';
  constructor(readonly address: ClusterAddress | undefined, detail: string) {
    super(address === undefined ? `no cluster: ${detail}` : `no cluster at ${redact(address.url)} (from ${address.source}): ${detail}`);
    this.name = 'NoClusterError';
  }
}

/**
 * The address from the first source that has one; `fallback` (a project's cluster.config.ts) last.
 * undefined when there is none at all.
 */
export async function findCluster(o: { flag?: string; env?: NodeJS.ProcessEnv; fallback?: () => Promise<ClusterAddress | undefined> } = {}): Promise<ClusterAddress | undefined> {
  const env = o.env ?? process.env;
  if (o.flag !== undefined) return { url: o.flag, source: '--nats' };
  const fromEnv = env[NATS_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { url: fromEnv, source: NATS_ENV };
  const file = contextFile(env);
  const ctx = readContext(file);
  if (ctx !== undefined) return { url: ctx.nats, source: `context file ${file}`, dataDir: ctx.dataDir };
  return o.fallback?.();
}

/** `url` (or each of a comma-separated list) without its password (messages and logs). */
export function redact(url: string): string {
  if (url.includes(',')) return url.split(',').map(redact).join(',');
  try {
    const u = new URL(url.includes('://') ? url : `nats://${url}`);
    if (u.password !== '') u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable URL)';
  }
}
