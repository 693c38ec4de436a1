/** Deploying and managing programs from a client (the CLI, an application): bundle here, store over NATS. */
import { BUCKET } from '../control/protocol/index.js';
import type { Bus } from '../nats/types.js';
import { bundleProgram } from './bundle.js';
import { checkName, ProgramStore, type ProgramRecord, type ProgramVersion } from './store.js';

export type ProgramInfo = ProgramRecord;
export interface DeployResult extends ProgramVersion {
  realm: string;
  name: string;
}

export async function programStore(bus: Bus): Promise<ProgramStore> {
  return ProgramStore.open(bus, await bus.kv(BUCKET.realms));
}

/** Bundles `path` (a .ts/.js file or a directory), checks it, stores it as the next version of (realm, name). */
export async function deploy(bus: Bus, path: string, o: { name?: string; realm?: string; typeCheck?: boolean } = {}): Promise<DeployResult> {
  const realm = o.realm ?? 'default';
  checkName('realm', realm);
  if (o.name !== undefined) checkName('program', o.name);
  const b = await bundleProgram(path, { typeCheck: o.typeCheck !== false });
  const name = o.name ?? b.defaultName;
  checkName('program', name);
  const v = await (await programStore(bus)).deploy(realm, name, b);
  return { realm, name, ...v };
}
