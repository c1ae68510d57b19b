import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  ConcurrencyError,
  createEventStore,
  EventDecodeError,
  eventLogChannel,
  type PostgresEventStore,
  type RawEvent,
} from '../adapters/postgres/event-store.js';
import { GlobalPosition } from '../ports/position.js';
import { ValidationError } from '../domain/shared/codec.js';
import { countingPool, useTestDatabase, withAdmin, type TestDatabase } from './support/cluster.js';
import { runFailed, runRequested, systemMeta } from './support/events.js';
import { until } from './support/until.js';

let db: TestDatabase;
let store: PostgresEventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

async function readEverything(from = GlobalPosition.start): Promise<RawEvent[]> {
  const out: RawEvent[] = [];
  let position = from;
  for (;;) {
    const batch = await store.readAllRaw(position, 500);
    if (batch.length === 0) return out;
    out.push(...batch);
    position = batch[batch.length - 1]!.position;
  }
}

/**
 * The events of these streams only. The reader's horizon (pg_snapshot_xmin) is cluster-wide, so a
 * transaction in another test file's database can hold it back; events written before a test can
 * then still become visible during it.
 */
const ours = (events: RawEvent[], streams: string[]) => events.filter((e) => streams.includes(e.stream));

async function countRows(where = 'true', params: unknown[] = []): Promise<number> {
  const { rows } = await db.pools.primary.query<{ n: string }>(`SELECT count(*)::text AS n FROM flow_events WHERE ${where}`, params);
  return Number(rows[0]!.n);
}

describe('append and read a stream', () => {
  it('numbers events from 1 and returns the versions and position it wrote', async () => {
    const runId = randomUUID();
    const stream = `run-${runId}`;
    const first = await store.append([{ stream, expected: 'no_stream', events: [runRequested(runId)] }], systemMeta());
    assert.deepEqual(first.streams, [{ stream, version: 1 }]);
    const second = await store.append([{ stream, expected: 1, events: [runFailed(runId), runFailed(runId, 'again')] }], systemMeta());
    assert.deepEqual(second.streams, [{ stream, version: 3 }]);
    assert.ok(second.position.compare(first.position) > 0);

    const events = await store.readStream(stream);
    assert.deepEqual(events.map((e) => [e.streamPosition, e.type]), [[1, 'RunRequested'], [2, 'RunFailed'], [3, 'RunFailed']]);
    assert.equal((events[2]!.data as { runId: string }).runId, runId);
    assert.equal((await store.readStream(stream, { after: 1 })).length, 2);
  });

  it('keeps the envelope: correlation, actor, causation and request ids', async () => {
    const stream = `run-${randomUUID()}`;
    const correlationId = `delivery-${randomUUID()}`;
    await store.append([{ stream, expected: 'any', events: [runRequested()] }], {
      correlationId,
      actor: { type: 'human', id: 'user-1' },
      causationId: 'cause-1',
      requestId: 'req-1',
    });
    const [event] = await store.readStream(stream);
    assert.equal(event!.correlationId, correlationId);
    assert.deepEqual(event!.actor, { type: 'human', id: 'user-1' });
    assert.deepEqual(event!.metadata, { causationId: 'cause-1', requestId: 'req-1' });
    assert.equal(event!.schemaVersion, 1);
  });

  it('appends to several streams in one transaction, all or nothing', async () => {
    const a = `run-${randomUUID()}`;
    const b = `delivery-${randomUUID()}`;
    await store.append([{ stream: a, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    // b is new, a is at 1: expecting a at 0 fails, and b must stay empty.
    await assert.rejects(
      store.append(
        [
          { stream: b, expected: 'no_stream', events: [runRequested()] },
          { stream: a, expected: 'no_stream', events: [runRequested()] },
        ],
        systemMeta(),
      ),
      (error: unknown) => error instanceof ConcurrencyError && error.stream === a && error.actual === 1,
    );
    assert.equal(await countRows('stream_id = $1', [b]), 0);

    const both = await store.append(
      [
        { stream: b, expected: 'no_stream', events: [runRequested()] },
        { stream: a, expected: 1, events: [runRequested()] },
      ],
      systemMeta(),
    );
    assert.deepEqual(both.streams.sort((x, y) => x.stream.localeCompare(y.stream)), [{ stream: a, version: 2 }, { stream: b, version: 1 }].sort((x, y) => x.stream.localeCompare(y.stream)));
    // Both streams' new events were written by one transaction: an append is atomic.
    const rows = await db.pools.primary.query<{ tx: string }>(
      'SELECT DISTINCT tx_id::text AS tx FROM flow_events WHERE (stream_id, stream_position) IN (($1, 2), ($2, 1))', [a, b]);
    assert.equal(rows.rows.length, 1);
  });

  it('refuses a stale or a too-new expected version and writes nothing', async () => {
    const stream = `run-${randomUUID()}`;
    await store.append([{ stream, expected: 'no_stream', events: [runRequested(), runRequested()] }], systemMeta());
    for (const expected of [0, 1, 3, 'no_stream'] as const) {
      await assert.rejects(store.append([{ stream, expected, events: [runRequested()] }], systemMeta()), ConcurrencyError);
    }
    assert.equal(await countRows('stream_id = $1', [stream]), 2);
  });

  it('a stream given with no events only guards: its version is checked like any other', async () => {
    const guarded = `project-${randomUUID()}`;
    await store.append([{ stream: guarded, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    const runId = randomUUID();
    const ok = await store.append([{ stream: guarded, expected: 1, events: [] }, { stream: `run-${runId}`, expected: 'no_stream', events: [runRequested(runId)] }], systemMeta());
    assert.deepEqual(ok.streams, [{ stream: `run-${runId}`, version: 1 }], 'the guard writes nothing');
    const late = randomUUID();
    await assert.rejects(
      store.append([{ stream: guarded, expected: 0, events: [] }, { stream: `run-${late}`, expected: 'no_stream', events: [runRequested(late)] }], systemMeta()),
      (e: unknown) => e instanceof ConcurrencyError && e.stream === guarded && e.actual === 1,
    );
    assert.equal(await countRows('stream_id = $1', [`run-${late}`]), 0);
    await assert.rejects(store.append([{ stream: guarded, expected: 'any', events: [] }, { stream: `run-${late}`, expected: 'any', events: [runRequested(late)] }], systemMeta()), ValidationError);
  });

  it('concurrent appends are committed in groups; a conflict fails only its own append', async () => {
    const grouped = createEventStore(db.pools.primary, { groupCommit: { maxInFlight: 1, maxEvents: 1000 } });
    const taken = `run-${randomUUID()}`;
    await grouped.append([{ stream: taken, expected: 'no_stream', events: [runFailed(taken.slice(4))] }], systemMeta());
    const streams = Array.from({ length: 30 }, () => `run-${randomUUID()}`);
    const settled = await Promise.allSettled([
      ...streams.map((stream) => grouped.append([{ stream, expected: 'no_stream', events: [runRequested(stream.slice(4))] }], systemMeta(stream))),
      grouped.append([{ stream: taken, expected: 'no_stream', events: [runFailed(taken.slice(4))] }], systemMeta()),
      // The same stream twice at once: never in one statement, so the second is checked after the first.
      grouped.append([{ stream: streams[0]!, expected: 'any', events: [runFailed(streams[0]!.slice(4))] }], systemMeta()),
    ]);
    assert.deepEqual(settled.map((s) => s.status), [...streams.map(() => 'fulfilled'), 'rejected', 'fulfilled']);
    assert.ok((settled[30] as PromiseRejectedResult).reason instanceof ConcurrencyError);
    // Appends that only read (guard) a stream may share a statement; a stale guard fails each append that holds it.
    const guarding = (expected: number) => {
      const stream = `run-${randomUUID()}`;
      return grouped.append([{ stream: taken, expected, events: [] }, { stream, expected: 'no_stream', events: [runRequested(stream.slice(4))] }], systemMeta());
    };
    const guards = await Promise.allSettled([...Array.from({ length: 10 }, () => guarding(1)), ...Array.from({ length: 5 }, () => guarding(0))]);
    assert.deepEqual(guards.map((s) => s.status), [...Array(10).fill('fulfilled'), ...Array(5).fill('rejected')]);
    const guardTransactions = new Set(guards.flatMap((s) => (s.status === 'fulfilled' ? [s.value.position.txId] : []))).size;
    assert.ok(guardTransactions < 10, `${guardTransactions} transactions for 10 appends guarding one stream`);
    const { rows } = await db.pools.primary.query<{ transactions: number; events: number; correlated: number }>(
      `SELECT count(DISTINCT tx_id)::int AS transactions, count(*)::int AS events,
              count(*) FILTER (WHERE correlation_id = stream_id)::int AS correlated
         FROM flow_events WHERE stream_id = ANY($1)`,
      [streams],
    );
    assert.equal(rows[0]!.events, 31);
    assert.equal(rows[0]!.correlated, 30, 'each append keeps its own correlation id');
    assert.ok(rows[0]!.transactions < 30, `${rows[0]!.transactions} transactions for 30 appends`);
    const positions = settled.filter((s): s is PromiseFulfilledResult<Awaited<ReturnType<PostgresEventStore['append']>>> => s.status === 'fulfilled').map((s) => s.value.position.toString());
    assert.equal(new Set(positions).size, positions.length, 'each append gets the position of its own last event');
    assert.deepEqual((await grouped.readStream(streams[0]!)).map((e) => e.type), ['RunRequested', 'RunFailed']);
  });

  it('concurrent whole-stream reads share round trips, and each caller gets exactly its streams', async () => {
    const counted = countingPool(db.pools.primary);
    const reading = createEventStore(counted.pool);
    const streams = Array.from({ length: 20 }, () => `run-${randomUUID()}`);
    await Promise.all(streams.map((stream, i) => reading.append([{ stream, expected: 'no_stream', events: [runRequested(stream.slice(4)), ...(i % 2 ? [runFailed(stream.slice(4))] : [])] }], systemMeta())));
    const empty = `run-${randomUUID()}`;
    counted.queries = 0;
    const [single, pairs, none] = await Promise.all([
      Promise.all(streams.map((stream) => reading.readStream(stream))),
      Promise.all(streams.map((stream, i) => reading.readStreams([stream, streams[(i + 1) % streams.length]!]))),
      reading.readStreams([empty]),
    ]);
    assert.ok(counted.queries <= 6, `${counted.queries} queries for 41 concurrent reads`);
    const expected = (stream: string) => (streams.indexOf(stream) % 2 ? ['RunRequested', 'RunFailed'] : ['RunRequested']);
    single.forEach((events, i) => assert.deepEqual(events.map((e) => [e.stream, e.type]), expected(streams[i]!).map((t) => [streams[i], t])));
    pairs.forEach((read, i) => assert.deepEqual([...read.keys()], [streams[i], streams[(i + 1) % streams.length]]));
    assert.deepEqual([...none], [[empty, []]]);
    // A caller's list is its own: changing it changes no other caller's.
    single[1]!.length = 0;
    assert.equal(pairs[1]!.get(streams[1]!)!.length, 2);
    // Reads after a position or with a limit are their own statement, and still right.
    assert.deepEqual((await reading.readStream(streams[1]!, { after: 1 })).map((e) => e.type), ['RunFailed']);
  });

  it('a stream with an event that does not decode fails only its own readers, not those batched with them', async () => {
    const good = `run-${randomUUID()}`;
    const other = `run-${randomUUID()}`;
    const bad = `run-${randomUUID()}`;
    await store.append([{ stream: good, expected: 'no_stream', events: [runRequested(good.slice(4))] }], systemMeta());
    await store.append([{ stream: other, expected: 'no_stream', events: [runRequested(other.slice(4))] }], systemMeta());
    await db.ownerPool.query(
      `INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id, event_type, payload)
       VALUES (gen_random_uuid(), $1, 1, 'c', 'system', 'test', 'RunFailed', '{"runId": 5}')`,
      [bad],
    );
    // Two reads fill the two statements in flight; the next ones wait and go out together.
    const [first, second, badRead, otherRead, both] = await Promise.allSettled([
      store.readStream(good), store.readStream(good), store.readStream(bad), store.readStream(other), store.readStreams([other, bad]),
    ]);
    assert.equal(first.status, 'fulfilled');
    assert.equal(second.status, 'fulfilled');
    assert.ok(badRead.status === 'rejected' && badRead.reason instanceof EventDecodeError);
    assert.equal(otherRead.status, 'fulfilled', `a healthy stream's read failed: ${otherRead.status === 'rejected' ? String(otherRead.reason) : ''}`);
    assert.ok(both.status === 'rejected' && both.reason instanceof EventDecodeError, 'a read of both streams fails');
  });

  it('an append wakes listeners once it has committed (in a transaction: once that commits); a store made with notify false wakes none', async () => {
    const listener = await db.pools.primary.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.channel));
    try {
      await listener.query(`LISTEN ${eventLogChannel}`);
      const stream = `run-${randomUUID()}`;
      await store.append([{ stream, expected: 'no_stream', events: [runRequested(stream.slice(4))] }], systemMeta());
      await until(() => heard.length === 1, 'the append\'s notification');
      await store.transaction(async (tx) => {
        await store.append([{ stream, expected: 1, events: [runFailed(stream.slice(4))] }], systemMeta(), tx);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(heard.length, 1, 'nothing heard before the commit');
      });
      await until(() => heard.length === 2, 'the notification after the commit');
      await createEventStore(db.pools.primary, { notify: false }).append([{ stream, expected: 2, events: [runFailed(stream.slice(4))] }], systemMeta());
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(heard, [eventLogChannel, eventLogChannel]);
    } finally {
      await listener.query(`UNLISTEN ${eventLogChannel}`).catch(() => {});
      listener.release();
    }
  });

  it("appends from many processes never wait on PostgreSQL's NOTIFY lock, which would make their commits take turns", async () => {
    // A transaction that notified takes a cluster-wide lock at its commit, held through its WAL
    // flush (found by a review: a NOTIFY in the append's own statement halved the appends of four
    // stores). Four stores stand for four processes, each with its statements in flight.
    const stores = Array.from({ length: 4 }, () => createEventStore(db.pools.primary));
    let writing = true;
    let appends = 0;
    const writer = async (appending: PostgresEventStore) => {
      while (writing) {
        const stream = `run-${randomUUID()}`;
        await appending.append([{ stream, expected: 'no_stream', events: [runRequested(stream.slice(4))] }], systemMeta());
        appends++;
      }
    };
    const writers = stores.flatMap((s) => [writer(s), writer(s), writer(s)]);
    let waits = 0;
    const until = Date.now() + 1500;
    await withAdmin(async (admin) => {
      while (Date.now() < until) {
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'object' AND query LIKE '%flow_events_append%'`,
        );
        waits += rows[0]!.n;
        await new Promise((r) => setTimeout(r, 2));
      }
    }, db.name);
    writing = false;
    await Promise.all(writers);
    assert.ok(appends > 0);
    assert.equal(waits, 0, `${waits} samples of an append waiting for the NOTIFY lock (${appends} appends)`);
  });

  it('validates payloads with the domain codecs before writing', async () => {
    const stream = `run-${randomUUID()}`;
    const bad = { type: 'RunRequested', data: { runId: 'not-a-uuid' } } as never;
    await assert.rejects(store.append([{ stream, expected: 'any', events: [bad] }], systemMeta()), (e: unknown) => e instanceof ValidationError && /runId/.test(e.message));
    const unknown = { type: 'NoSuchEvent', data: {} } as never;
    await assert.rejects(store.append([{ stream, expected: 'any', events: [unknown] }], systemMeta()), /unknown event type "NoSuchEvent"/);
    await assert.rejects(store.append([{ stream: 'Bad Stream', expected: 'any', events: [runRequested()] }], systemMeta()), /bad stream id/);
    await assert.rejects(store.append([{ stream, expected: 'any', events: [] }], systemMeta()), /no events/);
    await assert.rejects(store.append([{ stream, expected: -1, events: [runRequested()] }], systemMeta()), /bad expected version/);
    assert.equal(await countRows('stream_id = $1', [stream]), 0);
  });

  it('reports a stored event of unknown type or malformed payload as an error, never skips it', async () => {
    const stream = `run-${randomUUID()}`;
    await db.pools.primary.query(
      `INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id, event_type, payload)
       VALUES (gen_random_uuid(), $1, 1, 'c', 'system', 'test', 'RunFailed', '{"runId": 5}')`,
      [stream],
    );
    await assert.rejects(store.readStream(stream), (e: unknown) => e instanceof EventDecodeError && /RunFailed/.test(e.message));
    const raw = (await readEverything()).find((e) => e.stream === stream)!;
    assert.throws(() => store.decode(raw), EventDecodeError);
    assert.throws(() => store.decode({ ...raw, type: 'Mystery' }), /unknown event type "Mystery"/);
  });

  it('an append inside a transaction must be its first write', async () => {
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.query(`SELECT pg_current_xact_id()`);
        await store.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [runRequested()] }], systemMeta(), tx);
      }),
      /first write of its transaction/,
    );
  });
});

describe('the log is append-only in the database itself', () => {
  for (const statement of ['UPDATE flow_events SET actor_id = $$x$$', 'DELETE FROM flow_events', 'TRUNCATE flow_events']) {
    it(`refuses ${statement.split(' ')[0]}, even to the owner (triggers)`, async () => {
      await store.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [runRequested()] }], systemMeta());
      const before = await countRows();
      await assert.rejects(db.ownerPool.query(statement), /append-only/);
      assert.equal(await countRows(), before);
    });
  }

  it('the platform\'s role cannot rewrite the log: no UPDATE, DELETE, TRUNCATE, DISABLE TRIGGER, DROP or epoch bump; it appends and reads', async () => {
    await store.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [runRequested()] }], systemMeta());
    const before = await countRows();
    for (const statement of [
      'UPDATE flow_events SET actor_id = $$x$$',
      'DELETE FROM flow_events',
      'TRUNCATE flow_events',
      'ALTER TABLE flow_events DISABLE TRIGGER flow_events_no_update_delete',
      'ALTER TABLE flow_events DISABLE TRIGGER ALL',
      'DROP TABLE flow_events',
      'SELECT flow_events_bump_epoch()',
      'CREATE TABLE flow_events_copy (LIKE flow_events)',
    ]) {
      await assert.rejects(db.pools.primary.query(statement), (e: unknown) => ['42501'].includes((e as { code?: string }).code ?? '') || /must be owner/.test(String(e)), statement);
    }
    assert.equal(await countRows(), before);
    const { rows } = await db.pools.primary.query<{ user: string }>('SELECT current_user AS user');
    assert.equal(rows[0]!.user, 'codexk8s', 'the tests run as the platform\'s role');
    await store.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [runRequested()] }], systemMeta());
    assert.equal(await countRows(), before + 1);
  });
});

describe('reading everything in commit order', () => {
  it('never passes an event that commits later with a smaller position (the gap)', async () => {
    const start = await store.headPosition();
    const slow = await db.pools.primary.connect();
    const slowStream = `run-${randomUUID()}`;
    const fastStream = `run-${randomUUID()}`;
    try {
      await slow.query('BEGIN');
      // The slow transaction takes its sequence position and tx id first...
      await store.append([{ stream: slowStream, expected: 'no_stream', events: [runRequested()] }], systemMeta(), slow);
      // ...then a later one commits.
      await store.append([{ stream: fastStream, expected: 'no_stream', events: [runRequested()] }], systemMeta());
      assert.equal(await countRows('stream_id = $1', [fastStream]), 1, 'the fast event is committed');
      // A reader must not move past the slow one's place: it sees neither yet.
      assert.deepEqual(ours(await store.readAllRaw(start, 1000), [slowStream, fastStream]), []);
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    let seen = ours(await readEverything(start), [slowStream, fastStream]);
    for (let i = 0; i < 500 && seen.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = ours(await readEverything(start), [slowStream, fastStream]);
    }
    assert.deepEqual(seen.map((e) => e.stream), [slowStream, fastStream]);
  });

  it('chaos: 16 writers with random in-transaction sleeps and 5% rollbacks; the reader sees exactly the committed events, each stream in order', async () => {
    const start = await store.headPosition();
    const streams = Array.from({ length: 8 }, () => `run-${randomUUID()}`);
    const committed = new Set<string>();
    const rolledBack = new Set<string>();
    const seen: RawEvent[] = [];
    let writing = true;

    const reader = (async () => {
      let position = start;
      // After the writers finish, go on until every committed event has shown up: the read horizon
      // is cluster-wide, so another database's transaction may hold the last ones back a moment.
      for (let idleAfterWriters = 0; idleAfterWriters < 1000; ) {
        const batch = await store.readAllRaw(position, 200);
        for (const e of batch) {
          assert.ok(e.position.compare(position) > 0, 'positions only grow');
          position = e.position;
        }
        seen.push(...ours(batch, streams));
        if (!writing && seen.length >= committed.size) return;
        if (batch.length === 0) {
          if (!writing) idleAfterWriters++;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    })();

    const writer = async (w: number) => {
      for (let i = 0; i < 25; i++) {
        const stream = streams[(w + i) % streams.length]!;
        const id = randomUUID();
        const rollback = Math.random() < 0.05;
        for (let attempt = 0; ; attempt++) {
          try {
            await store.transaction(async (tx) => {
              await store.append([{ stream, expected: 'any', events: [{ ...runRequested(), id }] }], systemMeta(), tx);
              await tx.query('SELECT pg_sleep($1)', [Math.random() * 0.02]);
              if (rollback) throw new Error('rollback on purpose');
            });
            committed.add(id);
          } catch (error) {
            // Lost a race on the stream's version: nothing was written, so try again.
            if (error instanceof ConcurrencyError && attempt < 50) continue;
            if ((error as Error).message !== 'rollback on purpose') throw error;
            rolledBack.add(id);
          }
          break;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)));
    writing = false;
    await reader;

    const seenIds = seen.map((e) => e.id);
    assert.equal(new Set(seenIds).size, seenIds.length, 'no event twice');
    assert.deepEqual(new Set(seenIds), committed, 'exactly the committed events');
    assert.equal(committed.size + rolledBack.size, 400, 'every write either committed or rolled back');
    // 5% of 400 writes roll back on purpose: none at all would mean the test never exercised one (p < 1e-8).
    assert.ok(rolledBack.size > 0, 'some rollbacks happened');
    for (const stream of streams) {
      const versions = seen.filter((e) => e.stream === stream).map((e) => e.streamPosition);
      assert.deepEqual(versions, [...versions].sort((a, b) => a - b), `${stream} in version order`);
    }
  });

  it('16 writers racing on one stream: exactly one wins each version', async () => {
    const stream = `run-${randomUUID()}`;
    const wins = new Map<number, number>();
    let conflicts = 0;
    const writer = async (w: number) => {
      for (let i = 0; i < 15; i++) {
        const version = (await store.readStream(stream)).at(-1)?.streamPosition ?? 0;
        try {
          const result = await store.append([{ stream, expected: version, events: [runFailed(randomUUID(), `writer ${w}`)] }], systemMeta());
          const v = result.streams[0]!.version;
          assert.equal(v, version + 1);
          wins.set(v, (wins.get(v) ?? 0) + 1);
        } catch (error) {
          if (!(error instanceof ConcurrencyError)) throw error;
          conflicts++;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)));
    const events = await store.readStream(stream);
    assert.deepEqual(events.map((e) => e.streamPosition), Array.from({ length: events.length }, (_, i) => i + 1), 'versions are contiguous');
    assert.equal(events.length, wins.size);
    for (const [version, count] of wins) assert.equal(count, 1, `version ${version} won once`);
    assert.ok(conflicts > 0, 'the writers did race');
  });

  it("'any' appends racing on one stream all land, in order", async () => {
    const stream = `run-${randomUUID()}`;
    await Promise.all(Array.from({ length: 40 }, () => store.append([{ stream, expected: 'any', events: [runFailed(randomUUID())] }], systemMeta())));
    const events = await store.readStream(stream);
    assert.deepEqual(events.map((e) => e.streamPosition), Array.from({ length: 40 }, (_, i) => i + 1));
  });
});

describe('epochs keep the order after a logical restore', () => {
  it('an event restored with a tx_id ahead of the cluster is seen once migrate moves to a new epoch, and new events follow it', async () => {
    const start = await store.headPosition();
    const restored = `run-${randomUUID()}`;
    // What pg_restore into a fresh cluster leaves: a row whose tx_id is ahead of the cluster's counter.
    await db.pools.primary.query(
      `INSERT INTO flow_events (tx_id, id, stream_id, stream_position, correlation_id, actor_type, actor_id, event_type, payload)
       VALUES ((pg_current_xact_id()::text::bigint + 1000000)::text::xid8, gen_random_uuid(), $1, 1, 'c', 'system', 't', 'RunRequested', $2)`,
      [restored, JSON.stringify(runRequested().data)],
    );
    assert.equal(ours(await readEverything(start), [restored]).length, 0, 'invisible: it looks like a running transaction');
    const { migrate } = await import('../adapters/postgres/migrate.js');
    const result = await migrate(db.ownerUrl);
    assert.equal(result.epochBumpedTo, 2);
    const after = `run-${randomUUID()}`;
    await store.append([{ stream: after, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    let seen = ours(await readEverything(start), [restored, after]);
    // Another database's transaction may hold the cluster-wide read horizon for a moment.
    for (let i = 0; i < 500 && seen.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = ours(await readEverything(start), [restored, after]);
    }
    assert.deepEqual(seen.map((e) => e.stream), [restored, after]);
    assert.deepEqual(seen.map((e) => e.position.epoch), [1, 2]);
    assert.equal((await migrate(db.ownerUrl)).epochBumpedTo, undefined, 'a second migrate does not bump again');
  });
});
