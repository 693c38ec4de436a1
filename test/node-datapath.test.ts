import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NodeDataPath } from '../src/node/datapath.js';
import { silent } from './helpers/actors.js';

/**
 * Mode selection of the node's data path: `auto` is bpf when the object loads and userspace otherwise,
 * saying why; `bpf` refuses to start without it; `userspace` never touches BPF. The unprivileged case
 * runs in a child dropped to nobody (as test/bpf.test.ts does), so it is exercised by a root CI too.
 */
const script = (mode: string): string => `const { NodeDataPath } = await import(${JSON.stringify(new URL('../src/node/datapath.js', import.meta.url).href)});
  const { pino } = await import('pino');
  try {
    const dp = await NodeDataPath.create({ node: 'n', mode: ${JSON.stringify(mode)}, log: pino({ level: 'silent' }) });
    console.log(JSON.stringify({ mode: dp.mode, reason: dp.reason, status: dp.status() }));
    dp.close();
  } catch (e) { console.log(JSON.stringify({ error: e.message })); }`;

async function unprivileged(mode: string): Promise<{ mode?: string; reason?: string; error?: string }> {
  const run = promisify(execFile);
  const args = ['--input-type=module', '-e', script(mode)];
  const { stdout } = process.getuid?.() === 0
    ? await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, ...args])
    : await run(process.execPath, args);
  return JSON.parse(stdout.trim().split('\n').pop()!) as { mode?: string; reason?: string; error?: string };
}

test('node datapath - without privileges, auto falls back to userspace and says why; bpf refuses to start', async (t) => {
  const auto = await unprivileged('auto');
  t.is(auto.mode, 'userspace', JSON.stringify(auto));
  t.regex(auto.reason ?? '', /auto: userspace, because .*(root|CAP_BPF|addon)/);
  const forced = await unprivileged('bpf');
  t.regex(forced.error ?? '', /mode 'bpf' was configured but .*; use 'auto' or 'userspace'/);
});

test('node datapath - userspace is chosen when configured, even where BPF would load', async (t) => {
  const dp = await NodeDataPath.create({ node: 'n', mode: 'userspace', log: silent });
  try {
    t.is(dp.mode, 'userspace');
    t.is(dp.status().kernel, undefined);
    t.deepEqual(dp.status().pools, {});
  } finally {
    dp.close();
  }
});
