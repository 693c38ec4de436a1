import { fileURLToPath } from 'node:url';

/** The package a bundle imports `sigma-ts` from: this one (dist/src/programs/ is three levels down). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
