import { v7 as uuidv7 } from 'uuid';
import type pg from 'pg';
import { ValidationError } from '../../domain/shared/codec.js';
import { schemaVersionOf, type DomainEvent } from '../../domain/events.js';
import { ConcurrencyError, GlobalPosition, type AppendResult, type EventMeta, type ExpectedVersion, type StreamAppend } from '../../ports/event-store.js';
import { constraintOf, isConnectionFailure, pgCode, sqlState } from '../../ports/sql-errors.js';
import { encodeEvent } from './event-codec.js';
import { naturalBatching } from './natural-batching.js';

const streamIdPattern = /^[a-z][a-z0-9_]*-.+$/;

// One statement (flow_events_append, migrations 0004 and 0005), so it is the first write of its
// transaction and ordering by tx_id keeps every stream in version order.
const appendSql = `SELECT epoch, tx_id, position, stream_id, stream_position FROM flow_events_append(
  $1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb, $7::int[], $8::int[], $9::uuid[], $10::text[], $11::int[], $12::jsonb)`;

/** An append whose events all have their ids: a re-run of it is recognised by them. */
interface AppendRequest {
  appends: StreamAppend<DomainEvent & { id: string }>[];
  meta: EventMeta;
}

export interface AppendOptions {
  /** Group commit of concurrent appends (natural-batching.ts); `false` gives each append its own statement. */
  groupCommit?: { maxInFlight: number; maxEvents: number } | false;
}

/** How many times an append that lost its connection before an answer is sent again. */
const CONNECTION_RETRIES = 3;

const expectedOf = (request: AppendRequest, stream: string): ExpectedVersion | undefined => request.appends.find((a) => a.stream === stream)?.expected;

/**
 * The statement's own verdict (SQLSTATE CK409) on a stream whose version was not the expected one,
 * and which appends of a batch it fails: every one that expected that version of that stream.
 */
function versionConflict(error: unknown, requests: readonly AppendRequest[]): { conflict: ConcurrencyError; requests: Set<number> } | undefined {
  if (sqlState(error) !== pgCode.versionConflict) return undefined;
  const detail = JSON.parse(String((error as { detail?: string }).detail ?? '{}')) as { stream?: string; expected?: number; actual?: number };
  const stream = detail.stream ?? requests[0]!.appends[0]!.stream;
  const version = (e: ExpectedVersion | undefined) => (e === 'no_stream' ? 0 : e);
  const failed = new Set(requests.flatMap((r, i) => (version(expectedOf(r, stream)) === detail.expected ? [i] : [])));
  if (failed.size === 0) failed.add(0);
  const first = [...failed][0]!;
  return { conflict: new ConcurrencyError(stream, expectedOf(requests[first]!, stream) ?? 'any', Number(detail.actual ?? -1)), requests: failed };
}

/** The stream a unique violation on a stream's position names (`Key (stream_id, stream_position)=(s, n)`). */
export function streamOfUniqueViolation(error: unknown): string | undefined {
  if (sqlState(error) !== pgCode.uniqueViolation || constraintOf(error) !== 'flow_events_stream_id_stream_position_key') return undefined;
  const detail = String((error as { detail?: string }).detail ?? '');
  return /^Key \(stream_id, stream_position\)=\((.*), \d+\) already exists\.$/.exec(detail)?.[1];
}

const isDuplicateEventId = (error: unknown) => sqlState(error) === pgCode.uniqueViolation && constraintOf(error) === 'flow_events_pkey';

/** The appending half of the event store. */
export function eventAppends(pool: pg.Pool, options: AppendOptions = {}) {
  const groupCommit = options.groupCommit ?? { maxInFlight: 2, maxEvents: 1000 };

  async function currentVersion(stream: string): Promise<number> {
    const { rows } = await pool.query<{ v: string | null }>('SELECT max(stream_position)::text AS v FROM flow_events WHERE stream_id = $1', [stream]);
    return Number(rows[0]?.v ?? 0);
  }

  /** One statement, one transaction, for one or more independent appends (written streams disjoint). */
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
        if (a.events.length > 0) requestOf.set(a.stream, r);
        expected.push(a.expected === 'any' ? null : a.expected === 'no_stream' ? '0' : String(a.expected));
        correlationIds.push(meta.correlationId);
        actorTypes.push(meta.actor.type);
        actorIds.push(meta.actor.id);
        metadata.push(shared);
        a.events.forEach((event, i) => {
          streamOrd.push(streams.length);
          offsets.push(i + 1);
          ids.push(event.id);
          types.push(event.type);
          versions.push(schemaVersionOf(event.type));
          payloads.push(encodeEvent(event));
        });
      }
    });
    const { rows } = await db.query<{ epoch: number; tx_id: string; position: string; stream_id: string; stream_position: string }>({
      name: 'codexk8s_append',
      text: appendSql,
      values: [streams, expected, correlationIds, actorTypes, actorIds, JSON.stringify(metadata), streamOrd, offsets, ids, types, versions, JSON.stringify(payloads)],
    });
    return resultsOf(rows, requests.length, (stream) => requestOf.get(stream));
  }

  /**
   * The appends of `requests` that are in the log already, by their event ids: a statement whose
   * connection died after its COMMIT, sent again. Each is answered with its original positions; an
   * append whose ids are in the log for other streams is refused (ids are not to be reused).
   */
  async function alreadyAppended(requests: readonly AppendRequest[]): Promise<(AppendResult | undefined)[]> {
    const ids = requests.flatMap((r) => r.appends.flatMap((a) => a.events.map((e) => e.id)));
    const { rows } = await pool.query<{ id: string; epoch: number; tx_id: string; position: string; stream_id: string; stream_position: string }>(
      `SELECT f.id::text AS id, f.epoch, f.tx_id::text AS tx_id, f.position::text AS position, f.stream_id, f.stream_position::text AS stream_position
         FROM flow_events f WHERE f.id = ANY($1::uuid[]) ORDER BY f.epoch, f.tx_id, f.position`,
      [ids],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return requests.map((request) => {
      const events = request.appends.flatMap((a) => a.events.map((e) => ({ id: e.id, stream: a.stream })));
      const found = events.filter((e) => byId.has(e.id));
      if (found.length === 0) return undefined;
      if (found.length < events.length || found.some((e) => byId.get(e.id)!.stream_id !== e.stream)) {
        throw new ValidationError('append', ['event ids already used by other events: an id names one event for good']);
      }
      return resultsOf(events.map((e) => byId.get(e.id)!), 1, () => 0)[0];
    });
  }

  function validate(appends: StreamAppend<DomainEvent>[], meta: EventMeta): void {
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
   * an append that lost its connection is looked up by its event ids (it may have committed) and
   * else sent again, and an append to `any` versions is retried when a concurrent writer took a
   * version first.
   */
  async function appendAlone(request: AppendRequest, tx?: pg.PoolClient): Promise<AppendResult> {
    const retryAny = !tx && request.appends.every((a) => a.expected === 'any');
    for (let attempt = 1; ; attempt++) {
      try {
        return (await appendOnce(tx ?? pool, [request]))[0]!;
      } catch (error) {
        if (!tx && (isConnectionFailure(error) || isDuplicateEventId(error))) {
          const [earlier] = await alreadyAppended([request]);
          if (earlier) return earlier;
          if (isConnectionFailure(error) && attempt < CONNECTION_RETRIES) continue;
        }
        const found = versionConflict(error, [request]);
        if (found) throw found.conflict;
        const stream = streamOfUniqueViolation(error);
        if (stream) {
          if (retryAny && attempt < 100) {
            await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 10)));
            continue;
          }
          throw new ConcurrencyError(stream, expectedOf(request, stream) ?? 'any', await currentVersion(stream));
        }
        throw error;
      }
    }
  }

  /**
   * A batch in one statement. A version conflict names its stream, so only the appends that expected
   * that version fail and the rest go again together. Any other failure (a lost connection, a
   * duplicate) is sorted out append by append, after answering the appends the log already holds:
   * the statement may have committed before its connection died.
   */
  async function appendBatch(batch: AppendRequest[]): Promise<PromiseSettledResult<AppendResult>[]> {
    if (batch.length === 1) return Promise.allSettled([appendAlone(batch[0]!)]);
    try {
      return (await appendOnce(pool, batch)).map((value) => ({ status: 'fulfilled', value }));
    } catch (error) {
      const found = versionConflict(error, batch);
      if (!found) {
        const earlier = await alreadyAppended(batch).catch(() => batch.map(() => undefined));
        return Promise.allSettled(batch.map((r, i) => (earlier[i] ? Promise.resolve(earlier[i]) : appendAlone(r))));
      }
      const rest = batch.filter((_, i) => !found.requests.has(i));
      const settled = rest.length > 0 ? await appendBatch(rest) : [];
      let next = 0;
      return batch.map((_, i) => (found.requests.has(i) ? { status: 'rejected', reason: found.conflict } : settled[next++]!));
    }
  }

  const submit = !groupCommit
    ? (request: AppendRequest) => appendAlone(request)
    : naturalBatching<AppendRequest, AppendResult>({
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
   * Appends atomically (see EventStore.append). Every event gets its id here, before the first
   * attempt, so a re-run is recognised. Without `tx`, concurrent appends are committed in groups;
   * with `tx`, the append joins the caller's transaction and must be its first write.
   */
  async function append(appends: StreamAppend<DomainEvent>[], meta: EventMeta, tx?: pg.PoolClient): Promise<AppendResult> {
    validate(appends, meta);
    // UUIDv7: time-ordered, so the primary key grows at its right edge instead of touching (and
    // logging, and the replica replaying) a random index page per event.
    const request: AppendRequest = { meta, appends: appends.map((a) => ({ ...a, events: a.events.map((e) => ({ ...e, id: e.id ?? uuidv7() })) })) };
    if (tx) {
      const { rows } = await tx.query<{ assigned: boolean }>('SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS assigned');
      if (rows[0]?.assigned) throw new Error('an append must be the first write of its transaction');
      return appendAlone(request, tx);
    }
    return submit(request);
  }

  return { append };
}

/** Each request's result from the rows it wrote (in log order, so each append's last row is its position). */
function resultsOf(
  rows: readonly { epoch: number; tx_id: string; position: string; stream_id: string; stream_position: string }[],
  requests: number,
  requestOf: (stream: string) => number | undefined,
): AppendResult[] {
  const results = Array.from({ length: requests }, () => ({ position: GlobalPosition.start, versions: new Map<string, number>() }));
  for (const row of rows) {
    const result = results[requestOf(row.stream_id)!]!;
    const position = new GlobalPosition(row.epoch, BigInt(row.tx_id), BigInt(row.position));
    if (position.isAtOrAfter(result.position)) result.position = position;
    result.versions.set(row.stream_id, Math.max(result.versions.get(row.stream_id) ?? 0, Number(row.stream_position)));
  }
  return results.map(({ position, versions }) => ({ position, streams: [...versions].map(([stream, version]) => ({ stream, version })) }));
}
