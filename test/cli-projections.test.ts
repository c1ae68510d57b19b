import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createEventStore, type EventStore } from '../adapters/postgres/event-store.js';
import { allProjections } from '../projections/index.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runCli } from './support/cli.js';
import { allReadable, appendRuns } from './support/projections.js';

let db: TestDatabase;
let store: EventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

describe('codex-k8s projections', () => {
  it('status shows every projection with its lag, and the replica', async () => {
    await appendRuns(store, randomUUID(), 5);
    const result = await runCli(['projections', 'status', '--json'], db.env);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout) as { projections: { name: string; state: string; lagEvents: number; replicas: unknown[] }[]; replicas: { replayLagSeconds: number | null }[] };
    assert.deepEqual(status.projections.map((p) => p.name), allProjections.map((p) => p.name));
    const runs = status.projections.find((p) => p.name === 'agent_runs')!;
    assert.equal(runs.state, 'never started');
    assert.equal(runs.lagEvents, 15, 'nothing folded yet: 5 runs of 3 events behind');
    assert.equal(status.replicas.length, 1);
    assert.equal(typeof status.replicas[0]!.replayLagSeconds, 'number');

    const text = await runCli(['projections', 'status'], db.env);
    assert.match(text.stdout, /^agent_runs\s+never started\s+0:0:0\s+15 ev/m);
    assert.match(text.stderr, /replica 1: replay lag/);
  });

  it('rebuild --yes folds the log and swaps it in; status then shows it caught up', async () => {
    await allReadable(db.pools.primary, store);
    const result = await runCli(['projections', 'rebuild', 'agent_runs', '--yes', '--json'], db.env);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as { events: number; applied: number; parked: number };
    assert.ok(summary.events >= 15);
    assert.equal(summary.applied, summary.events);
    assert.equal(summary.parked, 0);
    assert.match(result.stderr, /agent_runs \|.*\| 100%/, 'a progress bar on stderr');
    const status = JSON.parse((await runCli(['projections', 'status', '--json'], db.env)).stdout) as { projections: { name: string; state: string; lagEvents: number }[] };
    const runs = status.projections.find((p) => p.name === 'agent_runs')!;
    assert.deepEqual([runs.state, runs.lagEvents], ['running', 0]);
    // Run again: safe.
    assert.equal((await runCli(['projections', 'rebuild', 'agent_runs', '--yes'], db.env)).code, 0);
  });

  it('refuses to rebuild without confirmation when nobody can answer', async () => {
    const result = await runCli(['projections', 'rebuild', 'agent_runs'], db.env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /pass --yes/);
  });

  it('refuses unknown projections, bad batch sizes, and resetting one that is not stopped', async () => {
    const unknown = await runCli(['projections', 'rebuild', 'nope', '--yes'], db.env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown projection "nope"; known: users, projects/);
    const oversized = await runCli(['projections', 'retry', 'x'.repeat(10_000)], db.env);
    assert.equal(oversized.code, 1);
    assert.ok(oversized.stderr.length < 400);
    const batch = await runCli(['projections', 'rebuild', 'agent_runs', '--yes', '--batch-size', '0'], db.env);
    assert.equal(batch.code, 1);
    assert.match(batch.stderr, /--batch-size must be/);
    const reset = await runCli(['projections', 'reset', 'agent_runs'], db.env);
    assert.equal(reset.code, 1);
    assert.match(reset.stderr, /agent_runs is not stopped \(it is running\)/);
  });

  it('retry with nothing parked says so, twice', async () => {
    for (let i = 0; i < 2; i++) {
      const result = await runCli(['projections', 'retry', 'agent_runs', '--json'], db.env);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), { retried: 0, applied: 0, stillParked: 0 });
    }
  });
});
