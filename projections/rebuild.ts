import type pg from 'pg';
import { GlobalPosition, type EventStore, type RawEvent } from '../ports/event-store.js';
import { ensureCheckpoint, readCheckpoint } from './checkpoints.js';
import { applyNames, copyGrants, namesToKeep } from './rebuild-tables.js';
import { holderName } from './runner.js';
import { pgCode, sqlState } from '../ports/sql-errors.js';
import { foldBatch, type ParkedEvent } from './fold.js';
import { ident, type ProjectedEvent, type Projection } from './projection.js';

export interface RebuildProgress {
  phase: 'folding' | 'swapping' | 'done';
  events: number;
  /** Events in the log when the rebuild looked last; grows while writes go on. */
  total: number;
}

export interface RebuildResult {
  events: number;
  applied: number;
  parked: number;
  seconds: number;
  position: GlobalPosition;
}

export class RebuildError extends Error {
  override readonly name = 'RebuildError';
}

export const shadowOf = (table: string) => `${table}__rebuild`;

// One rebuild per projection at a time, across processes: a session advisory lock held for the
// whole rebuild, on the rebuild's own connection (so it goes with a killed process).
const lockKey = `hashtextextended('codexk8s.rebuild.' || $1, 0)`;
const applicationName = (holder: string) => `codex-k8s rebuild ${holder}`.slice(0, 63);

/** Who holds a projection's rebuild lock now (`host:pid`), or null: only then is it rebuilding. */
export async function rebuildHolder(db: pg.Pool | pg.PoolClient, name: string): Promise<string | null> {
  const { rows } = await db.query<{ application_name: string }>(
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid,
            (SELECT ${lockKey} AS k) key
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid::bigint = ((key.k >> 32) & 4294967295) AND l.objid::bigint = (key.k & 4294967295)`,
    [name],
  );
  const holder = rows[0]?.application_name;
  return holder === undefined ? null : holder.replace(/^codex-k8s rebuild /, '') || 'another session';
}

/** How long the swap waits for a live table's lock before it lets readers through and tries again. */
const SWAP_LOCK_TIMEOUT_MS = 100;
const SWAP_ATTEMPTS = 100;

/**
 * Rebuilds a projection without taking it offline: folds the whole log from position zero into
 * shadow copies of its tables while the live tables keep serving, catches up, then swaps the
 * shadows in, in one short transaction that also moves the checkpoint. The swap waits for the live
 * tables' locks at most SWAP_LOCK_TIMEOUT_MS at a time, so readers never queue behind it for longer,
 * and tries again. The new tables keep the old ones' index and constraint names and grants.
 * Interrupting it leaves the live model untouched and drops the shadows; a second rebuild of the
 * same projection meanwhile fails at once, naming the holder.
 */
export async function rebuild(
  projection: Projection,
  options: {
    pool: pg.Pool;
    store: Pick<EventStore, 'readAllRaw' | 'decode'>;
    batchSize?: number;
    signal?: AbortSignal;
    onProgress?: (p: RebuildProgress) => void;
  },
): Promise<RebuildResult> {
  const { pool, store } = options;
  const batchSize = options.batchSize ?? 5000;
  const started = performance.now();
  const shadow = (t: string) => ident(shadowOf(t));
  const total = async () => Number((await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM flow_events')).rows[0]!.n);

  let position = GlobalPosition.start;
  let events = 0;
  let applied = 0;
  let parked: ParkedEvent[] = [];
  let known = 0;
  const progress = (phase: RebuildProgress['phase']) => options.onProgress?.({ phase, events, total: Math.max(known, events) });
  const decode = (raw: RawEvent) => store.decode(raw) as ProjectedEvent;

  /** Folds the batches after `position` until the log has nothing more to give right now. */
  const foldAvailable = async (client: pg.PoolClient, inTransaction: boolean) => {
    for (;;) {
      if (options.signal?.aborted) throw new RebuildError('interrupted; the live model is untouched');
      const batch = await store.readAllRaw(position, batchSize, client);
      if (batch.length === 0) return;
      if (!inTransaction) await client.query('BEGIN');
      const result = await foldBatch(projection, batch, client, shadow, decode);
      if (result.stopped) {
        if (!inTransaction) await client.query('ROLLBACK');
        throw new RebuildError(`event ${result.stopped.event.id} (${result.stopped.event.type}) cannot be applied: ${result.stopped.error}`);
      }
      if (!inTransaction) await client.query('COMMIT');
      parked = [...parked, ...result.parked];
      applied += result.applied;
      events += batch.length;
      position = batch[batch.length - 1]!.position;
      if (events > known) known = await total();
      progress('folding');
      if (batch.length < batchSize) return;
    }
  };

  /** One attempt at the swap: false when a live table's lock was not had in time (nothing changed). */
  const swap = async (client: pg.PoolClient): Promise<boolean> => {
    const saved = { position, events, applied, parked };
    await client.query('BEGIN');
    try {
      // Holding the checkpoint row pauses the live runner between two batches; it resumes on the new tables.
      await readCheckpoint(client, projection.name, { lock: true });
      await foldAvailable(client, true);
      await client.query(`SET LOCAL lock_timeout = '${SWAP_LOCK_TIMEOUT_MS}ms'`);
      await client.query(`LOCK TABLE ${projection.tables.map(ident).join(', ')} IN ACCESS EXCLUSIVE MODE`);
      for (const t of projection.tables) {
        const names = await namesToKeep(client, t, shadowOf(t));
        await copyGrants(client, t, shadowOf(t));
        await client.query(`ALTER TABLE ${ident(t)} RENAME TO ${ident(`${t}__old`)}`);
        await client.query(`ALTER TABLE ${shadow(t)} RENAME TO ${ident(t)}`);
        await client.query(`DROP TABLE ${ident(`${t}__old`)}`);
        await applyNames(client, names);
      }
      await client.query('DELETE FROM projection_dead_letters WHERE projection = $1', [projection.name]);
      for (const p of parked) {
        await client.query(
          `INSERT INTO projection_dead_letters (projection, event_id, epoch, tx_id, position, event_type, error)
           VALUES ($1, $2, $3, $4::xid8, $5, $6, $7) ON CONFLICT DO NOTHING`,
          [projection.name, p.event.id, p.event.position.epoch, p.event.position.txId.toString(), p.event.position.seq.toString(), p.event.type, p.error],
        );
      }
      await client.query(
        `UPDATE projection_checkpoints
            SET epoch = $2, tx_id = $3::xid8, position = $4, generation = generation + 1, state = 'running',
                error = NULL, error_event_id = NULL, events_applied = $5, updated_at = now()
          WHERE name = $1`,
        [projection.name, position.epoch, position.txId.toString(), position.seq.toString(), applied],
      );
      await client.query('COMMIT');
      return true;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      ({ position, events, applied, parked } = saved);
      if (sqlState(error) === pgCode.lockNotAvailable) return false;
      throw error;
    }
  };

  await ensureCheckpoint(pool, projection.name);
  const client = await pool.connect();
  let locked = false;
  let broken = false;
  try {
    await client.query(`SELECT set_config('application_name', $1, false)`, [applicationName(holderName())]);
    locked = (await client.query<{ held: boolean }>(`SELECT pg_try_advisory_lock(${lockKey}) AS held`, [projection.name])).rows[0]!.held;
    if (!locked) {
      throw new RebuildError(`${projection.name} is being rebuilt already by ${(await rebuildHolder(pool, projection.name)) ?? 'another session'}; try again when it ends`);
    }
    // A rebuild is long; its own statements are short, but lift the role's limit for its session.
    await client.query('SET statement_timeout = 0');
    try {
      for (const t of projection.tables) {
        await client.query(`DROP TABLE IF EXISTS ${shadow(t)}`);
        await client.query(`CREATE TABLE ${shadow(t)} (LIKE ${ident(t)} INCLUDING ALL)`);
      }
      known = await total();
      progress('folding');
      await foldAvailable(client, false);
      progress('swapping');
      for (let attempt = 1; !(await swap(client)); attempt++) {
        if (attempt >= SWAP_ATTEMPTS) throw new RebuildError(`could not lock ${projection.tables.join(', ')} for the swap after ${attempt} tries: a long transaction holds them`);
        if (options.signal?.aborted) throw new RebuildError('interrupted; the live model is untouched');
        await new Promise((r) => setTimeout(r, Math.min(20 * attempt, 500) * (0.5 + Math.random())));
      }
      progress('done');
    } catch (error) {
      // Leave nothing behind that looks like a rebuild in progress.
      for (const t of projection.tables) await client.query(`DROP TABLE IF EXISTS ${shadow(t)}`).catch(() => (broken = true));
      throw error;
    }
  } finally {
    if (locked) await client.query(`SELECT pg_advisory_unlock(${lockKey})`, [projection.name]).catch(() => (broken = true));
    await client.query('RESET statement_timeout; RESET application_name').catch(() => (broken = true));
    client.release(broken);
  }
  return { events, applied, parked: parked.length, seconds: (performance.now() - started) / 1000, position };
}
