import { serviceProc } from '../common/sigma.js';
import { app } from './app.js';

/** A hotel service on sigma-ts (args: [service name]). */
export default serviceProc(app);
