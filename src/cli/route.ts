import type { Command } from 'commander';
import type { SigmaClient } from '../client/client.js';
import { ROUTE_BODY_BYTES_MAX, ROUTE_DEADLINE_MS_MAX, type RouteRecord } from '../control/protocol/index.js';
import { RouteStore } from '../gateway/route-store.js';
import { EXIT, table } from './format.js';

type WithClient = <T>(fn: (c: SigmaClient) => Promise<T>) => Promise<T>;
type Out = (human: string, data: unknown) => void;

/**
 * `sigma route add|ls|rm`: a realm's gateway routes (src/gateway/route-store.ts). Every command acts
 * for one realm (--realm, default `default`) and reads or writes only that realm's routes.
 */
export function routeCommands(program: Command, withClient: WithClient, out: Out, wholeNumber: (min: number, max: number) => (v: string) => number): void {
  const route = program.command('route').description("a realm's HTTP routes on every node's gateway");
  route
    .command('add <name> <method> <path> [targets...]')
    .description('routes METHOD PATH (/exact, /item/:id, /static/*) to a service (default: the one named like the route), or to the stages of a chain')
    .option('--realm <realm>', 'realm of the route and its targets', 'default')
    .option('--host <host>', 'only requests for this Host')
    .option('--envelope <kind>', 'body: the proc gets the body; http: method, URL and headers too (src/gateway/envelope.ts)', 'body')
    .option('--body-bytes-max <n>', 'larger bodies get 413', wholeNumber(0, ROUTE_BODY_BYTES_MAX))
    .option('--deadline-ms <ms>', 'the call (the whole chain) answers within this, or 504', wholeNumber(1, ROUTE_DEADLINE_MS_MAX))
    .action((name: string, method: string, path: string, targets: string[], o: { realm: string; host?: string; envelope: string; bodyBytesMax?: number; deadlineMs?: number }) =>
      withClient(async (c) => {
        if (!(await c.realmRecords()).some((r) => r.name === o.realm)) return refuse(`no realm ${o.realm}`);
        const store = await RouteStore.open(c.bus);
        const r = await store.add({ realm: o.realm, name, method, path, envelope: o.envelope, ...(targets.length === 0 ? {} : { target: targets }), ...(o.host === undefined ? {} : { host: o.host }), ...(o.bodyBytesMax === undefined ? {} : { bodyBytesMax: o.bodyBytesMax }), ...(o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs }) });
        if (r._tag === 'Left') return refuse(r.left.message);
        out(`route ${o.realm}/${name}: ${describe(r.right)}`, { ok: true, route: r.right });
      }),
    );
  route
    .command('ls')
    .option('--realm <realm>', 'realm', 'default')
    .action((o: { realm: string }) =>
      withClient(async (c) => {
        const rs = await (await RouteStore.open(c.bus)).list(o.realm);
        out(table(rs.map((r) => ({ name: r.name, method: r.method, path: r.path, host: r.host, target: r.target.join(' -> '), envelope: r.envelope, bodyMax: r.bodyBytesMax, deadlineMs: r.deadlineMs })), ['name', 'method', 'path', 'host', 'target', 'envelope', 'bodyMax', 'deadlineMs']), rs);
      }),
    );
  route
    .command('rm <name>')
    .option('--realm <realm>', 'realm', 'default')
    .action((name: string, o: { realm: string }) =>
      withClient(async (c) => {
        if (!(await (await RouteStore.open(c.bus)).remove(o.realm, name))) return refuse(`realm ${o.realm} has no route ${name}`);
        out(`route ${o.realm}/${name} removed`, { ok: true });
      }),
    );
}

function describe(r: RouteRecord): string {
  return `${r.method} ${r.host ?? ''}${r.path} -> ${r.target.join(' -> ')} (${r.envelope}, body <= ${r.bodyBytesMax} B, deadline ${r.deadlineMs} ms)`;
}

function refuse(message: string): void {
  console.error(`sigma: ${message}`);
  process.exitCode = EXIT.refused;
}
