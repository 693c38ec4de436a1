import { crossNodeTests } from './helpers/datapath-cross.js';

// Two nodes in userspace mode (no BPF, by config): each hub hands other nodes' descriptors to the channel.
crossNodeTests('userspace', undefined);
