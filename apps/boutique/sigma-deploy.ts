import type { SigmaClient } from '../../src/client/client.js';
import { deploySigmaApp } from '../common/deploy.js';
import { app } from './app.js';

/** The programs cluster.config.ts names for Online Boutique. */
export const BOUTIQUE_PROGRAMS = { service: 'boutique-service', frontend: 'boutique-frontend' } as const;

/** Online Boutique on a running cluster: its services and frontend as procs of `realm`, its routes on every gateway. */
export function deploySigmaBoutique(client: SigmaClient, realm = 'default'): Promise<string[]> {
  return deploySigmaApp(client, app, BOUTIQUE_PROGRAMS, realm);
}
