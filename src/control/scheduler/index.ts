export { schedulerActor, STASH_MAX } from './actor.js';
export { EVICT_WITH_PARENT_GRACE_MS, EXIT_WRITE_ATTEMPTS_MAX, EXIT_WRITE_RETRY_MS } from './exits.js';
export { LOCAL_FIRST_BE_MAX } from './placing.js';
export { REALM_REMOVE_GRACE_MS } from './realms.js';
export type { SchedulerDeps, SchedulerMsg } from './state.js';
