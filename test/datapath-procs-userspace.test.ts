import { dataPathProcTests } from './helpers/datapath-procs.js';

// Forced by the cluster config: the hub routes every descriptor, with the same checks as the kernel.
dataPathProcTests('userspace', undefined);
