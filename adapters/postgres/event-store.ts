import { v7 as uuidv7 } from 'uuid';
import type pg from 'pg';
import { decodeOrThrow, ValidationError } from '../../domain/shared/codec.js';
import { eventCodecs, schemaVersionOf, type DomainEvent, type EventCodecs } from '../../domain/events.js';
import { constraintOf, pgCode, sqlState } from './errors.js';
import { createGroupCommit } from './group-commit.js';
import { GlobalPosition } from './position.js';

export { GlobalPosition };

export type ExpectedVersion = 'any' | 'no_stream' | number;
export type ActorType = 'human' | 'agent' | 'system';

export interface EventMeta {
  correlationId: string;
  actor: { type: ActorType; id: string };
  causationId?: string;
  requestId?: string;
}

/** An event to append; `id` may be given to make a retried append of the same fact recognisable. */
export type NewEvent<E> = E & { id?: string };

export interface StreamAppend<E> {
  stream: string;
  expected: ExpectedVersion;
  events: NewEvent<E>[];
}

export interface AppendResult {
  /** The position of the last event written: a reader that has reached it has seen the whole append. */
  position: GlobalPosition;
  streams: { stream: string; version: number }[];
}

/** What the log adds to every event. */
export interface EventEnvelope {
  id: string;
  stream: string;
  streamPosition: number;
  position: GlobalPosition;
  schemaVersion: number;
  correlationId: string;
  actor: { type: ActorType; id: string };
  metadata: { causationId?: string; requestId?: string };
  createdAt: Date;
}

/** A stored event: a discriminated union over E's types, so narrowing on `type` narrows `data`. */
export type RecordedEvent<E extends { type: string; data: unknown } = { type: string; data: unknown }> = E extends unknown
  ? EventEnvelope & E
  : never;

export type RawEvent = EventEnvelope & { type: string; data: unknown };


/** The expected version did not match: nothing of the append was written. */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(`stream ${stream} is at version ${actual}, expected ${String(expected)}`);
  }
}

/** A stored event whose type is not known or whose payload does not match its codec. */
export class EventDecodeError extends Error {
  override readonly name = 'EventDecodeError';
  constructor(
    readonly event: Pick<RawEvent, 'id' | 'stream' | 'type' | 'position'>,
    readonly reason: string,
  ) {
    super(`event ${event.id} (${event.type} in ${event.stream} at ${event.position}): ${reason}`);
  }
}

/** A stream's events folded into state, with the version they reach (0 for no events). */
export function foldStream<S>(events: readonly RecordedEvent<DomainEvent>[], evolve: (state: S, event: DomainEvent) => S, initial: S): { state: S; version: number } {
  let state = initial;
  for (const e of events) state = evolve(state, { type: e.type, data: e.data } as DomainEvent);
  return { state, version: events.at(-1)?.streamPosition ?? 0 };
}

const streamIdPattern = /^[a-z][a-z0-9_]*-.+$/;
const NOTIFY_CHANNEL = 'codexk8s_events';
const NOTIFY_INTERVAL_MS = 5;
export const eventLogChannel = NOTIFY_CHANNEL;

// One statement (see flow_events_append in migrations/0004), so it is the first write of its
// transaction and ordering by tx_id keeps every stream in version order.
const appendSql = `SELECT epoch, tx_id, position, stream_id, stream_position FROM flow_events_append(
  $1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb, $7::int[], $8::int[], $9::uuid[], $10::text[], $11::int[], $12::jsonb)`;

// Qualified, so that ORDER BY below sorts the columns and not these text renderings of them.
const columns = `f.epoch, f.tx_id::text AS tx_id, f.position::text AS position, f.id::text AS id, f.stream_id,
  f.stream_position::text AS stream_position, f.correlation_id, f.actor_type, f.actor_id, f.event_type,
  f.schema_version, f.payload, f.metadata, f.created_at`;

// Only rows of transactions older than every running one: a slower transaction with a smaller tx_id
// can never commit behind the returned rows. Earlier epochs are complete by construction.
const readAllSql = `
SELECT ${columns} FROM flow_events f
 WHERE (f.epoch, f.tx_id, f.position) > ($1::int, $2::xid8, $3::bigint)
   AND (f.epoch < (SELECT epoch FROM flow_events_epoch) OR f.tx_id < pg_snapshot_xmin(pg_current_snapshot()))
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

export interface EventStoreOptions {
  /** Wakes subscribers in this and other processes after a commit; see `notifyAppended`. */
  notify?: boolean;
  /** Group commit of concurrent appends (group-commit.ts); `false` gives each append its own statement. */
  groupCommit?: { maxInFlight: number; maxEvents: number } | false;
}

interface AppendRequest {
  appends: StreamAppend<DomainEvent>[];
  meta: EventMeta;
}

export type EventStore = ReturnType<typeof createEventStore>;

/** The event store over the domain's event codecs (domain/events.ts). */
export function createEventStore(pool: pg.Pool, options: EventStoreOptions = {}) {
  const codecs: EventCodecs = eventCodecs;
  type E = DomainEvent;
  const notifyEnabled = options.notify ?? true;
  const groupCommit = options.groupCommit ?? { maxInFlight: 2, maxEvents: 1000 };

  function decode(raw: RawEvent): RecordedEvent<E> {
    const codec = codecs[raw.type];
    if (!codec) throw new EventDecodeError(raw, `unknown event type ${JSON.stringify(raw.type)}`);
    try {
      return { ...raw, data: decodeOrThrow(codec, raw.data, `${raw.type} payload`) } as RecordedEvent<E>;
    } catch (error) {
      throw new EventDecodeError(raw, error instanceof ValidationError ? error.message : String(error));
    }
  }

  function encode(event: E): unknown {
    const codec = codecs[event.type];
    if (!codec) throw new ValidationError('event', [`unknown event type ${JSON.stringify(event.type)}`]);
    decodeOrThrow(codec, event.data, `${event.type} payload`);
    return codec.encode(event.data);
  }

  // Coalesced wake-up: at most one NOTIFY in flight and at most one per NOTIFY_INTERVAL_MS, and one
  // more after it if appends landed meanwhile. Each NOTIFY is a round trip and a transaction; under
  // load one per few milliseconds wakes the subscribers just as well.
  let notifyInFlight = false;
  let notifyTimer: NodeJS.Timeout | undefined;
  let notifyAgain = false;
  let lastNotify = 0;
  function notifyAppended(): void {
    if (!notifyEnabled) return;
    if (notifyInFlight || notifyTimer) {
      notifyAgain = true;
      return;
    }
    const wait = lastNotify + NOTIFY_INTERVAL_MS - performance.now();
    if (wait > 0) {
      notifyTimer = setTimeout(() => {
        notifyTimer = undefined;
        notifyAppended();
      }, wait);
      notifyTimer.unref();
      return;
    }
    notifyInFlight = true;
    lastNotify = performance.now();
    pool
      .query(`SELECT pg_notify('${NOTIFY_CHANNEL}', '1')`)
      .catch(() => {}) // a lost wake-up only delays subscribers: they poll too
      .finally(() => {
        notifyInFlight = false;
        if (notifyAgain) {
          notifyAgain = false;
          notifyAppended();
        }
      });
  }

  /**
   * The statement's own verdict (SQLSTATE CK409) on a stream whose version was not the expected one,
   * and which appends of a batch it fails: every one that expected that version of that stream.
   */
  function versionConflict(error: unknown, requests: readonly AppendRequest[]): { conflict: ConcurrencyError; requests: Set<number> } | undefined {
    if (sqlState(error) !== pgCode.versionConflict) return undefined;
    const detail = JSON.parse(String((error as { detail?: string }).detail ?? '{}')) as { stream?: string; expected?: number; actual?: number };
    const stream = detail.stream ?? requests[0]!.appends[0]!.stream;
    const expectedOf = (r: AppendRequest) => r.appends.find((a) => a.stream === stream)?.expected;
    const version = (e: ExpectedVersion | undefined) => (e === 'no_stream' ? 0 : e);
    const failed = new Set(requests.flatMap((r, i) => (version(expectedOf(r)) === detail.expected ? [i] : [])));
    if (failed.size === 0) failed.add(0);
    const first = [...failed][0]!;
    return { conflict: new ConcurrencyError(stream, expectedOf(requests[first]!) ?? 'any', Number(detail.actual ?? -1)), requests: failed };
  }

  async function currentVersion(db: pg.Pool | pg.PoolClient, stream: string): Promise<number> {
    const { rows } = await db.query<{ v: string | null }>(
      'SELECT max(stream_position)::text AS v FROM flow_events WHERE stream_id = $1',
      [stream],
    );
    return Number(rows[0]?.v ?? 0);
  }

  /** One statement, one transaction, for one or more independent appends (streams disjoint). */
  async function appendOnce(db: pg.Pool | pg.PoolClient, requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    // One array entry per stream (with its append's meta), and one per event: the statement unnests them side by side.
    const streams: string[] = [];
    const expected: (string | null)[] = [];
    const correlationIds: string[] = [];
    const actorTypes: string[] = [];
    const actorIds: string[] = [];
    const metadata: unknown[] = [];
    const streamOrd: number[] = [];
    const offsets: number[] = [];
    const ids: string[] = [];
    const types: string[] = [];
    const versions: number[] = [];
    const payloads: unknown[] = [];
    const requestOf = new Map<string, number>();
    requests.forEach(({ appends, meta }, r) => {
      const shared = {
        ...(meta.causationId ? { causationId: meta.causationId } : {}),
        ...(meta.requestId ? { requestId: meta.requestId } : {}),
      };
      for (const a of appends) {
        streams.push(a.stream);
        requestOf.set(a.stream, r);
        expected.push(a.expected === 'any' ? null : a.expected === 'no_stream' ? '0' : String(a.expected));
        correlationIds.push(meta.correlationId);
        actorTypes.push(meta.actor.type);
        actorIds.push(meta.actor.id);
        metadata.push(shared);
        a.events.forEach((event, i) => {
          streamOrd.push(streams.length);
          offsets.push(i + 1);
          // UUIDv7: time-ordered, so the primary key grows at its right edge instead of touching
          // (and logging, and the replica replaying) a random index page per event.
          ids.push(event.id ?? uuidv7());
          types.push(event.type);
          versions.push(schemaVersionOf(event.type));
          payloads.push(encode(event));
        });
      }
    });
    const { rows } = await db.query<{ epoch: number; tx_id: string; position: string; stream_id: string; stream_position: string }>({
      name: 'codexk8s_append',
      text: appendSql,
      values: [streams, expected, correlationIds, actorTypes, actorIds, JSON.stringify(metadata), streamOrd, offsets, ids, types, versions, JSON.stringify(payloads)],
    });
    // Rows come in log order, so each append's last row is its position.
    const results = requests.map(() => ({ position: GlobalPosition.start, versions: new Map<string, number>() }));
    for (const row of rows) {
      const result = results[requestOf.get(row.stream_id)!]!;
      result.position = new GlobalPosition(row.epoch, BigInt(row.tx_id), BigInt(row.position));
      result.versions.set(row.stream_id, Math.max(result.versions.get(row.stream_id) ?? 0, Number(row.stream_position)));
    }
    return results.map(({ position, versions: v }) => ({ position, streams: [...v].map(([stream, version]) => ({ stream, version })) }));
  }

  function validate(appends: StreamAppend<E>[], meta: EventMeta): void {
    if (appends.length === 0 || appends.every((a) => a.events.length === 0)) {
      throw new ValidationError('append', ['no events to append']);
    }
    const seen = new Set<string>();
    for (const a of appends) {
      if (!streamIdPattern.test(a.stream) || a.stream.length > 512) throw new ValidationError('append', [`bad stream id ${JSON.stringify(a.stream)}`]);
      if (seen.has(a.stream)) throw new ValidationError('append', [`stream ${a.stream} named twice`]);
      seen.add(a.stream);
      if (typeof a.expected === 'number' && (!Number.isInteger(a.expected) || a.expected < 0)) {
        throw new ValidationError('append', [`bad expected version ${a.expected}`]);
      }
      if (a.events.length === 0 && a.expected === 'any') throw new ValidationError('append', [`stream ${a.stream} has no events and no expected version`]);
    }
    if (!meta.correlationId) throw new ValidationError('append', ['correlationId is required']);
  }

  /**
   * One append in a statement of its own (in the caller's transaction `tx`, if given). Outside one,
   * an append to `any` versions is retried when a concurrent writer took a version first.
   */
  async function appendAlone(request: AppendRequest, tx?: pg.PoolClient): Promise<AppendResult> {
    const retryAny = !tx && request.appends.every((a) => a.expected === 'any');
    for (let attempt = 1; ; attempt++) {
      try {
        return (await appendOnce(tx ?? pool, [request]))[0]!;
      } catch (error) {
        const found = versionConflict(error, [request]);
        if (found) throw found.conflict;
        if (sqlState(error) === pgCode.uniqueViolation && constraintOf(error) === 'flow_events_stream_id_stream_position_key') {
          if (retryAny && attempt < 100) {
            await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 10)));
            continue;
          }
          const first = request.appends.find((a) => a.expected !== 'any') ?? request.appends[0]!;
          throw new ConcurrencyError(first.stream, first.expected, await currentVersion(pool, first.stream));
        }
        throw error;
      }
    }
  }

  /**
   * A batch in one statement. A version conflict names its stream, so only the appends that expected
   * that version fail and the rest go again together; any other failure is sorted out append by append.
   */
  async function appendBatch(batch: AppendRequest[]): Promise<PromiseSettledResult<AppendResult>[]> {
    if (batch.length === 1) return Promise.allSettled([appendAlone(batch[0]!)]);
    try {
      return (await appendOnce(pool, batch)).map((value) => ({ status: 'fulfilled', value }));
    } catch (error) {
      const found = versionConflict(error, batch);
      if (!found) return Promise.allSettled(batch.map((r) => appendAlone(r)));
      const rest = batch.filter((_, i) => !found.requests.has(i));
      const settled = rest.length > 0 ? await appendBatch(rest) : [];
      let next = 0;
      return batch.map((_, i) => (found.requests.has(i) ? { status: 'rejected', reason: found.conflict } : settled[next++]!));
    }
  }

  const submit = !groupCommit
    ? (request: AppendRequest) => appendAlone(request)
    : createGroupCommit<AppendRequest, AppendResult>({
        maxInFlight: groupCommit.maxInFlight,
        maxWeight: groupCommit.maxEvents,
        weight: (r) => r.appends.reduce((n, a) => n + a.events.length, 0),
        streams: (r) => ({
          written: r.appends.filter((a) => a.events.length > 0).map((a) => a.stream),
          guarded: r.appends.filter((a) => a.events.length === 0).map((a) => a.stream),
        }),
        run: appendBatch,
      });

  /**
   * Appends to one or more streams atomically, each checked against its expected version (a stream
   * with no events only checks). On a version mismatch nothing is written and a ConcurrencyError is
   * thrown. Without `tx`, concurrent appends are committed in groups (see group-commit.ts); with
   * `tx`, the append joins the caller's transaction and must be its first write, and the caller
   * calls `notifyAppended` after COMMIT.
   */
  async function append(appends: StreamAppend<E>[], meta: EventMeta, tx?: pg.PoolClient): Promise<AppendResult> {
    validate(appends, meta);
    if (tx) {
      const { rows } = await tx.query<{ assigned: boolean }>('SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS assigned');
      if (rows[0]?.assigned) throw new Error('an append must be the first write of its transaction');
      return appendAlone({ appends, meta }, tx);
    }
    const result = await submit({ appends, meta });
    notifyAppended();
    return result;
  }

  /** Runs `work` in a transaction on one connection; subscribers are woken after it commits. */
  async function transaction<T>(work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      notifyAppended();
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async function readStream(stream: string, options: { after?: number; limit?: number } = {}): Promise<RecordedEvent<E>[]> {
    const { rows } = await pool.query<Row>({
      name: 'codexk8s_read_stream',
      text: readStreamSql,
      values: [stream, options.after ?? 0, options.limit ?? 100_000],
    });
    return rows.map((r) => decode(toRaw(r)));
  }

  /** Several whole streams in one round trip, each in version order. */
  async function readStreams(streams: string[]): Promise<Map<string, RecordedEvent<E>[]>> {
    const { rows } = await pool.query<Row>({
      name: 'codexk8s_read_streams',
      text: `SELECT ${columns} FROM flow_events f WHERE f.stream_id = ANY($1::text[]) ORDER BY f.stream_id, f.stream_position`,
      values: [streams],
    });
    const out = new Map<string, RecordedEvent<E>[]>(streams.map((s) => [s, []]));
    for (const row of rows) out.get(row.stream_id)?.push(decode(toRaw(row)));
    return out;
  }

  /** Folds a stream into state: what a command handler needs to decide. */
  async function aggregate<S>(stream: string, evolve: (state: S, event: E) => S, initial: S): Promise<{ state: S; version: number }> {
    return foldStream(await readStream(stream), evolve, initial);
  }

  /** The events after `after` in commit order, never skipping one that commits later with a smaller id. */
  async function readAllRaw(after: GlobalPosition, limit: number, db: pg.Pool | pg.PoolClient = pool): Promise<RawEvent[]> {
    const { rows } = await db.query<Row>({
      name: 'codexk8s_read_all',
      text: readAllSql,
      values: [after.epoch, after.txId.toString(), after.seq.toString(), limit],
    });
    return rows.map(toRaw);
  }

  /** Particular events by id, in log order (for example parked ones being retried). */
  async function readByIds(ids: string[], db: pg.Pool | pg.PoolClient = pool): Promise<RawEvent[]> {
    const { rows } = await db.query<Row>(
      `SELECT ${columns} FROM flow_events f WHERE f.id = ANY($1::uuid[]) ORDER BY f.epoch, f.tx_id, f.position`,
      [ids],
    );
    return rows.map(toRaw);
  }

  /** The position of the newest event a reader may see now. */
  async function headPosition(db: pg.Pool | pg.PoolClient = pool): Promise<GlobalPosition> {
    const { rows } = await db.query<{ epoch: number; tx_id: string; position: string }>(`
      SELECT f.epoch, f.tx_id::text AS tx_id, f.position::text AS position FROM flow_events f
       WHERE f.epoch < (SELECT epoch FROM flow_events_epoch) OR f.tx_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY f.epoch DESC, f.tx_id DESC, f.position DESC LIMIT 1`);
    const r = rows[0];
    return r ? new GlobalPosition(r.epoch, BigInt(r.tx_id), BigInt(r.position)) : GlobalPosition.start;
  }

  return { append, transaction, notifyAppended, readStream, readStreams, aggregate, readAllRaw, readByIds, headPosition, decode, pool };
}
