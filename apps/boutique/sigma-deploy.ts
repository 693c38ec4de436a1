import type { SigmaClient } from '../../src/client/client.js';
import { RouteStore } from '../../src/gateway/route-store.js';
import { FRONTEND_ROUTES } from './logic/frontend.js';
import { SERVICE_NAMES } from './logic/services.js';

export const BOUTIQUE_PROGRAMS = { 'boutique-service': 'dist/apps/boutique/sigma-service.js', 'boutique-frontend': 'dist/apps/boutique/sigma-frontend.js' } as const;
const START_TIMEOUT_MS = 30_000;

/**
 * Online Boutique on a running cluster: the nine services and the frontend as service procs of `realm`
 * (created if missing), and the frontend's routes (envelope http) on every node's gateway. Needs the
 * programs of BOUTIQUE_PROGRAMS in the cluster config. Returns the pids.
 */
export async function deploySigmaBoutique(client: SigmaClient, realm = 'boutique'): Promise<string[]> {
  if (!(await client.realmRecords()).some((r) => r.name === realm)) await client.createRealm(realm);
  const pids: string[] = [];
  for (const name of SERVICE_NAMES) pids.push(await client.spawn({ program: 'boutique-service', args: [name], name, realm, restart: 'on-failure' }));
  pids.push(await client.spawn({ program: 'boutique-frontend', name: 'frontend', realm, restart: 'on-failure' }));
  for (const pid of pids) await client.waitStart(pid, { timeoutMs: START_TIMEOUT_MS });
  const routes = await RouteStore.open(client.bus);
  for (const [i, [method, path]] of FRONTEND_ROUTES.entries()) {
    const r = await routes.add({ realm, name: `frontend-${i}`, method, path, target: 'frontend', envelope: 'http', deadlineMs: 10_000 });
    if (r._tag === 'Left') throw r.left;
  }
  return pids;
}
