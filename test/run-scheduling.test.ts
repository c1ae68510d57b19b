import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { endRun, scheduleRun, scheduleRuns } from '../commands/runs.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runRequested, systemMeta } from './support/events.js';

let db: TestDatabase;
let store: PostgresEventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

let clock = Date.parse('2026-11-28T10:00:00.000Z');
const deps = () => ({ store, now: () => new Date(clock).toISOString(), leaseMs: 60_000 });

async function requested(projectId: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  for (const id of ids) await store.append([{ stream: `run-${id}`, expected: 'no_stream', events: [runRequested(id, projectId)] }], systemMeta());
  return ids;
}

const types = async (stream: string) => (await store.readStream(stream)).map((e) => e.type);

describe('scheduling runs on slots', () => {
  it('leases free slots, leaves a run pending when the project is saturated, and an outcome frees its slot in the same append', async () => {
    const project = randomUUID();
    const [a, b, c] = await requested(project, 3);
    assert.deepEqual(await scheduleRun(deps(), a!, 2, systemMeta()), { slot: 1 });
    assert.deepEqual(await scheduleRun(deps(), b!, 2, systemMeta()), { slot: 2 });
    assert.equal(await scheduleRun(deps(), c!, 2, systemMeta()), undefined, 'saturated: c waits');
    assert.deepEqual(await types(`run-${c}`), ['RunRequested']);

    await store.append([{ stream: `run-${a}`, expected: 2, events: [{ type: 'JobStarted', data: { runId: a!, namespace: 'ns', job: 'agent', startedAt: deps().now() } }] }], systemMeta());
    assert.equal(await endRun(deps(), a!, { type: 'SucceedRun' }, systemMeta()), true);
    const [outcome] = (await store.readStream(`run-${a}`)).slice(-1);
    const [released] = (await store.readStream(`slot-${project}-1`)).slice(-1);
    assert.deepEqual([outcome!.type, released!.type], ['RunSucceeded', 'SlotReleased']);
    assert.equal(outcome!.position.txId, released!.position.txId, 'one append: the outcome and the release');
    assert.deepEqual(await scheduleRun(deps(), c!, 2, systemMeta()), { slot: 1 });
    assert.equal(await endRun(deps(), a!, { type: 'FailRun', reason: 'late' }, systemMeta()), false, 'an outcome after the outcome is a no-op');
  });

  it('a slot whose lease ran out (its worker died) comes back', async () => {
    const project = randomUUID();
    const [a, b] = await requested(project, 2);
    assert.deepEqual(await scheduleRun(deps(), a!, 1, systemMeta()), { slot: 1 });
    assert.equal(await scheduleRun(deps(), b!, 1, systemMeta()), undefined);
    clock += 61_000; // nobody renewed a's lease
    assert.deepEqual(await scheduleRun(deps(), b!, 1, systemMeta()), { slot: 1 });
  });

  it('20 runs scheduled at once on 3 slots: exactly 3 leases, never one slot twice; another project is not held up', async () => {
    const busy = randomUUID();
    const other = randomUUID();
    const ids = await requested(busy, 20);
    const [theirs] = await requested(other, 1);
    const results = await Promise.allSettled([...ids.map((id) => scheduleRun(deps(), id, 3, systemMeta())), scheduleRun(deps(), theirs!, 3, systemMeta())]);
    const scheduled = results.slice(0, 20).flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value.slot] : []));
    assert.deepEqual(scheduled.sort(), [1, 2, 3]);
    assert.deepEqual((results[20] as PromiseFulfilledResult<unknown>).value, { slot: 1 }, 'the other project\'s run starts at once');
    for (const n of [1, 2, 3]) assert.deepEqual(await types(`slot-${busy}-${n}`), ['SlotLeased']);
  });

  it('a cancel from the webhook path releases the slot of a scheduled run in the same append', async () => {
    const project = randomUUID();
    const [a] = await requested(project, 1);
    await scheduleRun(deps(), a!, 1, systemMeta());
    assert.equal(await endRun(deps(), a!, { type: 'CancelRun', reason: 'trigger_label_removed', by: null }, systemMeta()), true);
    assert.deepEqual(await types(`slot-${project}-1`), ['SlotLeased', 'SlotReleased']);
  });

  it('a burst scheduled together: the oldest runs take the free slots, each in its own correlation; the rest wait; a repeat changes nothing', async () => {
    const project = randomUUID();
    const [first] = await requested(project, 1);
    await scheduleRun(deps(), first!, 3, systemMeta());
    const burst = await requested(project, 4);
    const correlation = new Map(burst.map((id) => [id, randomUUID()]));
    await scheduleRuns(deps(), project, burst, 3, (id) => systemMeta(correlation.get(id)));
    const scheduled = await Promise.all(burst.map(async (id) => (await store.readStream(`run-${id}`)).find((e) => e.type === 'RunScheduled')));
    assert.deepEqual(scheduled.map((e) => (e?.data as { slot?: number } | undefined)?.slot), [2, 3, undefined, undefined]);
    assert.deepEqual(scheduled.slice(0, 2).map((e) => e!.correlationId), burst.slice(0, 2).map((id) => correlation.get(id)));
    await scheduleRuns(deps(), project, burst, 3, (id) => systemMeta(correlation.get(id)));
    for (const n of [1, 2, 3]) assert.deepEqual(await types(`slot-${project}-${n}`), ['SlotLeased']);
  });
});
