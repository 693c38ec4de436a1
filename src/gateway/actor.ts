import type { Factory } from '../actors/index.js';
import { decodeJson, PROC_EVENT, realmRecord, routeRecord, type ProcEvent, type RouteRecord } from '../control/protocol/index.js';
import type { Bus, Kv, KvWatch, Subscription } from '../nats/types.js';
import type { NameLookup } from '../datapath/proc-data.js';
import { Gateway, type GatewayDataPath, type GatewayLimits } from './gateway.js';
import type { GatewayMetrics } from './metrics.js';

export type GatewayMsg = { type: 'route'; key: string; route: RouteRecord | undefined } | { type: 'realm'; realm: string; active: boolean } | { type: 'proc'; ev: ProcEvent } | { type: 'watch-ended'; error: unknown };

export interface GatewayActorDeps {
  node: string;
  port: number;
  host?: string;
  datapath: GatewayDataPath | undefined;
  lookup: (realm: string) => NameLookup;
  routesKv: Kv;
  /** The realms bucket: a removed realm's routes stop being served. */
  realmsKv: Kv;
  bus: Bus;
  metrics: GatewayMetrics;
  limits?: Partial<GatewayLimits>;
  /** Told the port once the gateway listens (each start, restarts included). */
  onListening?: (port: number) => void;
}

/**
 * The gateway as a supervised actor of the node's system: it owns the HTTP server and follows the
 * routes bucket (every realm's routes, replayed from the latest values at start) and this node's proc
 * events (for /metrics). A failure it cannot handle (the port taken, the watch lost) crashes it; its
 * supervisor restarts it, which listens and replays the routes again. A bad record is skipped, logged.
 */
export function gatewayActor(d: GatewayActorDeps): Factory<GatewayMsg> {
  return (ctx) => {
    const gw = new Gateway({ node: d.node, port: d.port, datapath: d.datapath, lookup: d.lookup, log: ctx.log, metrics: d.metrics, ...(d.host === undefined ? {} : { host: d.host }), ...(d.limits === undefined ? {} : { limits: d.limits }) });
    let watch: KvWatch | undefined;
    let realms: KvWatch | undefined;
    let events: Subscription | undefined;
    return {
      async preStart() {
        // Realms first: their latest states are replayed before any route arrives.
        realms = await d.realmsKv.watch({ include: 'latest' });
        const r = realms;
        void (async () => {
          try {
            for await (const c of r) {
              const rec = c.value === null ? undefined : realmRecord(decodeJson(c.value));
              ctx.self.tell({ type: 'realm', realm: c.key, active: rec?.state === 'active' });
            }
          } catch (e) {
            ctx.self.tell({ type: 'watch-ended', error: e });
          }
        })();
        const port = await gw.start();
        watch = await d.routesKv.watch({ include: 'latest' });
        const w = watch;
        void (async () => {
          try {
            for await (const c of w) ctx.self.tell({ type: 'route', key: c.key, route: c.value === null ? undefined : decode(c.value, c.key, ctx.log) });
          } catch (e) {
            ctx.self.tell({ type: 'watch-ended', error: e });
          }
        })();
        events = d.bus.subscribe(PROC_EVENT.subject);
        const ev = events;
        void (async () => {
          for await (const m of ev) {
            const e = PROC_EVENT.message(decodeJson(m.data));
            if (e !== undefined && e.node === d.node) ctx.self.tell({ type: 'proc', ev: e });
          }
        })();
        ctx.log.info({ port }, `gateway listening on ${port}`);
        d.onListening?.(port);
      },
      receive(msg) {
        switch (msg.type) {
          case 'route':
            if (msg.route === undefined) gw.deleteRoute(msg.key);
            else gw.putRoute(msg.key, msg.route);
            return;
          case 'realm':
            gw.setRealm(msg.realm, msg.active);
            return;
          case 'proc': {
            const realm = msg.ev.pid.slice(0, Math.max(0, msg.ev.pid.indexOf('.')));
            if (msg.ev.type === 'started') d.metrics.procStarted(realm);
            else d.metrics.procExited(realm, msg.ev.status.kind);
            return;
          }
          case 'watch-ended':
            throw new Error(`the routes watch ended: ${String(msg.error)}`);
        }
      },
      async postStop() {
        watch?.stop();
        realms?.stop();
        events?.unsubscribe();
        await gw.close();
      },
    };
  };
}

function decode(value: Uint8Array, key: string, log: { warn: (o: object, m: string) => void }): RouteRecord | undefined {
  const r = routeRecord(decodeJson(value));
  if (r === undefined || `${r.realm}.${r.name}` !== key) {
    log.warn({ key }, 'gateway: a malformed route record is ignored');
    return undefined;
  }
  return r;
}
