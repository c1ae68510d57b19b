import type pg from 'pg';
import { GlobalPosition } from '../ports/position.js';

/** A projection's row in projection_checkpoints. */
export interface Checkpoint {
  name: string;
  position: GlobalPosition;
  generation: number;
  state: 'running' | 'stopped';
  error: string | null;
  errorEventId: string | null;
  holder: string | null;
  eventsApplied: number;
  lastEventAt: Date | null;
  updatedAt: Date;
}

interface Row {
  name: string;
  epoch: number;
  tx_id: string;
  position: string;
  generation: number;
  state: 'running' | 'stopped';
  error: string | null;
  error_event_id: string | null;
  holder: string | null;
  events_applied: string;
  last_event_at: Date | null;
  updated_at: Date;
}

const columns = `name, epoch, tx_id::text AS tx_id, position::text AS position, generation, state, error,
  error_event_id::text AS error_event_id, holder, events_applied::text AS events_applied, last_event_at, updated_at`;

const toCheckpoint = (r: Row): Checkpoint => ({
  name: r.name,
  position: new GlobalPosition(r.epoch, BigInt(r.tx_id), BigInt(r.position)),
  generation: r.generation,
  state: r.state,
  error: r.error,
  errorEventId: r.error_event_id,
  holder: r.holder,
  eventsApplied: Number(r.events_applied),
  lastEventAt: r.last_event_at,
  updatedAt: r.updated_at,
});

export async function ensureCheckpoint(db: pg.Pool | pg.PoolClient, name: string): Promise<void> {
  await db.query('INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [name]);
}

export async function readCheckpoint(db: pg.Pool | pg.PoolClient, name: string, options: { lock?: boolean } = {}): Promise<Checkpoint | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT ${columns} FROM projection_checkpoints WHERE name = $1${options.lock ? ' FOR UPDATE' : ''}`,
    [name],
  );
  return rows[0] && toCheckpoint(rows[0]);
}

export async function readCheckpoints(db: pg.Pool | pg.PoolClient): Promise<Checkpoint[]> {
  const { rows } = await db.query<Row>(`SELECT ${columns} FROM projection_checkpoints ORDER BY name`);
  return rows.map(toCheckpoint);
}

/** Moves the checkpoint past a folded batch inside its transaction; returns the row as it now is. */
export async function advanceCheckpoint(
  tx: pg.PoolClient,
  name: string,
  to: GlobalPosition,
  applied: number,
  lastEventAt: Date,
): Promise<Checkpoint> {
  const { rows } = await tx.query<Row>(
    `UPDATE projection_checkpoints
        SET epoch = $2, tx_id = $3::xid8, position = $4, events_applied = events_applied + $5,
            last_event_at = $6, updated_at = now()
      WHERE name = $1
  RETURNING ${columns}`,
    [name, to.epoch, to.txId.toString(), to.seq.toString(), applied, lastEventAt],
  );
  return toCheckpoint(rows[0]!);
}

/**
 * Moves the checkpoint past a batch of events its projection does not handle, in one statement
 * and no transaction of its own: only from the position, generation and state `from` was read at
 * (undefined: a rebuild, a reset or another runner moved it meanwhile). Most batches of a busy log
 * are of this kind for most projections, and the checkpoint must still follow the log, because
 * read-your-writes waits on it.
 */
export async function skipCheckpoint(db: pg.Pool | pg.PoolClient, from: Checkpoint, to: GlobalPosition, lastEventAt: Date): Promise<Checkpoint | undefined> {
  const { rows } = await db.query<Row>(
    `UPDATE projection_checkpoints
        SET epoch = $2, tx_id = $3::xid8, position = $4, last_event_at = $5, updated_at = now()
      WHERE name = $1 AND generation = $6 AND state = $7 AND (epoch, tx_id, position) = ($8::int, $9::xid8, $10::bigint)
  RETURNING ${columns}`,
    [from.name, to.epoch, to.txId.toString(), to.seq.toString(), lastEventAt, from.generation, from.state,
      from.position.epoch, from.position.txId.toString(), from.position.seq.toString()],
  );
  return rows[0] && toCheckpoint(rows[0]);
}

export async function stopAt(tx: pg.PoolClient, name: string, error: string, eventId: string): Promise<void> {
  await tx.query(
    `UPDATE projection_checkpoints SET state = 'stopped', error = $2, error_event_id = $3, updated_at = now() WHERE name = $1`,
    [name, error.slice(0, 2000), eventId],
  );
}

export async function setHolder(db: pg.Pool | pg.PoolClient, name: string, holder: string | null): Promise<void> {
  await db.query('UPDATE projection_checkpoints SET holder = $2, updated_at = now() WHERE name = $1', [name, holder]);
}

/** `projections reset`: a stopped projection runs again from where it stopped. */
export async function resume(db: pg.Pool | pg.PoolClient, name: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE projection_checkpoints SET state = 'running', error = NULL, error_event_id = NULL, updated_at = now()
      WHERE name = $1 AND state = 'stopped'`,
    [name],
  );
  return (rowCount ?? 0) > 0;
}
