import { randomUUID } from 'node:crypto';
import type { App } from '../common/app.js';
import { cartState } from './logic/cart.js';
import { FRONTEND_ROUTES, handle } from './logic/frontend.js';
import { handlersOf, SERVICE_NAMES, type ServiceName } from './logic/services.js';

/** Online Boutique, for both deployments (apps/common/). Services in start order: checkout's peers come before it. */
export const app: App = {
  name: 'boutique',
  services: SERVICE_NAMES,
  handlersOf: (s) => handlersOf(s as ServiceName),
  frontend: (req, rpc) => handle(req, { rpc, newSession: randomUUID, nowMs: Date.now }),
  routes: FRONTEND_ROUTES,
  stateOf: (s) => (s === 'cart' ? cartState : undefined),
};
