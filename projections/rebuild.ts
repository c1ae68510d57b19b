import type pg from 'pg';
import type { EventStore, RawEvent } from '../adapters/postgres/event-store.js';
import { GlobalPosition } from '../adapters/postgres/position.js';
import { ensureCheckpoint, readCheckpoint } from './checkpoints.js';
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

/**
 * Rebuilds a projection without taking it offline: folds the whole log from position zero into
 * shadow copies of its tables while the live tables keep serving, catches up, then swaps the
 * shadows in, in one short transaction that also moves the checkpoint. Interrupting it leaves the
 * live model untouched; running it again starts over.
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

  await ensureCheckpoint(pool, projection.name);
  for (const t of projection.tables) {
    await pool.query(`DROP TABLE IF EXISTS ${shadow(t)}`);
    await pool.query(`CREATE TABLE ${shadow(t)} (LIKE ${ident(t)} INCLUDING ALL)`);
  }

  let position = GlobalPosition.start;
  let events = 0;
  let applied = 0;
  const parked: ParkedEvent[] = [];
  let known = await total();
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
      parked.push(...result.parked);
      applied += result.applied;
      events += batch.length;
      position = batch[batch.length - 1]!.position;
      if (events > known) known = await total();
      progress('folding');
      if (batch.length < batchSize) return;
    }
  };

  const client = await pool.connect();
  try {
    // A rebuild is long; its own statements are short, but lift the role's limit for its session.
    await client.query('SET statement_timeout = 0');
    progress('folding');
    await foldAvailable(client, false);

    progress('swapping');
    await client.query('BEGIN');
    // Holding the checkpoint row pauses the live runner between two batches; it resumes on the new tables.
    await readCheckpoint(client, projection.name, { lock: true });
    await foldAvailable(client, true);
    for (const t of projection.tables) {
      await client.query(`ALTER TABLE ${ident(t)} RENAME TO ${ident(`${t}__old`)}`);
      await client.query(`ALTER TABLE ${shadow(t)} RENAME TO ${ident(t)}`);
      await client.query(`DROP TABLE ${ident(`${t}__old`)}`);
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
    progress('done');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.query('RESET statement_timeout').catch(() => {});
    client.release();
  }
  return { events, applied, parked: parked.length, seconds: (performance.now() - started) / 1000, position };
}
