import { fileURLToPath } from 'node:url';
import { startHttpApp, type HttpDeployment } from '../../common/deploy.js';
import { app } from '../app.js';

export type HttpBoutique = HttpDeployment;

/** The HTTP-microservices deployment of Online Boutique: one Node process per service (apps/common/http-server.ts). */
export function startHttpBoutique(): Promise<HttpBoutique> {
  return startHttpApp(app, fileURLToPath(new URL('../app.js', import.meta.url)));
}
