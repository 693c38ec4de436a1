#!/usr/bin/env node
/**
 * One command, on a running cluster (`npm run cluster`): `node dist/apps/boutique/deploy.js [--realm R]`
 * deploys Online Boutique on sigma-ts (then `curl localhost:8080/`); `--http` starts the HTTP
 * microservices deployment instead and stays in the foreground. NATS: --nats, $SIGMA_NATS, or the
 * embedded server of cluster.config.ts with the credentials under its data directory.
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SigmaClient } from '../../src/client/client.js';
import { ADMIN_USER, CREDENTIALS_FILE, withUser } from '../../src/cluster/nats-users.js';
import { connectBus } from '../../src/nats/real.js';
import { startHttpBoutique } from './http/deploy.js';
import { deploySigmaBoutique } from './sigma-deploy.js';

const o = new Command().option('--realm <realm>', 'realm to deploy into', 'default').option('--nats <url>').option('--http', 'the HTTP microservices deployment instead').parse().opts<{ realm: string; nats?: string; http?: boolean }>();
if (o.http === true) {
  const d = await startHttpBoutique();
  console.log(`Online Boutique (HTTP microservices) on http://127.0.0.1:${d.port}/ ; Ctrl-C stops it`);
  process.on('SIGINT', () => void d.stop().then(() => process.exit(0)));
} else {
  const config = ((await import(resolve('dist/cluster.config.js'))) as { default: { nats: { port?: number }; dataDir: string } }).default;
  const creds = join(resolve(config.dataDir), CREDENTIALS_FILE);
  const url = o.nats ?? process.env['SIGMA_NATS'] ?? (existsSync(creds) ? withUser(`nats://127.0.0.1:${config.nats.port ?? 4222}`, ADMIN_USER, (JSON.parse(readFileSync(creds, 'utf8')) as { admin: string }).admin) : 'nats://127.0.0.1:4222');
  const bus = await connectBus({ servers: [url], name: 'boutique-deploy' });
  const pids = await deploySigmaBoutique(await SigmaClient.connect(bus), o.realm);
  console.log(`Online Boutique on sigma-ts, realm ${o.realm}: ${pids.length} procs; every node's gateway serves it (node-1: http://127.0.0.1:8080/)`);
  await bus.close();
}
