import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { v7 as uuidv7 } from 'uuid';
import pg from 'pg';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { streamOfUniqueViolation } from '../adapters/postgres/event-appends.js';
import { createPool } from '../adapters/postgres/pools.js';
import { cluster, useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runFailed, runRequested, systemMeta } from './support/events.js';

let db: TestDatabase;
let store: PostgresEventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

/**
 * A TCP proxy in front of the primary that can drop a connection at the server's next answer: the
 * server has run (and, for a single statement outside a transaction, committed) what it answers,
 * but the client never hears of it.
 */
async function cuttingProxy() {
  let armed = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(cluster.primary.port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (armed) {
        armed = false;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = () => (client.destroy(), upstream.destroy());
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cutAtNextAnswer: () => (armed = true),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

const countIn = async (stream: string) => (await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events WHERE stream_id = $1', [stream])).rows[0].n as number;

describe('appends that are sent again', () => {
  it('a shared statement whose connection dies after its COMMIT is recognised by its event ids: nothing twice, no conflict with itself', async () => {
    const proxy = await cuttingProxy();
    const url = new URL(db.primaryUrl);
    url.port = String(proxy.port);
    // One connection, no NOTIFY: the next answer the proxy sees is the shared statement's.
    const pool = createPool(url.toString(), 1, 'codex-k8s-test-cut');
    const cut = createEventStore(pool, { notify: false, groupCommit: { maxInFlight: 1, maxEvents: 1000 } });
    try {
      const existing = `run-${randomUUID()}`;
      await cut.append([{ stream: existing, expected: 'no_stream', events: [runRequested()] }], systemMeta());
      const first = cut.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [runRequested()] }], systemMeta());
      // Queued while the first is in flight, so they go out together in one statement.
      const anyStream = `run-${randomUUID()}`;
      const newStream = `run-${randomUUID()}`;
      const shared = [
        cut.append([{ stream: anyStream, expected: 'any', events: [runRequested()] }], systemMeta()),
        cut.append([{ stream: existing, expected: 1, events: [runFailed(randomUUID())] }], systemMeta()),
        cut.append([{ stream: newStream, expected: 'no_stream', events: [runRequested()] }], systemMeta()),
      ];
      await first;
      proxy.cutAtNextAnswer();
      const settled = await Promise.allSettled(shared);
      assert.deepEqual(settled.map((s) => (s.status === 'rejected' ? String(s.reason) : s.status)), ['fulfilled', 'fulfilled', 'fulfilled']);
      const [any, exact, created] = settled.map((s) => (s as PromiseFulfilledResult<Awaited<(typeof shared)[0]>>).value);
      assert.deepEqual([await countIn(anyStream), await countIn(existing), await countIn(newStream)], [1, 2, 1], 'each append written once');
      assert.deepEqual([any!.streams, exact!.streams, created!.streams], [[{ stream: anyStream, version: 1 }], [{ stream: existing, version: 2 }], [{ stream: newStream, version: 1 }]]);
      const stored = await store.readStream(existing);
      assert.equal(exact!.position.toString(), stored[1]!.position.toString(), 'answered with the original position');
    } finally {
      await pool.end();
      await proxy.close();
    }
  });

  it('a backend terminated while a shared statement is in flight: the appends go through once each', async () => {
    const grouped = createEventStore(db.pools.primary, { notify: false, groupCommit: { maxInFlight: 1, maxEvents: 1000 } });
    const blocked = `run-${randomUUID()}`;
    const holder = new pg.Client({ connectionString: db.primaryUrl });
    await holder.connect();
    try {
      // Another session holds the stream's lock, so the shared statement waits inside the append.
      await holder.query('SELECT pg_advisory_lock(flow_events_stream_lock_key($1))', [blocked]);
      const first = grouped.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [runRequested()] }], systemMeta());
      const streams = [blocked, `run-${randomUUID()}`, `run-${randomUUID()}`];
      const shared = streams.map((stream, i) => grouped.append([{ stream, expected: i === 0 ? 'any' : 'no_stream', events: [runRequested()] }], systemMeta()));
      await first;
      let pid: number | undefined;
      for (let i = 0; i < 400 && !pid; i++) {
        const { rows } = await holder.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%flow_events_append%'");
        pid = rows[0]?.pid;
        if (!pid) await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(pid, 'the shared statement waits for the lock');
      await holder.query('SELECT pg_terminate_backend($1)', [pid]);
      await holder.query('SELECT pg_advisory_unlock(flow_events_stream_lock_key($1))', [blocked]);
      const settled = await Promise.allSettled(shared);
      assert.deepEqual(settled.map((s) => (s.status === 'rejected' ? String(s.reason) : s.status)), ['fulfilled', 'fulfilled', 'fulfilled']);
      for (const stream of streams) assert.equal(await countIn(stream), 1, stream);
    } finally {
      await holder.end();
    }
  });

  it('a 23505 inside a batch: a caller\'s retry with the same event ids gets its original answer, the others are written', async () => {
    const grouped = createEventStore(db.pools.primary, { notify: false, groupCommit: { maxInFlight: 1, maxEvents: 1000 } });
    const retried = `run-${randomUUID()}`;
    const event = { ...runRequested(), id: uuidv7() };
    const original = await grouped.append([{ stream: retried, expected: 'any', events: [event] }], systemMeta());
    const first = grouped.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [runRequested()] }], systemMeta());
    const others = [`run-${randomUUID()}`, `run-${randomUUID()}`];
    const batch = [
      grouped.append([{ stream: retried, expected: 'any', events: [event] }], systemMeta()),
      ...others.map((stream) => grouped.append([{ stream, expected: 'no_stream', events: [runRequested()] }], systemMeta())),
    ];
    await first;
    const [again, ...rest] = await Promise.all(batch);
    assert.equal(again!.position.toString(), original.position.toString());
    assert.equal(await countIn(retried), 1);
    for (const [i, stream] of others.entries()) {
      assert.equal(await countIn(stream), 1);
      assert.deepEqual(rest[i]!.streams, [{ stream, version: 1 }]);
    }
    // An id already used by another event is refused, not taken for a retry.
    await assert.rejects(grouped.append([{ stream: `run-${randomUUID()}`, expected: 'any', events: [event] }], systemMeta()), /event ids already used by other events/);
  });

  it('a unique violation on a stream\'s position names the stream in its detail, not the first one of the append', async () => {
    const stream = `email-${randomUUID()}`;
    const insert = () => db.pools.primary.query(
      `INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id, event_type, payload)
       VALUES ($1, $2, 1, 'test', 'system', 'test', 'NameReserved', '{}')`, [uuidv7(), stream]);
    await insert();
    const error = await insert().then(() => undefined, (e: unknown) => e);
    assert.equal(streamOfUniqueViolation(error), stream);
    assert.equal(streamOfUniqueViolation(new Error('other')), undefined);
  });
});
