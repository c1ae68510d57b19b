import { after, before } from 'node:test';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { localCluster, OWNER_ROLE, urlFor, withClient } from '../../adapters/postgres/local-cluster.js';
import { createPool } from '../../adapters/postgres/pools.js';
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
  /** The platform's role: what the code under test runs as. */
  primaryUrl: string;
  /** The owner's role: migrations and rebuilds. */
  ownerUrl: string;
  ownerPool: pg.Pool;
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
  await withAdmin((db) => db.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE} OWNER ${OWNER_ROLE}`));
  const primaryUrl = urlFor(cluster.primary.port, name);
  const ownerUrl = urlFor(cluster.primary.port, name, OWNER_ROLE);
  const replicaUrl = urlFor(cluster.replica.port, name);
  await waitForReplica(replicaUrl);
  const pools = createPools({ primaryUrl, ownerUrl, replicaUrls: [replicaUrl], poolSize: 20, connectTimeoutMs: 10_000 }, 'codex-k8s-test');
  const ownerPool = createPool(ownerUrl, 4, 'codex-k8s-test-owner');
  return {
    name,
    primaryUrl,
    ownerUrl,
    ownerPool,
    replicaUrl,
    env: { CODEXK8S_DATABASE_URL: primaryUrl, CODEXK8S_DATABASE_OWNER_URL: ownerUrl, CODEXK8S_DATABASE_REPLICA_URLS: replicaUrl },
    pools,
    async drop() {
      await pools.end();
      await ownerPool.end();
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

/** A pool that counts the statements sent through it (`queries`) and keeps their texts, for tests of round trips. */
export function countingPool(pool: pg.Pool): { pool: pg.Pool; queries: number; texts: string[] } {
  const counted = { pool: Object.create(pool) as pg.Pool, queries: 0, texts: [] as string[] };
  counted.pool.query = ((...args: unknown[]) => {
    counted.queries++;
    counted.texts.push(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string }).text));
    return (pool.query as (...a: unknown[]) => unknown).apply(pool, args);
  }) as typeof pool.query;
  return counted;
}
