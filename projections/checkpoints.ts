import type pg from 'pg';
import { GlobalPosition } from '../ports/position.js';
import { naturalBatching } from '../adapters/postgres/natural-batching.js';

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

/** The row's columns as Row reads them, of the table named `t`. */
const columnsOf = (t: string) => `${t}.name, ${t}.epoch, ${t}.tx_id::text AS tx_id, ${t}.position::text AS position, ${t}.generation, ${t}.state,
  ${t}.error, ${t}.error_event_id::text AS error_event_id, ${t}.holder, ${t}.events_applied::text AS events_applied, ${t}.last_event_at, ${t}.updated_at`;
const columns = columnsOf('projection_checkpoints');

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

interface Skip {
  from: Checkpoint;
  to: GlobalPosition;
  lastEventAt: Date;
}

const skipValues = ({ from, to, lastEventAt }: Skip) => ({
  name: from.name, epoch: to.epoch, tx_id: to.txId.toString(), position: to.seq.toString(), last_event_at: lastEventAt.toISOString(),
  generation: from.generation, state: from.state, from_epoch: from.position.epoch, from_tx_id: from.position.txId.toString(), from_position: from.position.seq.toString(),
});

/** One projection's skip, guarded; it waits for a row lock (a rebuild's swap, a retry) as it should. */
async function skipOne(pool: pg.Pool, skip: Skip): Promise<Checkpoint | undefined> {
  const v = skipValues(skip);
  const { rows } = await pool.query<Row>(
    `UPDATE projection_checkpoints
        SET epoch = $2, tx_id = $3::xid8, position = $4, last_event_at = $5, updated_at = now()
      WHERE name = $1 AND generation = $6 AND state = $7 AND (epoch, tx_id, position) = ($8::int, $9::xid8, $10::bigint)
  RETURNING ${columns}`,
    [v.name, v.epoch, v.tx_id, v.position, v.last_event_at, v.generation, v.state, v.from_epoch, v.from_tx_id, v.from_position],
  );
  return rows[0] && toCheckpoint(rows[0]);
}

/**
 * The skips of several projections (their runners reach the same batch of the log together) in one
 * statement, which passes over rows locked meanwhile: a rebuild's swap or a retry holds its own
 * projection's row to pause that runner, and no other projection may wait for it. A skip it did not
 * make (a locked row, or a checkpoint moved since it was read) is `unmade`.
 */
async function skipMany(pool: pg.Pool, skips: readonly Skip[]): Promise<PromiseSettledResult<Checkpoint | 'unmade'>[]> {
  const { rows } = await pool.query<Row>(
    `WITH x AS (SELECT * FROM jsonb_to_recordset($1) AS x(name text, epoch int, tx_id text, position bigint, last_event_at timestamptz,
                                                        generation int, state text, from_epoch int, from_tx_id text, from_position bigint)),
          free AS (SELECT c.name FROM projection_checkpoints c JOIN x ON x.name = c.name FOR UPDATE OF c SKIP LOCKED)
     UPDATE projection_checkpoints c
        SET epoch = x.epoch, tx_id = x.tx_id::xid8, position = x.position, last_event_at = x.last_event_at, updated_at = now()
       FROM x JOIN free ON free.name = x.name
      WHERE c.name = x.name AND c.generation = x.generation AND c.state = x.state
        AND (c.epoch, c.tx_id, c.position) = (x.from_epoch, x.from_tx_id::xid8, x.from_position)
  RETURNING ${columnsOf('c')}`,
    [JSON.stringify(skips.map(skipValues))],
  );
  // A batch holds one skip of a projection at most (its name is its clash key).
  const moved = new Map(rows.map((r) => [r.name, toCheckpoint(r)]));
  return skips.map((skip) => ({ status: 'fulfilled', value: moved.get(skip.from.name) ?? 'unmade' }));
}

const skippers = new WeakMap<pg.Pool, (skip: Skip) => Promise<Checkpoint | 'unmade'>>();

/**
 * Moves the checkpoint past a batch of events its projection does not handle, without a transaction
 * of its own: only from the position, generation and state `from` was read at (undefined: a rebuild,
 * a reset or another runner moved it meanwhile). Most batches of a busy log are of this kind for most
 * projections, and the checkpoint must still follow the log, because read-your-writes waits on it;
 * the skips that runners on one pool ask for while one is in flight go out in one statement.
 */
export async function skipCheckpoint(pool: pg.Pool, from: Checkpoint, to: GlobalPosition, lastEventAt: Date): Promise<Checkpoint | undefined> {
  let skip = skippers.get(pool);
  if (!skip) {
    skip = naturalBatching<Skip, Checkpoint | 'unmade'>({
      maxInFlight: 1, maxWeight: 100, weight: () => 1, run: (skips) => skipMany(pool, skips),
      // Two skips of one projection (two runners, one of which lost its lease) never share a statement.
      streams: (skip) => ({ written: [skip.from.name], guarded: [] }),
    });
    skippers.set(pool, skip);
  }
  const made = await skip({ from, to, lastEventAt });
  // Alone, outside the batches: a locked row holds back only its own projection (rare either way).
  return made === 'unmade' ? skipOne(pool, { from, to, lastEventAt }) : made;
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
