/** The data path: shared-memory pools, descriptor ownership, credits, the hub and endpoints. */
export { Pool, OWNER_MAX, POOL_CAS_SPINS_MAX, type Allocation, type AllocError, type BufferInfo, type ClassStats, type PoolStats } from './pool.js';
export { CLASS_BYTES_MAX, CLASS_BYTES_MIN, PAGE_BYTES_DEFAULT, POOL_BYTES_MAX, defaultClassSizes, type LayoutOptions, type PoolLayout } from './pool-layout.js';
export { Ownership, type BufferRef, type RejectCounts } from './ownership.js';
export { CreditGate, CreditReturner, type CreditGateOptions, type CreditReturnOptions, type CreditWaitError } from './credits.js';
export { RealmTable, type RouteVerdict } from './policy.js';
export { FRAME_BYTES, FLAG_CREDIT, SocketLink, linkPair, encodeFrame, decodeFrame, type Descriptor, type FrameLink } from './frames.js';
export { Hub, DROP_REASONS, type DropReason, type HubOptions, type HubStats, type Registration, type Router } from './hub.js';
export { Endpoint, type EndpointOptions, type EndpointStats, type Message, type SendError } from './endpoint.js';
export * from './errors.js';
export { RemoteChannel, DEFAULT_REMOTE_OPTIONS, type LocalSide, type RemoteChannelOptions, type RemoteStats } from './remote.js';
export * from './remote-errors.js';
