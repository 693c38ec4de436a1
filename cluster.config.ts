import { defineCluster } from './src/config/cluster.js';

/**
 * The local cluster `npm run cluster` starts: an embedded nats-server with JetStream, three node
 * processes on this machine, and one realm. Point `nats.servers` at an existing NATS cluster to run
 * the same code across machines.
 */
export default defineCluster({
  name: 'sigma',
  nodes: 3, // or a list: [{ id, mcpu, memMb, procs: false }, ...]; procs: false is a control-plane node that runs none (docs/machines.md)
  node: { mcpu: 2000, memMb: 4096 },
  realms: ['default'],
  nats: { embedded: true, port: 4222 },
  gateway: { port: 8080 }, // node-1 listens on 8080, node-2 on 8081, ... (docs/gateway.md)
  routes: [], // { realm, name, method, path, target }: HTTP routes on every gateway; `sigma route add` changes them at run time
  datapath: 'auto', // bpf when the sk_msg object loads (root), else the userspace hub
  poolMb: 64, // shared memory per realm and node
  busyPollUs: 200, // hosts keep polling the data path this long after traffic (0: always block)
  isolation: 'auto', // sandbox proc hosts where the node can (root, Landlock, seccomp); 'required' refuses hosts otherwise
  dataDir: '.sigma',
  programs: {
    // Online Boutique (apps/): `node dist/apps/boutique/deploy.js` on a running cluster
    'boutique-service': './dist/apps/boutique/sigma-service.js',
    'boutique-frontend': './dist/apps/boutique/sigma-frontend.js',
  },
});
