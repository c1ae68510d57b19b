import { after, before } from 'node:test';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { localCluster, urlFor, withClient } from '../../adapters/postgres/local-cluster.js';
import { projectRoot } from '../../adapters/paths.js';
import { createPools, type Pools } from '../../adapters/postgres/pools.js';

/** The checkout's local primary + replica, which `npm test` brings up before any test runs. */
export const cluster = localCluster(projectRoot);
export const TEMPLATE_DATABASE = 'codexk8s_test_template';
export const TEST_DATABASE_PREFIX = 'codexk8s_t_';

export async function withAdmin<T>(work: (db: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> {
  return withClient(urlFor(cluster.primary.port, database, 'postgres'), work);
}

export interface TestDatabase {
  name: string;
  primaryUrl: string;
  replicaUrl: string;
  env: Record<string, string>;
  pools: Pools;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database of its own for one test file (copied from the template that
 * `prepare-database` migrated), on the real primary, and visible on the real replica.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${TEST_DATABASE_PREFIX}${randomBytes(6).toString('hex')}`;
  await withAdmin((db) => db.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE} OWNER codexk8s`));
  const primaryUrl = urlFor(cluster.primary.port, name);
  const replicaUrl = urlFor(cluster.replica.port, name);
  await waitForReplica(replicaUrl);
  const pools = createPools({ primaryUrl, replicaUrls: [replicaUrl], poolSize: 20 }, 'codex-k8s-test');
  return {
    name,
    primaryUrl,
    replicaUrl,
    env: { CODEXK8S_DATABASE_URL: primaryUrl, CODEXK8S_DATABASE_REPLICA_URLS: replicaUrl },
    pools,
    async drop() {
      await pools.end();
      await withAdmin((db) => db.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** The replica replays CREATE DATABASE asynchronously: wait until it can be connected to. */
async function waitForReplica(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await withClient(url, async () => {});
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Registers before/after hooks that give the calling test file its own database. */
export function useTestDatabase(ready: (db: TestDatabase) => void): void {
  let db: TestDatabase | undefined;
  before(async () => {
    db = await createTestDatabase();
    ready(db);
  });
  after(async () => {
    await db?.drop();
  });
}
