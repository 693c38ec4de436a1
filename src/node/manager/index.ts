export { nodeManager } from './actor.js';
export { ENDPOINT_LINGER_MS } from './datapath-glue.js';
export { CANCEL_GRACE_MS, RUNNING_WRITE_DELAY_MS } from './procs.js';
export { AWAIT_CREATE_HEARTBEATS, AWAIT_CREATE_READS_MAX } from './records.js';
export type { NodeManagerConfig, NodeManagerDeps, NodeMsg, ProgramFiles } from './state.js';
