import { dataPathProcTests } from './helpers/datapath-procs.js';

// Forced by the cluster config: the hub routes every descriptor, with the same checks as the kernel.
// Busy polling off here (the bpf suite and the cross-node ones run with the default window): every host
// and the hub block in epoll between frames, the path a cluster configured with busyPollUs 0 takes.
dataPathProcTests('userspace', undefined, { busyPollUs: 0 });
