import { frontendProc } from '../common/sigma.js';
import { app } from './app.js';

/** Online Boutique's frontend on sigma-ts, behind gateway routes with the http envelope. */
export default frontendProc(app);
