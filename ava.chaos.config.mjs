// The chaos tests run real clusters of three machines (network namespaces) on this machine's cores: they
// run after the rest, on their own, rather than beside the data-path benchmark's busy-polling hosts
// (a CI run saw a chaos world fail to start while those spun).
export default {
  files: ['dist/test/chaos.test.js'],
  timeout: '60s',
  workerThreads: false,
};
