#!/usr/bin/env node
/**
 * `npm run sim -- <scenario|all> [--seeds N] [--seed S] [--json]`: the deterministic simulator. Its
 * pieces (virtual time and seeded randomness in src/ports, a simulated NATS) are being built; until the
 * runner exists this says so plainly and exits 2 instead of pretending to have run anything.
 */
console.error('sim: the simulator is not built yet (see simulations/README.md); nothing was run');
process.exit(2);
