import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runRequested, systemMeta } from './support/events.js';

let db: TestDatabase;
useTestDatabase((created) => (db = created));

describe('the asynchronous streaming replica', () => {
  it('is a standby, and a row written on the primary is read on the replica', async () => {
    const replica = db.pools.replicas[0]!;
    const { rows } = await replica.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
    assert.equal(rows[0]!.standby, true);

    const stream = `run-${randomUUID()}`;
    await createEventStore(db.pools.primary).append([{ stream, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    const deadline = Date.now() + 10_000;
    let found = 0;
    while (found === 0 && Date.now() < deadline) {
      found = (await replica.query('SELECT 1 FROM flow_events WHERE stream_id = $1', [stream])).rowCount ?? 0;
      if (found === 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(found, 1);
  });

  it('refuses writes', async () => {
    await assert.rejects(
      db.pools.replicas[0]!.query(`INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id, event_type, payload)
        VALUES (gen_random_uuid(), 'run-x', 1, 'c', 'system', 't', 'RunRequested', '{}')`),
      /read-only transaction/,
    );
  });

  it('the application role has the statement and idle-in-transaction timeouts', async () => {
    const { rows } = await db.pools.primary.query<{ s: string; i: string }>(
      `SELECT current_setting('statement_timeout') AS s, current_setting('idle_in_transaction_session_timeout') AS i`,
    );
    assert.deepEqual(rows[0], { s: '30s', i: '15s' });
  });
});
