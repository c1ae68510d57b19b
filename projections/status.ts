import type pg from 'pg';
/** The primary and the replicas, as the operator's status reads them. */
export interface Pools {
  primary: pg.Pool;
  replicas: readonly pg.Pool[];
}
import { readCheckpoints } from './checkpoints.js';
import { rebuildHolder } from './rebuild.js';
import type { Projection } from './projection.js';

export interface ProjectionStatus {
  name: string;
  state: 'running' | 'stopped' | 'rebuilding' | 'never started';
  position: string;
  lagEvents: number;
  lagSeconds: number;
  deadLetters: number;
  holder: string | null;
  /** The process rebuilding it now (host:pid), if one is. */
  rebuiltBy: string | null;
  error: string | null;
  eventsApplied: number;
  /** Each replica's copy of the checkpoint: how far the models read there have come. */
  replicas: { position: string | null; lagEvents: number | null }[];
}

export interface LogStatus {
  projections: ProjectionStatus[];
  replicas: { replayLagSeconds: number | null; error?: string }[];
  /** The oldest transaction holding an xid: it holds every reader of the log back while open. */
  heldBackBy: { pid: number; seconds: number; state: string; application: string } | null;
}

const lagSql = `
  SELECT count(*)::int AS events,
         COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 AS seconds
    FROM flow_events f
   WHERE (f.epoch, f.tx_id, f.position) > ($1::int, $2::xid8, $3::bigint)`;

export async function projectionStatus(pools: Pools, projections: readonly Projection[]): Promise<LogStatus> {
  const checkpoints = new Map((await readCheckpoints(pools.primary)).map((c) => [c.name, c]));
  // Rebuilding means a rebuild holds the projection's lock now; a shadow table left by a killed
  // rebuild is not a rebuild (the next one drops it).
  const rebuilders = new Map(await Promise.all(projections.map(async (p) => [p.name, await rebuildHolder(pools.primary, p.name)] as const)));
  const dead = new Map(
    (await pools.primary.query<{ projection: string; n: number }>('SELECT projection, count(*)::int AS n FROM projection_dead_letters GROUP BY 1')).rows.map((r) => [r.projection, r.n]),
  );
  const replicaCheckpoints = await Promise.all(
    pools.replicas.map(async (replica) => {
      try {
        return new Map((await readCheckpoints(replica)).map((c) => [c.name, c]));
      } catch {
        return undefined;
      }
    }),
  );
  const lagOf = async (db: pg.Pool, c: { position: { epoch: number; txId: bigint; seq: bigint } }) => {
    const { rows } = await db.query<{ events: number; seconds: number }>(lagSql, [c.position.epoch, c.position.txId.toString(), c.position.seq.toString()]);
    return rows[0]!;
  };

  const out: ProjectionStatus[] = [];
  for (const p of projections) {
    const c = checkpoints.get(p.name);
    const lag = c ? await lagOf(pools.primary, c) : { events: Number((await pools.primary.query<{ n: string }>('SELECT count(*)::text AS n FROM flow_events')).rows[0]!.n), seconds: 0 };
    out.push({
      name: p.name,
      state: rebuilders.get(p.name) ? 'rebuilding' : c ? c.state : 'never started',
      rebuiltBy: rebuilders.get(p.name) ?? null,
      position: c ? c.position.toString() : '0:0:0',
      lagEvents: lag.events,
      lagSeconds: Math.round(lag.seconds * 1000) / 1000,
      deadLetters: dead.get(p.name) ?? 0,
      holder: c?.holder ?? null,
      error: c?.error ?? null,
      eventsApplied: c?.eventsApplied ?? 0,
      replicas: await Promise.all(
        replicaCheckpoints.map(async (m) => {
          const rc = m?.get(p.name);
          if (!rc) return { position: null, lagEvents: null };
          return { position: rc.position.toString(), lagEvents: (await lagOf(pools.primary, rc)).events };
        }),
      ),
    });
  }

  const replicas = await Promise.all(
    pools.replicas.map(async (replica) => {
      try {
        const { rows } = await replica.query<{ lag: number | null }>(`
          SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                      ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8 AS lag`);
        return { replayLagSeconds: rows[0]?.lag ?? null };
      } catch (error) {
        return { replayLagSeconds: null, error: (error as Error).message };
      }
    }),
  );
  const held = await pools.primary.query<{ pid: number; seconds: number; state: string; application: string }>(`
    SELECT pid, extract(epoch FROM now() - xact_start)::float8 AS seconds, state, application_name AS application
      FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
     ORDER BY xact_start LIMIT 1`);
  return { projections: out, replicas, heldBackBy: held.rows[0] ?? null };
}
