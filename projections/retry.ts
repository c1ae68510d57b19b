import type pg from 'pg';
import type { EventStore } from '../ports/event-store.js';
import { ensureCheckpoint, readCheckpoint } from './checkpoints.js';
import { foldBatch } from './fold.js';
import type { ProjectedEvent, Projection } from './projection.js';

/**
 * `projections retry`: applies a projection's parked events again, in log order, after a fix. Each
 * one that now applies leaves the dead letters; one that still fails stays with its new error.
 * The checkpoint row is held meanwhile, so the live runner does not interleave.
 */
export async function retryParked(
  projection: Projection,
  options: { pool: pg.Pool; store: Pick<EventStore, 'decode' | 'readByIds'> },
): Promise<{ retried: number; applied: number; stillParked: number }> {
  const { pool, store } = options;
  await ensureCheckpoint(pool, projection.name);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await readCheckpoint(client, projection.name, { lock: true });
    const { rows } = await client.query<{ id: string }>('SELECT event_id::text AS id FROM projection_dead_letters WHERE projection = $1', [projection.name]);
    if (rows.length === 0) {
      await client.query('ROLLBACK');
      return { retried: 0, applied: 0, stillParked: 0 };
    }
    const events = await store.readByIds(rows.map((r) => r.id), client);
    // Folded as dead-letter whatever the projection's policy: a retry only ever parks again.
    const result = await foldBatch({ ...projection, onFailure: 'dead-letter' }, events, client, (t) => t, (raw) => store.decode(raw) as ProjectedEvent);
    const still = new Map(result.parked.map((p) => [p.event.id, p.error]));
    for (const e of events) {
      if (still.has(e.id)) {
        await client.query('UPDATE projection_dead_letters SET error = $3, parked_at = now() WHERE projection = $1 AND event_id = $2', [projection.name, e.id, still.get(e.id)]);
      } else {
        await client.query('DELETE FROM projection_dead_letters WHERE projection = $1 AND event_id = $2', [projection.name, e.id]);
      }
    }
    await client.query('COMMIT');
    return { retried: events.length, applied: result.applied, stillParked: still.size };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
