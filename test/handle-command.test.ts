import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { handleCommand } from '../commands/handle-command.js';
import { rememberedStates } from '../commands/remembered-states.js';
import { decideRun, runDecider, type Run, type RunCommand } from '../domain/runs/run.js';
import { streamOf } from '../domain/shared/streams.js';
import { useTestDatabase } from './support/cluster.js';
import { runRequested, systemMeta } from './support/events.js';

let store: PostgresEventStore;
useTestDatabase((db) => {
  store = createEventStore(db.pools.primary);
});

const NOW = '2026-11-29T10:00:00.000Z';

/** The store with its stream reads counted. */
function counted(inner: PostgresEventStore) {
  const counter = { reads: 0 };
  const store = { ...inner, readStreams: (streams: readonly string[]) => (counter.reads++, inner.readStreams(streams)) };
  return { store, counter };
}

/** One run command decided on the run's remembered state; answers the status it was decided on. */
const decideOnRemembered = (deps: Parameters<typeof handleCommand>[0], runId: string, command: RunCommand) =>
  handleCommand(deps, systemMeta(), async (load) => {
    const [run] = await load<[Run]>([{ stream: streamOf.run(runId), fold: runDecider }], { remembered: true });
    return { writes: [{ stream: run.stream, events: decideRun(command, run.state) }], result: run.state.status };
  });

describe('the command handler with remembered states', () => {
  it('moves a remembered state on with its own write, so the next decision on it reads nothing', async () => {
    const runId = randomUUID();
    await store.append([{ stream: streamOf.run(runId), expected: 'no_stream', events: [runRequested(runId)] }], systemMeta());
    const { store: countingStore, counter } = counted(store);
    const deps = { store: countingStore, states: rememberedStates(countingStore) };

    const scheduled = await decideOnRemembered(deps, runId, { type: 'ScheduleRun', slot: 1, leaseExpiresAt: NOW, now: NOW });
    assert.equal(scheduled.result, 'pending');
    assert.equal(counter.reads, 1);
    const prepared = await decideOnRemembered(deps, runId, { type: 'PrepareNamespace', namespace: 'ns', objects: [], now: NOW });
    assert.equal(prepared.result, 'scheduled');
    assert.ok(prepared.append, 'decided on the state the first write made, and appended');
    assert.equal(counter.reads, 1, 'no read for the second decision');
    const versions = (await store.readStream(streamOf.run(runId))).map((e) => e.type);
    assert.deepEqual(versions, ['RunRequested', 'RunScheduled', 'RunNamespacePrepared']);
  });

  it('reads a remembered state again when another writer moved its stream, and decides on the fresh one', async () => {
    const runId = randomUUID();
    await store.append([{ stream: streamOf.run(runId), expected: 'no_stream', events: [runRequested(runId)] }], systemMeta());
    const { store: countingStore, counter } = counted(store);
    const deps = { store: countingStore, states: rememberedStates(countingStore) };
    await decideOnRemembered(deps, runId, { type: 'ScheduleRun', slot: 1, leaseExpiresAt: NOW, now: NOW });
    // A cancel by someone else: the remembered state (scheduled) is stale now.
    const [canceled] = decideRun({ type: 'CancelRun', reason: 'label removed', by: null, now: NOW }, { status: 'scheduled', runId, projectId: 'p', slot: 1 });
    await store.append([{ stream: streamOf.run(runId), expected: 2, events: [canceled!] }], systemMeta());

    const prepared = await decideOnRemembered(deps, runId, { type: 'PrepareNamespace', namespace: 'ns', objects: [], now: NOW });
    assert.equal(prepared.result, 'canceled', 'decided again on the stream as it is');
    assert.equal(prepared.append, undefined);
    assert.equal(counter.reads, 2, 'the stale state was read again once');
    assert.deepEqual((await store.readStream(streamOf.run(runId))).map((e) => e.type), ['RunRequested', 'RunScheduled', 'RunCanceled']);
  });

  it('decides again on fresh state when a remembered one leads to no write (no guard would have caught it)', async () => {
    const runId = randomUUID();
    const stream = streamOf.run(runId);
    await store.append([{ stream, expected: 'no_stream', events: [runRequested(runId)] }], systemMeta());
    const { store: countingStore, counter } = counted(store);
    const deps = { store: countingStore, states: rememberedStates(countingStore) };
    await decideOnRemembered(deps, runId, { type: 'ScheduleRun', slot: 1, leaseExpiresAt: NOW, now: NOW });
    await decideOnRemembered(deps, runId, { type: 'PrepareNamespace', namespace: 'ns', objects: [], now: NOW });
    // Canceled by someone else: the remembered state (scheduled, prepared) would make a repeated
    // PrepareNamespace a no-op that answers "scheduled", and the caller would create the Job.
    const [canceled] = decideRun({ type: 'CancelRun', reason: 'label removed', by: null, now: NOW }, { status: 'scheduled', runId, projectId: 'p', slot: 1 });
    await store.append([{ stream, expected: 3, events: [canceled!] }], systemMeta());
    const readsBefore = counter.reads;

    const again = await decideOnRemembered(deps, runId, { type: 'PrepareNamespace', namespace: 'ns', objects: [], now: NOW });
    assert.equal(again.result, 'canceled', 'the answer comes from the stream as it is, not from memory');
    assert.equal(again.append, undefined);
    assert.equal(counter.reads, readsBefore + 1);
    const next = await decideOnRemembered(deps, runId, { type: 'StartJob', namespace: 'ns', job: 'agent', now: NOW });
    assert.equal(next.result, 'canceled', 'and the fresh state is remembered');
  });

  it('a full memory, emptied to take new streams, still answers the streams it knew (from a review)', async () => {
    const streams = [randomUUID(), randomUUID(), randomUUID()].map((id) => streamOf.run(id));
    for (const stream of streams) await store.append([{ stream, expected: 'no_stream', events: [runRequested(stream.slice(4))] }], systemMeta());
    const states = rememberedStates(store, 2);
    const fold = (stream: string) => ({ stream, fold: runDecider });
    await states.load([fold(streams[0]!)]);
    await states.load([fold(streams[1]!)]);
    const [known, fresh] = await states.load<[Run, Run]>([fold(streams[0]!), fold(streams[2]!)]);
    assert.equal(known?.state.status, 'pending', 'the known one');
    assert.equal(fresh?.state.status, 'pending', 'the one just read');
  });
});
