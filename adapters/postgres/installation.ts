import type pg from 'pg';

/**
 * This installation's identity, labelled on every Kubernetes object of its runs: the `installation`
 * row that migration 0010 made once, bound to the database that holds it (its cluster's system
 * identifier and the database's oid). So a copy of the database, a dump restored elsewhere or a
 * `CREATE DATABASE … TEMPLATE`, is another installation and never takes the original's
 * namespaces for its own (found by a review); a promoted streaming replica keeps it. Where the
 * server does not let the platform read its system identifier, the oid alone binds it.
 */
export async function installationId(db: Pick<pg.Pool, 'query'>): Promise<string> {
  const bound = (system: string) =>
    `SELECT md5(i.id::text || ':' || ${system} || ':' || d.oid::text) AS id
       FROM installation i JOIN pg_database d ON d.datname = current_database()`;
  let rows: { id: string }[];
  try {
    ({ rows } = await db.query<{ id: string }>(bound('(SELECT system_identifier::text FROM pg_control_system())')));
  } catch {
    ({ rows } = await db.query<{ id: string }>(bound(`''`)));
  }
  if (!rows[0]) throw new Error('the installation table has no row: run `codex-k8s migrate` (its identity keeps other installations\' namespaces safe)');
  return rows[0].id;
}
