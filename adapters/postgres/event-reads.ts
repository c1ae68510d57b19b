import type pg from 'pg';
import type { DomainEvent } from '../../domain/events.js';
import { GlobalPosition, type ActorType, type Queryable, type RawEvent, type RecordedEvent } from '../../ports/event-store.js';
import { decodeEvent } from './event-codec.js';
import { naturalBatching } from './natural-batching.js';

// Qualified, so that ORDER BY below sorts the columns and not these text renderings of them.
const columns = `f.epoch, f.tx_id::text AS tx_id, f.position::text AS position, f.id::text AS id, f.stream_id,
  f.stream_position::text AS stream_position, f.correlation_id, f.actor_type, f.actor_id, f.event_type,
  f.schema_version, f.payload, f.metadata, f.created_at`;

// Only rows of transactions older than every running one: a slower transaction with a smaller tx_id
// can never commit behind the returned rows. Earlier epochs are complete by construction.
const visible = `(f.epoch < (SELECT epoch FROM flow_events_epoch) OR f.tx_id < pg_snapshot_xmin(pg_current_snapshot()))`;

const readAllSql = `
SELECT ${columns} FROM flow_events f
 WHERE (f.epoch, f.tx_id, f.position) > ($1::int, $2::xid8, $3::bigint) AND ${visible}
 ORDER BY f.epoch, f.tx_id, f.position
 LIMIT $4`;

const readStreamSql = `
SELECT ${columns} FROM flow_events f
 WHERE f.stream_id = $1 AND f.stream_position > $2
 ORDER BY f.stream_position
 LIMIT $3`;

interface Row {
  epoch: number;
  tx_id: string;
  position: string;
  id: string;
  stream_id: string;
  stream_position: string;
  correlation_id: string;
  actor_type: ActorType;
  actor_id: string;
  event_type: string;
  schema_version: number;
  payload: unknown;
  metadata: { causationId?: string; requestId?: string };
  created_at: Date;
}

const toRaw = (row: Row): RawEvent => ({
  id: row.id,
  stream: row.stream_id,
  streamPosition: Number(row.stream_position),
  position: new GlobalPosition(row.epoch, BigInt(row.tx_id), BigInt(row.position)),
  type: row.event_type,
  data: row.payload,
  schemaVersion: row.schema_version,
  correlationId: row.correlation_id,
  actor: { type: row.actor_type, id: row.actor_id },
  metadata: row.metadata,
  createdAt: row.created_at,
});

/** The reading half of the event store. */
export function eventReads(pool: pg.Pool) {
  /** The rows of these streams, in order, by stream. */
  async function rowsOfStreams(streams: readonly string[]): Promise<Map<string, Row[]>> {
    const { rows } = await pool.query<Row>({
      name: 'codexk8s_read_streams',
      text: `SELECT ${columns} FROM flow_events f WHERE f.stream_id = ANY($1::text[]) ORDER BY f.stream_id, f.stream_position`,
      values: [streams],
    });
    const out = new Map<string, Row[]>(streams.map((s) => [s, []]));
    for (const row of rows) out.get(row.stream_id)?.push(row);
    return out;
  }

  // Whole-stream reads that callers make while earlier ones are in flight go out together: a burst
  // of launches and outcomes reads many runs' streams at once, and one round trip serves them all.
  // Each caller decodes its own streams, so an event that does not decode fails only its readers.
  const batchedRead = naturalBatching<readonly string[], Map<string, RecordedEvent<DomainEvent>[]>>({
    maxInFlight: 2,
    maxWeight: 1000,
    weight: (streams) => streams.length,
    run: async (batch) => {
      const read = await rowsOfStreams([...new Set(batch.flat())]);
      return batch.map((streams): PromiseSettledResult<Map<string, RecordedEvent<DomainEvent>[]>> => {
        try {
          return { status: 'fulfilled', value: new Map(streams.map((s) => [s, read.get(s)!.map((r) => decodeEvent(toRaw(r)))])) };
        } catch (error) {
          return { status: 'rejected', reason: error };
        }
      });
    },
  });

  async function readStream(stream: string, options: { after?: number; limit?: number } = {}): Promise<RecordedEvent<DomainEvent>[]> {
    if (options.after === undefined && options.limit === undefined) return (await batchedRead([stream])).get(stream)!;
    const { rows } = await pool.query<Row>({
      name: 'codexk8s_read_stream',
      text: readStreamSql,
      values: [stream, options.after ?? 0, options.limit ?? 100_000],
    });
    return rows.map((r) => decodeEvent(toRaw(r)));
  }

  /** Whole streams, read together in one round trip (with other callers' reads when the store is busy). */
  const readStreams = (streams: readonly string[]): Promise<Map<string, RecordedEvent<DomainEvent>[]>> => batchedRead(streams);

  async function readAllRaw(after: GlobalPosition, limit: number, db: Queryable = pool): Promise<RawEvent[]> {
    const { rows } = await db.query<Row>({
      name: 'codexk8s_read_all',
      text: readAllSql,
      values: [after.epoch, after.txId.toString(), after.seq.toString(), limit],
    });
    return rows.map(toRaw);
  }

  async function readByIds(ids: readonly string[], db: Queryable = pool): Promise<RawEvent[]> {
    const { rows } = await db.query<Row>(`SELECT ${columns} FROM flow_events f WHERE f.id = ANY($1::uuid[]) ORDER BY f.epoch, f.tx_id, f.position`, [ids]);
    return rows.map(toRaw);
  }

  async function headPosition(db: Queryable = pool): Promise<GlobalPosition> {
    const { rows } = await db.query<{ epoch: number; tx_id: string; position: string }>(`
      SELECT f.epoch, f.tx_id::text AS tx_id, f.position::text AS position FROM flow_events f
       WHERE ${visible}
       ORDER BY f.epoch DESC, f.tx_id DESC, f.position DESC LIMIT 1`);
    const r = rows[0];
    return r ? new GlobalPosition(r.epoch, BigInt(r.tx_id), BigInt(r.position)) : GlobalPosition.start;
  }

  return { readStream, readStreams, readAllRaw, readByIds, headPosition, decode: decodeEvent };
}
