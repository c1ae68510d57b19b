import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createEventStore, type EventStore, type RawEvent } from '../adapters/postgres/event-store.js';
import { createWaker, pollingOnly, subscribe, type Waker } from '../adapters/postgres/subscription.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runRequested, systemMeta } from './support/events.js';

let db: TestDatabase;
let store: EventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

async function firstDelivery(waker: Waker, backoff: { minMs: number; maxMs: number }, writer: EventStore): Promise<number> {
  const from = await writer.headPosition();
  const controller = new AbortController();
  const stream = `run-${randomUUID()}`;
  const received: RawEvent[] = [];
  let arrived = 0;
  const subscription = subscribe(writer, {
    from,
    waker,
    signal: controller.signal,
    backoff,
    onBatch: async (batch) => {
      // Only ours: the cluster-wide read horizon may release older events of this file late.
      received.push(...batch.filter((e) => e.stream === stream));
      if (received.length === 0) return;
      arrived = performance.now();
      controller.abort();
    },
  });
  // Let the subscriber go idle and fall asleep on its long interval first.
  await new Promise((r) => setTimeout(r, 300));
  const sent = performance.now();
  await writer.append([{ stream, expected: 'no_stream', events: [runRequested()] }], systemMeta());
  await subscription.done;
  assert.deepEqual(received.map((e) => e.stream), [stream]);
  return arrived - sent;
}

describe('subscribers', () => {
  it('wake at once on the NOTIFY sent after an append commits, though their poll interval is 10 s', async () => {
    const waker = await createWaker(db.primaryUrl);
    try {
      const latency = await firstDelivery(waker, { minMs: 10_000, maxMs: 10_000 }, store);
      assert.ok(latency < 2_000, `delivered after ${latency.toFixed(0)} ms`);
    } finally {
      await waker.close();
    }
  });

  it('still get every event by polling when notifications are lost', async () => {
    const silent = createEventStore(db.pools.primary, { notify: false });
    const latency = await firstDelivery(pollingOnly, { minMs: 20, maxMs: 200 }, silent);
    assert.ok(latency < 5_000, `delivered after ${latency.toFixed(0)} ms`);
  });

  it('hand batches over in commit order and stop on a handler error', async () => {
    const from = await store.headPosition();
    const streams = Array.from({ length: 5 }, () => `run-${randomUUID()}`);
    for (const stream of streams) await store.append([{ stream, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    const seen: string[] = [];
    const controller = new AbortController();
    const subscription = subscribe(store, {
      from,
      waker: pollingOnly,
      signal: controller.signal,
      batchSize: 2,
      onBatch: async (batch) => {
        seen.push(...batch.map((e) => e.stream).filter((s) => streams.includes(s)));
        if (seen.length >= 4) throw new Error('handler broke');
      },
    });
    await assert.rejects(subscription.done, /handler broke/);
    assert.deepEqual(seen.slice(0, 4), streams.slice(0, 4));
  });
});
