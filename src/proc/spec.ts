import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { ProcSpec, RestartPolicy } from './types.js';

export const PROC_MCPU_MAX = 64_000;
export const PROC_MEM_MB_MAX = 256 * 1024;
export const PROC_ARGS_BYTES_MAX = 64 * 1024;
export const DEFAULT_BE_MCPU = 0;
export const DEFAULT_LC_MCPU = 100;
export const DEFAULT_MEM_MB = 64;
export const SERVICE_RESTARTS_MAX_DEFAULT = 5;
export const DEFAULT_RESTART_WITHIN_MS = 60_000;
/** Bounds of a service's restart intensity: respawns allowed, and the window they are counted in (a day). */
export const SERVICE_RESTARTS_MAX = 1000;
export const RESTART_WINDOW_MS_MAX = 86_400_000;
/** Realms one proc may export its endpoint to (the kernel filter allows 64 per endpoint; the rest is headroom). */
export const PROC_EXPORTS_MAX = 16;
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PROGRAM_RE = /^[A-Za-z0-9_][A-Za-z0-9_./-]{0,255}$/;
const SERVICE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A spec the system will not run, with the field at fault. */
export class SpecError extends Error {
  readonly type = 'bad-spec';
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`bad proc spec: ${field} ${detail}`);
    this.name = 'SpecError';
  }
}

export type SpecInput = Partial<ProcSpec> & { program: string };

/** Fills defaults and checks every field. Does not check that the realm or program exist (the scheduler does). */
export function parseSpec(input: unknown): Either<SpecError, ProcSpec> {
  if (input === null || typeof input !== 'object') return left(new SpecError('spec', 'must be an object'));
  const i = input as Record<string, unknown>;
  const fail = (field: string, detail: string) => left(new SpecError(field, detail));
  if (typeof i['program'] !== 'string' || !PROGRAM_RE.test(i['program'])) return fail('program', `must be a program name ([A-Za-z0-9_./-], 1-256 chars), got ${JSON.stringify(i['program'])}`);
  const realm = i['realm'] ?? 'default';
  if (typeof realm !== 'string' || !NAME_RE.test(realm)) return fail('realm', `must match ${NAME_RE}, got ${JSON.stringify(realm)}`);
  const args = i['args'] ?? [];
  if (!Array.isArray(args)) return fail('args', 'must be an array');
  let argBytes: number;
  try {
    argBytes = Buffer.byteLength(JSON.stringify(args));
  } catch {
    return fail('args', 'must be JSON-serializable');
  }
  if (argBytes > PROC_ARGS_BYTES_MAX) return fail('args', `encode to ${argBytes} bytes, over ${PROC_ARGS_BYTES_MAX}; pass large inputs through the data path or a file`);
  const lc = bool(i['lc'], false);
  const dedicated = bool(i['dedicated'], false);
  const evictWithParent = bool(i['evictWithParent'], false);
  if (lc === undefined) return fail('lc', 'must be a boolean');
  if (dedicated === undefined) return fail('dedicated', 'must be a boolean');
  if (evictWithParent === undefined) return fail('evictWithParent', 'must be a boolean');
  const mcpu = i['mcpu'] ?? (lc ? DEFAULT_LC_MCPU : DEFAULT_BE_MCPU);
  if (!isInt(mcpu, 0, PROC_MCPU_MAX)) return fail('mcpu', `must be an integer in [0, ${PROC_MCPU_MAX}] (1000 = one core), got ${JSON.stringify(mcpu)}`);
  if (lc && mcpu === 0) return fail('mcpu', 'must be > 0 for an LC proc: LC procs reserve what they ask for');
  const memMb = i['memMb'] ?? DEFAULT_MEM_MB;
  if (!isInt(memMb, 1, PROC_MEM_MB_MAX)) return fail('memMb', `must be an integer in [1, ${PROC_MEM_MB_MAX}], got ${JSON.stringify(memMb)}`);
  const name = i['name'];
  if (name !== undefined && (typeof name !== 'string' || !SERVICE_NAME_RE.test(name))) return fail('name', `must match ${SERVICE_NAME_RE}, got ${JSON.stringify(name)}`);
  // The name is a token of a KV key (`<realm>.<name>`): an empty token (a trailing dot, two dots) is no key.
  if (name !== undefined && (name.endsWith('.') || name.includes('..'))) return fail('name', `may not end with "." or hold "..", got ${JSON.stringify(name)}`);
  const restart = i['restart'] ?? 'never';
  if (restart !== 'never' && restart !== 'on-failure' && restart !== 'always') return fail('restart', `must be never, on-failure or always, got ${JSON.stringify(restart)}`);
  const maxRestarts = i['maxRestarts'] ?? SERVICE_RESTARTS_MAX_DEFAULT;
  if (!isInt(maxRestarts, 0, SERVICE_RESTARTS_MAX)) return fail('maxRestarts', `must be an integer in [0, ${SERVICE_RESTARTS_MAX}], got ${JSON.stringify(maxRestarts)}`);
  const restartWithinMs = i['restartWithinMs'] ?? DEFAULT_RESTART_WITHIN_MS;
  if (!isInt(restartWithinMs, 1, RESTART_WINDOW_MS_MAX)) return fail('restartWithinMs', `must be an integer in [1, ${RESTART_WINDOW_MS_MAX}], got ${JSON.stringify(restartWithinMs)}`);
  const parent = i['parent'];
  if (parent !== undefined && typeof parent !== 'string') return fail('parent', 'must be a pid string');
  const exports = i['exports'] ?? [];
  if (!Array.isArray(exports) || exports.length > PROC_EXPORTS_MAX) return fail('exports', `must be an array of at most ${PROC_EXPORTS_MAX} realm names`);
  for (const r of exports) {
    if (typeof r !== 'string' || !NAME_RE.test(r)) return fail('exports', `must hold realm names matching ${NAME_RE}, got ${JSON.stringify(r)}`);
    if (r === realm) return fail('exports', `names the proc's own realm ${realm}: its realm reaches it already`);
  }
  if (new Set(exports).size !== exports.length) return fail('exports', 'names a realm twice');
  return right({
    program: i['program'],
    args,
    realm,
    lc,
    mcpu: mcpu as number,
    memMb: memMb as number,
    dedicated,
    ...(name === undefined ? {} : { name: name as string }),
    restart: restart as RestartPolicy,
    maxRestarts: maxRestarts as number,
    restartWithinMs: restartWithinMs as number,
    ...(parent === undefined ? {} : { parent: parent as string }),
    evictWithParent,
    ...(exports.length === 0 ? {} : { exports: exports as string[] }),
  });
}

function bool(v: unknown, dflt: boolean): boolean | undefined {
  if (v === undefined) return dflt;
  return typeof v === 'boolean' ? v : undefined;
}

function isInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}
