import { frontendProc } from '../common/sigma.js';
import { app } from './app.js';

/** The hotel frontend on sigma-ts, behind gateway routes (http envelope). */
export default frontendProc(app);
