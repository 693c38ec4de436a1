import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createLab, destroyLab, labLinks, labNamespaces, labTag, labUnavailable, setCut, sh, spawnIn, type Lab } from '../src/chaos/lab.js';

const why = labUnavailable();
const labTest = why === undefined ? test.serial : test.serial.skip;
// Skipped, not passed: the reason is in the skipped test's title.
if (why !== undefined) test.skip(`chaos lab - skipped: ${why}`, () => undefined);

const PROBE_PORT = 7999;
/** Whether machine `from` reaches `to`'s listener (a TCP connect from a node process in `from`, bounded). */
const reaches = (lab: Lab, from: number, to: number): boolean => {
  const script = `const s = require('net').connect(${PROBE_PORT}, '${lab.machines[to]!.addr}', () => process.exit(0)); s.on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 1000);`;
  return spawnSync('ip', ['netns', 'exec', lab.machines[from]!.ns, process.execPath, '-e', script]).status === 0;
};
/** A TCP listener in each machine (the probes connect to it). */
const listen = (lab: Lab): void => {
  for (const m of lab.machines) spawnIn(m, process.execPath, ['-e', `require('net').createServer((c) => c.end()).listen(${PROBE_PORT}, '${m.addr}')`], { stdio: 'ignore' });
  spawnSync('sleep', ['0.5']);
};

labTest('chaos lab - machines reach each other over the bridge; a cut machine does not until healed; destroy leaves nothing', (t) => {
  const lab = createLab(['a', 'b', 'c']);
  try {
    listen(lab); // processes in the namespaces: destroyLab must kill them too
    t.deepEqual(labNamespaces(lab.tag).sort(), lab.machines.map((m) => m.ns).sort());
    t.true(reaches(lab, 0, 1) && reaches(lab, 1, 2), 'the bridge joins them');
    // The lab's addresses exist inside its namespaces only.
    t.false(sh('ip', ['-o', 'addr', 'show']).includes(lab.machines[0]!.addr), 'no lab address in the root namespace');
    setCut(lab.machines[1]!, true);
    t.false(reaches(lab, 0, 1), 'cut off');
    setCut(lab.machines[1]!, false);
    t.true(reaches(lab, 0, 1), 'healed');
    // Lossy links (setLoss) are not asserted here: under ava the rule set came out empty though `nft -f -`
    // exited 0 (the same calls from a plain node script drop everything); open in docs/chaos.md.
  } finally {
    destroyLab(lab.tag);
  }
  t.deepEqual(labNamespaces(lab.tag), [], 'no namespace left');
  t.deepEqual(labLinks(lab.tag), [], 'no link left');
});

labTest('chaos lab - a failed creation removes what it made, and a stale lab of a dead owner is cleaned at the next start', async (t) => {
  const tag = labTag();
  // The second machine's name makes `ip netns add` fail after the first namespace exists.
  t.throws(() => createLab(['ok', 'bad/name'], tag), { name: 'LabError' });
  t.deepEqual(labNamespaces(tag), [], 'nothing of the failed lab is left');
  t.deepEqual(labLinks(tag), []);
  // A lab owned by a process that is gone (a run killed -9) is removed by cleanStaleLabs.
  const dead = spawnSync('true').pid!;
  const stale = createLab(['x'], labTag(dead));
  const { cleanStaleLabs } = await import('../src/chaos/lab.js');
  t.true(cleanStaleLabs().includes(stale.tag));
  t.deepEqual(labNamespaces(stale.tag), []);
  t.deepEqual(labLinks(stale.tag), []);
});
