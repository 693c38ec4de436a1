/** The NATS port's public face: the interface, its errors, the real binding and the server launcher. */
export * from './types.js';
export * from './errors.js';
export { connectBus, type ConnectOptions } from './real.js';
export { startNatsServer, findNatsServer, type NatsServer, type NatsServerOptions } from './server.js';
export { matches } from './subject.js';
