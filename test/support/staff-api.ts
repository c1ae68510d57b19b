import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { readFolded } from '../../commands/remembered-states.js';
import { streamOf } from '../../domain/shared/streams.js';
import { userDecider, type User } from '../../domain/users/user.js';
import { Writable } from 'node:stream';
import type Router from '@koa/router';
import { createEventStore, type EventStore } from '../../adapters/postgres/event-store.js';
import { createReplicaReads } from '../../adapters/postgres/replica-reads.js';
import { pollingOnly } from '../../adapters/postgres/subscription.js';
import { createApp } from '../../adapters/http/server.js';
import { createMetrics } from '../../adapters/http/metrics.js';
import { createLogger } from '../../adapters/log.js';
import { mountStaffApi } from '../../adapters/http/api/mount.js';
import { staffApiConfig } from '../../adapters/config.js';
import { staffTokens } from '../../adapters/http/auth/tokens.js';
import { githubDirectory } from '../../adapters/github/directory.js';
import { setupCommands } from '../../commands/setup.js';
import { defaultTriggers } from '../../domain/webhooks/trigger-policy.js';
import type { GithubLogin } from '../../ports/github.js';
import { allProjections } from '../../projections/index.js';
import { runProjection } from '../../projections/runner.js';
import type { TestDatabase } from './cluster.js';
import { startFakeGithub } from './fake-github.js';
import { staffSecrets } from './secrets.js';

export const operator = () => ({ correlationId: `test-${randomUUID()}`, actor: { type: 'system' as const, id: 'test' } });

/**
 * The staff API as `serve` mounts it, in this process, over the test database's real primary and
 * replica, with every projection running, a fake GitHub behind the real clients, and its log lines
 * kept so a test can read them.
 */
export async function startStaffApi(db: TestDatabase, options: { env?: Record<string, string>; githubLogin?: (githubUrl: string) => GithubLogin } = {}) {
  const github = await startFakeGithub();
  const logLines: string[] = [];
  const log = createLogger({ level: 'debug', destination: new Writable({ write: (chunk, _e, done) => (logLines.push(String(chunk)), done()) }) });
  const env = { ...staffSecrets, CODEXK8S_GITHUB_API_URL: github.url, ...options.env };
  const config = staffApiConfig(env);
  const store: EventStore = createEventStore(db.pools.primary);
  // GitHub's 5xx are retried after 10, 40 and 90 ms here, not 1, 4 and 9 s.
  const directory = githubDirectory(github.url, { retryBaseMs: 10 });
  const controller = new AbortController();
  const runners = allProjections.map((projection) =>
    runProjection(projection, { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log, backoff: { minMs: 5, maxMs: 20 } }));
  let routes: ReturnType<typeof mountStaffApi> = [];
  let router: Router | undefined;
  const app = createApp({
    primary: db.pools.primary, metrics: createMetrics(), log,
    mount: (r) => {
      routes = mountStaffApi(r, {
        config, store, reads: createReplicaReads(db.pools, { policy: 'fail', maxWaitMs: 5000 }), github: directory, providers: { github: directory },
        githubLogin: options.githubLogin?.(github.url), triggers: defaultTriggers, learningModeDefault: false, log,
      });
      router = r;
    },
  });
  const setup = setupCommands({ store, github: directory, providers: { github: directory }, emailHashKey: config.emailHashKey, now: () => new Date().toISOString() });
  const tokens = staffTokens(config.jwtKeys, { ttlSeconds: config.jwtTtlSeconds });
  const tokenFor = async (userId: string) => {
    const [user] = await readFolded(store, [{ stream: streamOf.user(userId), fold: userDecider }]);
    const state = user!.state as User;
    assert.ok(state.status === 'allowed', 'a token for an allowed user');
    return (await tokens.issue(state)).token;
  };
  return {
    app: app.callback(),
    routes,
    /** The router's layers as mounted: what the OpenAPI document is checked against. */
    mounted: router!.stack,
    store,
    github,
    setup,
    config,
    logLines,
    /** A token for the user as they are allowed now (under their current allowance). */
    tokenFor,
    /** Allows a person by the operator (the CLI's way), returning their id and a token. */
    async person(email: string, platformRole: 'owner' | 'admin' | null = null) {
      const { userId } = await setup.allowUser({ email, githubLogin: null, platformRole }, operator());
      return { userId, email, token: await tokenFor(userId) };
    },
    async close() {
      controller.abort();
      await Promise.all(runners);
      await github.close();
    },
  };
}

export type StaffApi = Awaited<ReturnType<typeof startStaffApi>>;
