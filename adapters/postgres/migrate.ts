import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { migrationsDir } from '../paths.js';

export interface MigrateResult {
  applied: string[];
  /** Set when stored transaction ids were ahead of the cluster's: the log moved to a new epoch. */
  epochBumpedTo?: number;
}

/**
 * Applies `migrations/` in order, each pending set in one transaction, under node-pg-migrate's
 * advisory lock (a second concurrent `migrate` waits, then finds nothing to do). Safe to repeat.
 */
export async function migrate(databaseUrl: string, log: (line: string) => void = () => {}): Promise<MigrateResult> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'codex-k8s-migrate' });
  await client.connect();
  try {
    const applied = await runner({
      dbClient: client,
      dir: migrationsDir,
      migrationsTable: 'schema_migrations',
      direction: 'up',
      checkOrder: true,
      singleTransaction: true,
      advisoryLockMode: 'wait',
      log: () => {},
      // Errors are thrown and reported once by the caller; node-pg-migrate would print them with the SQL.
      logger: { debug: () => {}, info: () => {}, warn: (m: string) => log(m), error: () => {} },
    });
    const result: MigrateResult = { applied: applied.map((m) => m.name) };
    const bumped = await bumpEpochAfterRestore(client);
    if (bumped !== undefined) result.epochBumpedTo = bumped;
    return result;
  } finally {
    await client.end();
  }
}

/**
 * A logical restore into another cluster brings events whose tx_ids are ahead of the new cluster's
 * counter; new events would sort before them. Moving to a new epoch keeps them after.
 */
async function bumpEpochAfterRestore(client: pg.Client): Promise<number | undefined> {
  const { rows } = await client.query<{ ahead: boolean }>(`
    SELECT EXISTS (
      SELECT 1 FROM flow_events
       WHERE epoch = (SELECT epoch FROM flow_events_epoch) AND tx_id >= pg_current_xact_id()
    ) AS ahead`);
  if (!rows[0]?.ahead) return undefined;
  const bumped = await client.query<{ epoch: number }>('SELECT flow_events_bump_epoch() AS epoch');
  return bumped.rows[0]!.epoch;
}
