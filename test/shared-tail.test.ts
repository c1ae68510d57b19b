import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { sharedTail } from '../adapters/postgres/shared-tail.js';
import { GlobalPosition, type RawEvent } from '../ports/event-store.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runRequested, systemMeta } from './support/events.js';

let db: TestDatabase;
let store: PostgresEventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

/** The real store, counting the queries that reach it. */
function counted() {
  let queries = 0;
  const inner = { readAllRaw: (after: GlobalPosition, limit: number) => (queries++, store.readAllRaw(after, limit)) };
  return { tail: sharedTail(inner, 50), queries: () => queries };
}

const append = (n: number) =>
  Promise.all(Array.from({ length: n }, () => {
    const e = runRequested();
    return store.append([{ stream: `run-${(e.data as { runId: string }).runId}`, expected: 'no_stream', events: [e] }], systemMeta());
  }));

/**
 * Waits until a read from `after` sees `n` events: the read horizon is cluster-wide, so a transaction
 * of another test file can keep committed events out of sight for a moment.
 */
async function visible(after: GlobalPosition, n: number): Promise<void> {
  for (let i = 0; (await store.readAllRaw(after, n + 1)).length < n; i++) {
    if (i > 500) throw new Error(`${n} events never became visible`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Follows the log to its end through `read`, in batches of `limit`, as a projection or reactor does. */
async function follow(read: (after: GlobalPosition, limit: number) => Promise<RawEvent[]>, from: GlobalPosition, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let at = from;
  for (;;) {
    const batch = await read(at, limit);
    if (batch.length === 0) return ids;
    ids.push(...batch.map((e) => e.id));
    at = batch.at(-1)!.position;
  }
}

describe('shared reads of the log\'s tail', () => {
  it('followers at the head woken together cost one query, and each gets exactly what a read of its own returns', async () => {
    const head = await store.headPosition();
    await append(5);
    await visible(head, 5);
    const { tail, queries } = counted();
    const answers = await Promise.all(Array.from({ length: 12 }, () => tail.readAllRaw(head, 100)));
    assert.equal(queries(), 1);
    const direct = (await store.readAllRaw(head, 100)).map((e) => e.id);
    assert.equal(direct.length, 5);
    for (const answer of answers) assert.deepEqual(answer.map((e) => e.id), direct);
  });

  it('followers at different positions, with different batch sizes, all see the whole log in order, nothing twice; an empty answer is always a fresh read', async () => {
    const start = await store.headPosition();
    const { tail, queries } = counted();
    const followers = [7, 13, 100, 3].map(async (limit, i) => {
      await new Promise((r) => setTimeout(r, i * 3));
      return follow((after, n) => tail.readAllRaw(after, n), start, limit);
    });
    const writing = (async () => {
      for (let round = 0; round < 10; round++) await append(8);
    })();
    await writing;
    await visible(start, 80);
    await Promise.all(followers); // each has caught up to some point; now all follow to the end
    const expected = await follow((after, n) => store.readAllRaw(after, n), start, 1000);
    assert.equal(expected.length, 80);
    const finals = await Promise.all([7, 13, 100, 3].map((limit) => follow((after, n) => tail.readAllRaw(after, n), start, limit)));
    for (const ids of finals) assert.deepEqual(ids, expected);
    assert.ok(queries() > 0);
    // A new event after an empty answer: the next read sees it (no stale empty answer is kept).
    const end = (await store.readAllRaw(start, 1000)).at(-1)!.position;
    assert.deepEqual(await tail.readAllRaw(end, 10), []);
    await append(1);
    await visible(end, 1);
    assert.equal((await tail.readAllRaw(end, 10)).length, 1);
  });

  it('more than it keeps: a follower far behind reads from the store', async () => {
    const start = await store.headPosition();
    await append(120);
    await visible(start, 120);
    const { tail, queries } = counted();
    const all = await follow((after, n) => tail.readAllRaw(after, n), start, 200);
    assert.equal(all.length, 120);
    const before = queries();
    // The tail keeps the newest 50: a read from the start must go to the store again.
    assert.equal((await tail.readAllRaw(start, 10)).length, 10);
    assert.equal(queries(), before + 1);
  });
});
