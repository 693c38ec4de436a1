// Who wakes up in an idle cluster: `node scripts/idle-probe.mjs <nodes> <boutique|empty|hosts:N> <seconds>` (after a build). Per descendant process: CPU % of a core and voluntary context switches per second, by thread name.
import { readdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from '../dist/src/cluster/launcher.js';
import { defineCluster } from '../dist/src/config/cluster.js';
import { connectBus } from '../dist/src/nats/real.js';
import { SigmaClient, untilScheduler } from '../dist/src/client/client.js';
import { deploySigmaBoutique } from '../dist/apps/boutique/sigma-deploy.js';
const APP = new URL('../dist/apps/boutique/', import.meta.url).pathname;
process.env.SIGMA_LOG = 'warn';
const cfg = defineCluster({ nodes: Number(process.argv[2] ?? 1), nats: { embedded: true, port: 0 }, dataDir: mkdtempSync(join(tmpdir(), 'idle-')), realms: ['default'], gateway: { port: 0 }, programs: { 'boutique-service': join(APP, 'sigma-service.js'), 'boutique-frontend': join(APP, 'sigma-frontend.js') } });
const cluster = await startCluster(cfg);
const bus = await connectBus({ servers: [cluster.natsUrl], name: 'probe' });
const client = await SigmaClient.connect(bus);
await untilScheduler(() => client.createRealm('default'));
const mode = process.argv[3] ?? 'boutique';
if (mode === 'boutique') await deploySigmaBoutique(client);
else if (mode.startsWith('hosts:')) for (let i = 0; i < Number(mode.slice(6)); i++) await client.waitStart(await client.spawn({ program: 'echo', name: `echo${i}`, dedicated: true }), { timeoutMs: 30000 });
await bus.close();
function snap() {
  const out = new Map();
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8'); const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      let cs = 0; const threads = {};
      for (const t of readdirSync(`/proc/${p}/task`)) { const st = readFileSync(`/proc/${p}/task/${t}/status`, 'utf8'); const v = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)[1]); const name = readFileSync(`/proc/${p}/task/${t}/comm`,'utf8').trim(); cs += v; threads[name] = (threads[name] ?? 0) + v; }
      out.set(p, { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * 10, cmd: cmd.slice(1, 3).join(' ').replace(/.*dist\//, '').slice(0, 60) || cmd[0], cs, threads });
    } catch {}
  }
  return out;
}
const desc = (m) => { const s = new Set([String(process.pid)]); let grew = true; while (grew) { grew = false; for (const [p, i] of m) if (!s.has(p) && s.has(String(i.ppid))) { s.add(p); grew = true; } } s.delete(String(process.pid)); return s; };
await new Promise((r) => setTimeout(r, Number(process.env.SETTLE_S ?? 3) * 1000));
const a = snap(); const S = Number(process.argv[4] ?? 10);
await new Promise((r) => setTimeout(r, S * 1000));
const b = snap();
let tot = 0;
for (const p of desc(b)) { const x = a.get(p), y = b.get(p); if (!x) continue; const ms = y.ms - x.ms; tot += ms; const th = Object.entries(y.threads).map(([k, v]) => [k, (v - (x.threads[k] ?? 0)) / S]).filter(([, v]) => v > 0.5).map(([k, v]) => `${k}:${v.toFixed(1)}`).join(' '); console.log(`${p} ${(ms / S / 10).toFixed(2)}% wakeups/s ${((y.cs - x.cs) / S).toFixed(1)} ${y.cmd} | ${th}`); }
console.log(`total ${(tot / S / 10).toFixed(2)} % of a core over ${S} s`);
await cluster.stop(); process.exit(0);
