import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SANDBOX_BINARY, trialStart } from './host-sandbox.js';

export { SANDBOX_BINARY };
/** Landlock ABI 4 is the first with TCP rules: below it a host could connect anywhere. */
export const LANDLOCK_ABI_MIN = 4;

/** What this node can enforce on its proc hosts, and in plain words what it cannot. */
export interface IsolationStatus {
  sandboxed: boolean;
  landlockAbi: number;
  /** Each protection that is missing, and why (empty when sandboxed). */
  missing: string[];
}

let cached: IsolationStatus | undefined;

/** Asks the wrapper (once per process) what the kernel and this user allow. */
export function isolationStatus(): IsolationStatus {
  if (cached !== undefined) return cached;
  const missing: string[] = [];
  let landlockAbi = 0;
  if (process.platform !== 'linux') missing.push(`proc host sandbox: needs Linux (this is ${process.platform})`);
  else if (process.getuid?.() !== 0) missing.push('proc host sandbox: the node runs as a user (it needs root to give each realm a uid of its own)');
  else if (!existsSync(SANDBOX_BINARY)) missing.push(`proc host sandbox: ${SANDBOX_BINARY} was not built (npm run build; it needs gcc and libseccomp-dev)`);
  else {
    try {
      const p = JSON.parse(execFileSync(SANDBOX_BINARY, ['--probe'], { encoding: 'utf8' })) as { landlockAbi: number; seccomp: boolean };
      landlockAbi = p.landlockAbi;
      if (p.landlockAbi < LANDLOCK_ABI_MIN) missing.push(`Landlock ABI ${p.landlockAbi} < ${LANDLOCK_ABI_MIN}: no file-system and TCP confinement of proc hosts`);
      if (!p.seccomp) missing.push('seccomp unavailable: no syscall filter on proc hosts');
      if (missing.length === 0) {
        const trial = trialStart();
        if (trial !== undefined) missing.push(`proc host sandbox: a confined host could not start (${trial})`);
      }
    } catch (e) {
      missing.push(`proc host sandbox: the probe failed (${(e as Error).message})`);
    }
  }
  cached = { sandboxed: missing.length === 0, landlockAbi, missing };
  return cached;
}
