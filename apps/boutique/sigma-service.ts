import { serviceProc } from '../common/sigma.js';
import { app } from './app.js';

/** An Online Boutique service on sigma-ts (args: [service name]); spawn it under that name. */
export default serviceProc(app);
