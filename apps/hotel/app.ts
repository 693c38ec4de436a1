import type { App } from '../common/app.js';
import { hotelFrontend, HOTEL_ROUTES } from './logic/frontend.js';
import { reservationState } from './logic/reservation.js';
import { hotelHandlers, HOTEL_SERVICES } from './logic/services.js';

/** DeathStarBench's hotel reservation, for both deployments (apps/common/). */
export const app: App = { name: 'hotel', services: HOTEL_SERVICES, handlersOf: hotelHandlers, frontend: hotelFrontend, routes: HOTEL_ROUTES, stateOf: (s) => (s === 'reservation' ? reservationState : undefined) };
