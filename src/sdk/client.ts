/**
 * The client library for applications: `import { connect } from 'sigma-ts/client'`. It finds the
 * cluster as the `sigma` CLI does (an explicit URL, SIGMA_NATS, the context file of `npm run cluster`).
 */
import { SigmaClient } from '../client/client.js';
import { findCluster, NoClusterError, redact } from '../cluster/context.js';
import { connectBus } from '../nats/real.js';

export { DataPathCallError, SigmaClient, untilScheduler, WaitTimeoutError } from '../client/client.js';
export { ControlError } from '../control/errors.js';
export { NoClusterError, ContextError, findCluster, writeContext, readContext, contextFile } from '../cluster/context.js';
export type { ProgramInfo, DeployResult } from '../programs/client.js';
export { DeployError } from '../programs/errors.js';
export type { ProcRecord, NameRecord, NodeRecord } from '../control/protocol/index.js';
export type { SpecInput } from '../proc/spec.js';
export type { Status } from '../proc/types.js';

export interface Connection {
  client: SigmaClient;
  /** Where the cluster was found (the URL without its password, and its source). */
  readonly address: { url: string; source: string };
  close(): Promise<void>;
}

/** Connects to the cluster; NoClusterError says which address was tried and where it came from. */
export async function connect(o: { nats?: string; name?: string } = {}): Promise<Connection> {
  const address = await findCluster(o.nats === undefined ? {} : { flag: o.nats });
  if (address === undefined) throw new NoClusterError(undefined, 'no --nats, no SIGMA_NATS and no context file: start one with `npm run cluster`, or say where it is');
  const bus = await connectBus({ servers: [address.url], name: o.name ?? 'sigma-app' }).catch((e: unknown) => {
    throw new NoClusterError(address, (e as Error).message);
  });
  const client = await SigmaClient.connect(bus);
  return { client, address: { url: redact(address.url), source: address.source }, close: () => bus.close() };
}
