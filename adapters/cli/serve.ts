import type { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { ConfigError, databaseConfig, githubConfig, httpConfig, integer, readConfig, runsConfig, shutdownTimeoutMs, staffApiConfig } from '../config.js';
import { mountStaffApi } from '../http/api/mount.js';
import { githubDirectory } from '../github/directory.js';
import { githubOAuth } from '../github/oauth.js';
import { createReplicaReads } from '../postgres/replica-reads.js';
import { setupCommands } from '../../commands/setup.js';
import { runReactor } from '../reactors/runner.js';
import { lookForExpiredLeases, runScheduler } from '../reactors/run-scheduler.js';
import { kubernetesSettings, startKubernetesWorker } from '../kubernetes/worker.js';
import { createApp } from '../http/server.js';
import { createMetrics } from '../http/metrics.js';
import { githubWebhook } from '../http/webhook.js';
import { parseLearningModeDefault } from '../../domain/access/permissions.js';
import { parseTriggers } from '../../domain/webhooks/trigger-policy.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createLogger } from '../log.js';
import { createEventStore } from '../postgres/event-store.js';
import { sharedTail } from '../postgres/shared-tail.js';
import { createPools } from '../postgres/pools.js';
import { createWaker } from '../postgres/subscription.js';
import { allProjections } from '../../projections/index.js';
import { runProjection } from '../../projections/runner.js';
import { CliError } from './errors.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the platform: --role worker runs the projections (the API joins with the webhook ingress)')
    .option('--role <role>', 'api, worker or all', 'all')
    .option('--only <names>', 'comma-separated projections to run (default: all)')
    .action(async (options: { role: string; only?: string }) => {
      if (!['api', 'worker', 'all'].includes(options.role)) throw new CliError('--role must be api, worker or all');
      const config = databaseConfig();
      const only = options.only?.split(',').map((s) => s.trim()).filter(Boolean);
      if (only?.length === 0) throw new CliError('--only names no projection (leave it out to run them all)');
      const unknown = only?.filter((n) => !allProjections.some((p) => p.name === n)) ?? [];
      if (unknown.length > 0) throw new CliError(`unknown projection ${unknown.join(', ')}`);
      // Every setting is read and checked before anything is opened: a bad one refuses the start with
      // its message, and leaves no process that answers ready and does nothing (a pool, a listening
      // socket or a projection opened before it would keep the process alive).
      const batchSize = integer(process.env, 'CODEXK8S_PROJECTION_BATCH_SIZE', 1000, 1, 100_000);
      const shutdownAfterMs = shutdownTimeoutMs();
      const runs = runsConfig();
      const ingress = options.role !== 'worker' ? ingressSettings() : undefined;
      const kubernetes = options.role !== 'api' ? kubernetesSettings() : undefined;
      const workerPort = options.role === 'worker' ? integer(process.env, 'CODEXK8S_HTTP_PORT', 8080, 0, 65535) : undefined;
      const log = createLogger();
      const pools = createPools(config, `codex-k8s-${options.role}`);
      const store = createEventStore(pools.primary);
      const waker = await createWaker(config.primaryUrl);
      const controller = new AbortController();
      const stop = (signal: NodeJS.Signals) => {
        if (controller.signal.aborted) {
          // A second signal, of either kind: the operator will not wait for the work in flight.
          log.warn({ signal }, 'stopping now, with work still in flight');
          process.exit(1);
        }
        log.info({ signal, timeout_ms: shutdownAfterMs }, 'stopping');
        controller.abort();
        // Whatever is still blocked (a statement waiting on a lock, a pool wait) does not keep the
        // process, or its leases, past the deadline: the leases' sessions end with it.
        setTimeout(() => {
          log.warn('shutdown deadline passed; exiting with work still in flight');
          process.exit(1);
        }, shutdownAfterMs).unref();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      const tasks: Promise<void>[] = [];
      const metrics = createMetrics();
      let server: Server | undefined;
      if (ingress) {
        const { http, staff, github, triggers, read } = ingress;
        const directory = githubDirectory(github.apiUrl);
        const app = createApp({
          trustedProxyHops: http.trustedProxyHops,
          primary: pools.primary,
          metrics,
          log,
          mount: (router) => {
            router.post('/api/v1/webhooks/github', githubWebhook({
              store, triggers, learningModeDefault: http.learningModeDefault, secrets: http.webhookSecrets, metrics,
              limits: { verifiedPerSecond: http.webhookRateLimit, unverifiedPerSecondPerAddress: http.webhookUnverifiedRateLimit },
            }));
            mountStaffApi(router, {
              config: staff, store, reads: createReplicaReads(pools, read), github: directory, providers: { github: directory }, triggers,
              githubLogin: staff.oauth ? githubOAuth({ oauthUrl: staff.oauth.url, apiUrl: github.apiUrl, clientId: staff.oauth.clientId, clientSecret: staff.oauth.clientSecret }) : undefined,
              learningModeDefault: http.learningModeDefault, log,
            });
          },
        });
        if (staff.bootstrapOwnerEmail) {
          const setup = setupCommands({ store, github: directory, providers: { github: directory }, emailHashKey: staff.emailHashKey, now: () => new Date().toISOString() });
          const outcome = await setup.bootstrapOwner(staff.bootstrapOwnerEmail, { correlationId: `bootstrap-${randomUUID()}`, actor: { type: 'system', id: 'bootstrap' } });
          log.info(outcome === 'allowed' ? 'CODEXK8S_BOOTSTRAP_OWNER_EMAIL: allowed as the platform owner' : 'CODEXK8S_BOOTSTRAP_OWNER_EMAIL: known already, left as it is');
        }
        server = await listen(app, http.port);
        const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
        log.info({ url: base }, `listening on ${base}: GitHub webhooks go to POST ${base}/api/v1/webhooks/github; try curl ${base}/readyz, and ${base}/metrics`);
        tasks.push(closeOnAbort(server, controller.signal));
      }
      if (kubernetes) {
        // The followers below share their reads of the log's tail: one query per wake, not one each.
        const followed = sharedTail(store);
        const running = allProjections.filter((p) => !only || only.includes(p.name));
        for (const projection of running) {
          tasks.push(runProjection(projection, { pool: pools.primary, store: followed, waker, signal: controller.signal, log, batchSize }));
        }
        // A slot's lease is renewed by the outcome re-list while its run is alive (CODEXK8S_SLOT_LEASE).
        const scheduler = runScheduler({ store: followed, pool: pools.primary, now: () => new Date().toISOString(), leaseMs: runs.slotLeaseSeconds * 1000, slotsPerProject: runs.slotsPerProject });
        tasks.push(runReactor(scheduler, { pool: pools.primary, store: followed, waker, signal: controller.signal, log }));
        tasks.push(lookForExpiredLeases(scheduler, { signal: controller.signal, log }));
        const worker = await startKubernetesWorker({ store: followed, pool: pools.primary, waker, signal: controller.signal, log, runs, metrics, settings: kubernetes });
        if (workerPort !== undefined) {
          // A worker alone still answers health, readiness and metrics (the watch's last event, the cleanup).
          const app = createApp({ primary: pools.primary, metrics, log, mount: () => {} });
          server = await listen(app, workerPort);
          tasks.push(closeOnAbort(server, controller.signal));
        }
        tasks.push(...worker.tasks);
        log.info({ projections: running.map((p) => p.name), reactors: [scheduler.name, ...worker.reactors] }, 'worker started');
      }
      await Promise.all(tasks);
      await waker.close();
      await pools.end();
    });
}

/** The webhook's and the staff API's settings (roles api and all). */
function ingressSettings() {
  const http = httpConfig(process.env, parseLearningModeDefault);
  let triggers;
  try {
    triggers = parseTriggers(http.triggerLabels);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  return { http, staff: staffApiConfig(), github: githubConfig(), triggers, read: readConfig() };
}

/**
 * Stops a server when the signal aborts: it takes no new connection, closes the idle ones, and every
 * other closes after its next answer (which says Connection: close). Closing only the idle ones left
 * a client that kept its connections busy served until the shutdown deadline.
 */
function closeOnAbort(server: Server, signal: AbortSignal): Promise<void> {
  let closing = false;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    res.once('finish', () => {
      if (closing) server.closeIdleConnections();
    });
  });
  return new Promise<void>((resolve) => signal.addEventListener('abort', () => {
    closing = true;
    server.close(() => resolve());
    server.closeIdleConnections();
  }, { once: true }));
}

/** Listens on CODEXK8S_HTTP_PORT; a port taken or not allowed is a setting's error, said in one line. */
function listen(app: { listen: (port: number) => Server }, port: number): Promise<Server> {
  const server = app.listen(port);
  return new Promise<Server>((resolve, reject) => {
    server.once('listening', () => resolve(server));
    server.once('error', (error: NodeJS.ErrnoException) => reject(new ConfigError(`CODEXK8S_HTTP_PORT: cannot listen on port ${port} (${error.code ?? error.message})`)));
  });
}
