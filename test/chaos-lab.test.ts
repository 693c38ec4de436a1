import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createLab, destroyLab, hasNft, labLinks, labNamespaces, labTag, labUnavailable, setCut, setLoss, sh, spawnIn, type Lab } from '../src/chaos/lab.js';

const why = labUnavailable();
const labTest = why === undefined ? test.serial : test.serial.skip;
if (why !== undefined) {
  test('chaos lab - skipped', (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
}

/** Whether machine `from` reaches `to` (one ping, a short wait). */
const reaches = (lab: Lab, from: number, to: number): boolean => spawnSync('ip', ['netns', 'exec', lab.machines[from]!.ns, 'ping', '-c', '1', '-W', '1', lab.machines[to]!.addr]).status === 0;

labTest('chaos lab - machines reach each other over the bridge; a cut machine does not until healed; destroy leaves nothing', (t) => {
  const lab = createLab(['a', 'b', 'c']);
  try {
    t.deepEqual(labNamespaces(lab.tag).sort(), lab.machines.map((m) => m.ns).sort());
    t.true(reaches(lab, 0, 1) && reaches(lab, 1, 2), 'the bridge joins them');
    // The lab's addresses exist inside its namespaces only.
    t.false(sh('ip', ['-o', 'addr', 'show']).includes(lab.machines[0]!.addr), 'no lab address in the root namespace');
    setCut(lab.machines[1]!, true);
    t.false(reaches(lab, 0, 1), 'cut off');
    setCut(lab.machines[1]!, false);
    t.true(reaches(lab, 0, 1), 'healed');
    if (hasNft()) {
      setLoss(lab.machines[2]!, 100);
      t.false(reaches(lab, 0, 2), 'a 100 % lossy link drops everything');
      setLoss(lab.machines[2]!, 0);
      t.true(reaches(lab, 0, 2));
    } else t.log('nft missing: lossy links not tried');
    const sleeper = spawnIn(lab.machines[0]!, 'sleep', ['600'], { stdio: 'ignore' });
    t.truthy(sleeper.pid);
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
