import { bpfStatus } from '../src/native/bpf.js';
import { crossNodeTests } from './helpers/datapath-cross.js';

// Two nodes, each with the kernel path (as root; CI is), joined by the node-to-node channel.
const s = bpfStatus();
crossNodeTests('bpf', s.available ? undefined : s.reason);
