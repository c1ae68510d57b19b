import type pg from 'pg';
import { isConnectionFailure } from '../../ports/sql-errors.js';
import type { Pools } from './pools.js';
import { GlobalPosition } from '../../ports/position.js';

/** What a read does when no replica is healthy: fail, or read the primary's copy of the models. */
export type NoReplicaPolicy = 'fail' | 'primary';

export class NotYetConsistentError extends Error {
  override readonly name = 'NotYetConsistentError';
  constructor(readonly position: GlobalPosition, readonly waitedMs: number) {
    super(`the read models have not reached position ${position} after ${waitedMs} ms`);
  }
}

export class NoHealthyReplicaError extends Error {
  override readonly name = 'NoHealthyReplicaError';
  constructor() {
    super('no read replica is reachable');
  }
}

/** Among a read's projections: the event log itself (a read of streams, not of a read model). */
export const LOG = 'flow_events';

export interface ReadOptions {
  /** Answer only once these projections have applied the log up to here (read-your-writes). */
  minPosition?: GlobalPosition;
  projections: readonly string[];
}


/**
 * Every query path reads through here: from the replicas (round-robin over the healthy ones), or
 * the primary when none are configured. A replica that fails to connect is left out for a while
 * and the read goes to the next; with none left, the policy decides.
 */
export function createReplicaReads(pools: Pools, options: { policy: NoReplicaPolicy; maxWaitMs: number; quarantineMs?: number }) {
  const quarantineMs = options.quarantineMs ?? 5000;
  const candidates = pools.replicas.length > 0 ? pools.replicas : [pools.primary];
  const downUntil = new Map<pg.Pool, number>();
  let next = 0;

  function healthy(): pg.Pool[] {
    const now = Date.now();
    return candidates.filter((p) => (downUntil.get(p) ?? 0) <= now);
  }

  async function reached(db: pg.Pool, projections: readonly string[], position: GlobalPosition): Promise<boolean> {
    if (projections.includes(LOG)) {
      // The log itself: the replica has replayed the commit once the event at that position is there.
      const { rows } = await db.query<{ there: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM flow_events WHERE (epoch, tx_id, position) >= ($1::int, $2::xid8, $3::bigint)) AS there`,
        [position.epoch, position.txId.toString(), position.seq.toString()],
      );
      if (!rows[0]!.there) return false;
    }
    const { rows } = await db.query<{ behind: number }>(
      `SELECT count(*)::int AS behind FROM unnest($1::text[]) AS p(name)
         LEFT JOIN projection_checkpoints c ON c.name = p.name
        WHERE c.name IS NULL OR (c.epoch, c.tx_id, c.position) < ($2::int, $3::xid8, $4::bigint)`,
      [projections.filter((p) => p !== LOG), position.epoch, position.txId.toString(), position.seq.toString()],
    );
    return rows[0]!.behind === 0;
  }

  async function attempt<T>(db: pg.Pool, work: (db: pg.Pool) => Promise<T>, read: ReadOptions): Promise<T> {
    if (read.minPosition) {
      const started = Date.now();
      let pause = 5;
      while (!(await reached(db, read.projections, read.minPosition))) {
        const waited = Date.now() - started;
        if (waited >= options.maxWaitMs) throw new NotYetConsistentError(read.minPosition, waited);
        await new Promise((r) => setTimeout(r, Math.min(pause, options.maxWaitMs - waited)));
        pause = Math.min(pause * 2, 50);
      }
    }
    return work(db);
  }

  async function read<T>(work: (db: pg.Pool) => Promise<T>, read: ReadOptions): Promise<T> {
    const tried = new Set<pg.Pool>();
    for (;;) {
      const up = healthy().filter((p) => !tried.has(p));
      const db = up.length > 0 ? up[next++ % up.length]! : undefined;
      if (!db) {
        if (options.policy === 'primary' && !tried.has(pools.primary)) {
          tried.add(pools.primary);
          return attempt(pools.primary, work, read);
        }
        throw new NoHealthyReplicaError();
      }
      tried.add(db);
      try {
        return await attempt(db, work, read);
      } catch (error) {
        if (!isConnectionFailure(error)) throw error;
        downUntil.set(db, Date.now() + quarantineMs);
      }
    }
  }

  return { read, maxWaitMs: options.maxWaitMs };
}

export type ReplicaReads = ReturnType<typeof createReplicaReads>;
