import { bpfStatus } from '../src/native/bpf.js';
import { dataPathProcTests } from './helpers/datapath-procs.js';

// The kernel path: as root (CI is), the sk_msg verdict routes descriptors between proc hosts.
const s = bpfStatus();
dataPathProcTests('bpf', s.available ? undefined : s.reason);
