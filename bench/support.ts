import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { findBinDir, localCluster, OWNER_ROLE, up, urlFor, withClient, type LocalCluster } from '../adapters/postgres/local-cluster.js';
import { migrate } from '../adapters/postgres/migrate.js';
import { projectRoot } from '../adapters/paths.js';
import { staffSecrets } from '../test/support/secrets.js';

export const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
export const seconds = Number(process.env.BENCH_SECONDS ?? 5);
/**
 * The machine's speed drifts (a shared VM), so a benchmark alternates its phases with the reference
 * over several rounds and reports each figure's median: ours and the reference see the same conditions.
 */
export const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A fresh, migrated database on the local primary (brought up if needed), for one benchmark. */
export async function benchDatabase(name: string): Promise<{ url: string; ownerUrl: string; replicaUrl: string; port: number; cluster: LocalCluster; checkpoint: () => Promise<void> }> {
  const cluster = localCluster(projectRoot);
  await up(cluster, say);
  await withClient(urlFor(cluster.primary.port, 'postgres', 'postgres'), async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name} OWNER ${OWNER_ROLE}`);
  });
  // The platform's role appends and reads; the owner migrates, rebuilds and runs pgbench's own tables.
  const url = urlFor(cluster.primary.port, name);
  const ownerUrl = urlFor(cluster.primary.port, name, OWNER_ROLE);
  await migrate(ownerUrl);
  // Each phase starts from a clean checkpoint, so none pays for the previous one's dirty pages, nor
  // for the kernel writing them back meanwhile (seen here: the writeback of pgbench's tables took a
  // fifth of the machine's CPU during the measured burst that followed).
  const checkpoint = () =>
    withClient(urlFor(cluster.primary.port, name, 'postgres'), async (db) => {
      await db.query('VACUUM ANALYZE');
      await db.query('CHECKPOINT');
      spawnSync('sync');
    });
  return { url, ownerUrl, replicaUrl: urlFor(cluster.replica.port, name), port: cluster.primary.port, cluster, checkpoint };
}

const pgbench = join(findBinDir() ?? '/usr/lib/postgresql/15/bin', 'pgbench');

export function pgbenchInit(url: string): void {
  const init = spawnSync(pgbench, ['-i', '-q', '-s', '10', url], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
}

/** `-N`: writes (TPC-B without the contended updates); `-S`: select-only (`-n`: no vacuum, so a standby takes it too); a script: its one statement, select-only too. */
export type PgbenchMode = '-N' | '-S' | { script: string };
const modeArgs = (mode: PgbenchMode) => (mode === '-S' ? ['-S', '-n'] : mode === '-N' ? ['-N'] : ['-n', '-f', mode.script]);
/**
 * The reference: `pgbench -N` (TPC-B without the two contended updates; its default, simple query
 * protocol) with `clients` clients on the same database, measured in the same run.
 */
export const pgbenchCommand = (clients: number, mode: PgbenchMode = '-N') => `pgbench ${modeArgs(mode).join(' ')} -c ${clients} -j 2`;

export function pgbenchTps(url: string, clients: number, durationSeconds = seconds, mode: PgbenchMode = '-N'): number {
  say(`${pgbenchCommand(clients, mode)} -T ${durationSeconds}`);
  const run = spawnSync(pgbench, [...modeArgs(mode), '-c', String(clients), '-j', '2', '-T', String(durationSeconds), url], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`pgbench failed: ${run.stderr}`);
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(run.stdout);
  if (!m) throw new Error(`cannot read tps from pgbench: ${run.stdout}`);
  return Number(m[1]);
}

export const round = (n: number, digits = 0) => Number(n.toFixed(digits));

/** `codex-k8s serve` in a process of its own, once it answers /readyz. */
/** A port nothing listens on now (the kernel's choice): a random one could be a database's of this machine. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Starts `serve` on a free port and waits until it is ready: a server that answers is this one. */
export async function startServe(role: 'api' | 'worker' | 'all', env: Record<string, string>): Promise<{ server: ChildProcess; port: number }> {
  const port = await freePort();
  const server = spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), 'serve', '--role', role], {
    env: { ...process.env, CODEXK8S_WEBHOOK_RATE_LIMIT: '1000000', CODEXK8S_LOG_LEVEL: 'warn', ...staffSecrets, ...env, CODEXK8S_HTTP_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // A benchmark that fails halfway must not leave its server running.
  process.once('exit', () => server.kill('SIGTERM'));
  for (let i = 0; ; i++) {
    if (server.exitCode !== null) throw new Error(`serve --role ${role} exited with ${server.exitCode} before it was ready`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return { server, port };
    } catch {
      if (i > 100) throw new Error('serve did not start');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops `serve` and waits until it has exited (its shutdown drains what it was doing). */
export async function stopServe(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
}
