import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createEventStore, type EventStore } from '../adapters/postgres/event-store.js';
import { pollingOnly } from '../adapters/postgres/subscription.js';
import { ensureCheckpoint, readCheckpoint, resume, skipCheckpoint } from '../projections/checkpoints.js';
import { GlobalPosition } from '../ports/position.js';
import { projection, type Projection } from '../projections/projection.js';
import { agentRuns } from '../projections/read-models/agent-runs.js';
import { projectMembers, users } from '../projections/read-models/rbac.js';
import { rebuild } from '../projections/rebuild.js';
import { retryParked } from '../projections/retry.js';
import { runProjection } from '../projections/runner.js';
import { countingPool, useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runCli } from './support/cli.js';
import type { DomainEvent } from '../domain/events.js';
import { systemMeta } from './support/events.js';
import { allReadable, appendRuns, caughtUp, contentHash, quietLog, runLife } from './support/projections.js';

let db: TestDatabase;
let store: EventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

function start(p: Projection, options: { leaseRetryMs?: number; batchSize?: number } = {}) {
  const controller = new AbortController();
  const done = runProjection(p, {
    pool: db.pools.primary,
    store,
    waker: pollingOnly,
    signal: controller.signal,
    log: quietLog,
    backoff: { minMs: 5, maxMs: 50 },
    ...options,
  });
  return { stop: async () => (controller.abort(), await done) };
}

const counts = async (projectId: string) =>
  Object.fromEntries(
    (await db.pools.primary.query<{ status: string; runs: string }>('SELECT status, runs::text FROM project_run_counts WHERE project_id = $1', [projectId])).rows.map((r) => [r.status, Number(r.runs)]),
  );

describe('the projection runner', () => {
  it('folds runs into agent_runs and project_run_counts, and its checkpoint passes events it ignores', async () => {
    const projectId = randomUUID();
    const runner = start(agentRuns);
    try {
      const [first] = await appendRuns(store, projectId, 30, 7);
      // Events agent_runs does not handle still move its checkpoint.
      await store.append([{ stream: `slot-${projectId}-1`, expected: 'any', events: [{ type: 'SlotLeased', data: { projectId, slot: 1, runId: first!, leaseExpiresAt: '2026-11-27T10:00:00.000Z' } }] as never }], systemMeta());
      await caughtUp(db.pools.primary, store, 'agent_runs');
    } finally {
      await runner.stop();
    }
    assert.deepEqual(await counts(projectId), { failed: 30});
    const { rows } = await db.pools.primary.query('SELECT status, slot, reason FROM agent_runs WHERE project_id = $1 LIMIT 1', [projectId]);
    assert.deepEqual(rows[0], { status: 'failed', slot: 1, reason: 'timeout' });
  });

  it('dead-letter: parks an event it cannot apply, goes on, and replays it on retry after the fix', async () => {
    const projectId = randomUUID();
    const orphan = randomUUID();
    const runner = start(agentRuns);
    try {
      // A RunFailed for a run the model has never seen cannot be applied.
      await store.append([{ stream: `run-${orphan}`, expected: 'no_stream', events: [runLife(orphan, projectId)[2]!] }], systemMeta());
      await appendRuns(store, projectId, 5);
      await caughtUp(db.pools.primary, store, 'agent_runs');
      const parked = await db.pools.primary.query<{ event_type: string; error: string }>("SELECT event_type, error FROM projection_dead_letters WHERE projection = 'agent_runs'");
      assert.equal(parked.rows.length, 1, JSON.stringify(parked.rows));
      assert.equal(parked.rows[0]!.event_type, 'RunFailed');
      assert.match(parked.rows[0]!.error, /never requested/);
      assert.deepEqual(await counts(projectId), { failed: 5}, 'the others went on');

      // The fix: the run now exists in the model; the parked event applies on retry.
      await store.append([{ stream: `run-${orphan}-requested`, expected: 'no_stream', events: [runLife(orphan, projectId)[0]!] }], systemMeta());
      await caughtUp(db.pools.primary, store, 'agent_runs');
      assert.deepEqual(await retryParked(agentRuns, { pool: db.pools.primary, store }), { retried: 1, applied: 1, stillParked: 0 });
    } finally {
      await runner.stop();
    }
    const { rows } = await db.pools.primary.query('SELECT status FROM agent_runs WHERE id = $1', [orphan]);
    assert.equal(rows[0]!.status, 'failed');
    assert.deepEqual(await counts(projectId), { failed: 6});
  });

  it('a parked JobStarted retried after RunSucceeded fills in the job but never moves the run back', async () => {
    const projectId = randomUUID();
    const runId = randomUUID();
    const at = '2026-11-28T10:00:00.000Z';
    // A fault the test controls: updates that set this namespace fail until the trigger is dropped.
    await db.ownerPool.query(`CREATE OR REPLACE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.namespace = 'poison' THEN RAISE EXCEPTION 'the cluster said no'; END IF; RETURN NEW; END $$`);
    await db.ownerPool.query('CREATE TRIGGER test_poison BEFORE UPDATE ON agent_runs FOR EACH ROW EXECUTE FUNCTION test_poison()');
    const runner = start(agentRuns);
    try {
      const stream = `run-${runId}`;
      await store.append([{ stream, expected: 'no_stream', events: [runLife(runId, projectId)[0]!] }], systemMeta());
      await caughtUp(db.pools.primary, store, 'agent_runs');
      await store.append([{ stream, expected: 1, events: [{ type: 'JobStarted', data: { runId, namespace: 'poison', job: 'agent', startedAt: at } }] }], systemMeta());
      await caughtUp(db.pools.primary, store, 'agent_runs');
      await store.append([{ stream, expected: 2, events: [{ type: 'RunSucceeded', data: { runId, finishedAt: at } }] }], systemMeta());
      await caughtUp(db.pools.primary, store, 'agent_runs');
      const parked = await db.pools.primary.query("SELECT event_type FROM projection_dead_letters WHERE projection = 'agent_runs'");
      assert.deepEqual(parked.rows, [{ event_type: 'JobStarted' }]);
      assert.equal((await db.pools.primary.query('SELECT status FROM agent_runs WHERE id = $1', [runId])).rows[0]!.status, 'succeeded');

      await db.ownerPool.query('DROP TRIGGER test_poison ON agent_runs'); // the fix
      const retried = await runCli(['projections', 'retry', 'agent_runs', '--json'], db.env);
      assert.equal(retried.code, 0, retried.stderr);
      assert.deepEqual(JSON.parse(retried.stdout), { retried: 1, applied: 1, stillParked: 0 });
    } finally {
      await runner.stop();
      await db.ownerPool.query('DROP TRIGGER IF EXISTS test_poison ON agent_runs');
    }
    const { rows } = await db.pools.primary.query('SELECT status, namespace, started_at IS NOT NULL AS started, version FROM agent_runs WHERE id = $1', [runId]);
    assert.deepEqual(rows[0], { status: 'succeeded', namespace: 'poison', started: true, version: '3' });
    assert.deepEqual(await counts(projectId), { succeeded: 1 });
  });

  it('a terminal status is final: a cancel recorded after the run ended (as the old cancel could) changes nothing, live or rebuilt', async () => {
    const projectId = randomUUID();
    const [apart, together] = [randomUUID(), randomUUID()];
    const lateCancel = (runId: string) => ({ type: 'RunCanceled', data: { runId, reason: 'label removed', finishedAt: '2026-11-28T11:00:00.000Z' } }) as DomainEvent;
    const runner = start(agentRuns);
    try {
      // The cancel in a later batch than the run's end ...
      await store.append([{ stream: `run-${apart}`, expected: 'no_stream', events: runLife(apart, projectId) }], systemMeta());
      await caughtUp(db.pools.primary, store, 'agent_runs');
      await store.append([{ stream: `run-${apart}`, expected: 'any', events: [lateCancel(apart)] }], systemMeta());
      // ... and in the same batch.
      await store.append([{ stream: `run-${together}`, expected: 'no_stream', events: [...runLife(together, projectId), lateCancel(together)] }], systemMeta());
      await caughtUp(db.pools.primary, store, 'agent_runs');
    } finally {
      await runner.stop();
    }
    const runs = async () =>
      (await db.pools.primary.query('SELECT id, status, reason, finished_at, version FROM agent_runs WHERE project_id = $1 ORDER BY id', [projectId])).rows.map((r) => ({ ...r, finished_at: r.finished_at.toISOString() }));
    const expected = [apart, together].sort().map((id) => ({ id, status: 'failed', reason: 'timeout', finished_at: '2026-11-27T10:00:00.000Z', version: '4' }));
    assert.deepEqual(await runs(), expected);
    assert.deepEqual(await counts(projectId), { failed: 2 });
    const whole = async () => (await db.pools.primary.query('SELECT t::text AS row FROM agent_runs t WHERE project_id = $1 ORDER BY id', [projectId])).rows;
    const live = await whole();
    await allReadable(db.pools.primary, store);
    await rebuild(agentRuns, { pool: db.ownerPool, store });
    assert.deepEqual(await whole(), live, 'a rebuild (one batch) folds them as the live runner did (two batches)');
    assert.deepEqual(await counts(projectId), { failed: 2 });
  });

  it('stop: an authorisation event that cannot be applied stops that projection, with its error, and no other', async () => {
    const userId = randomUUID();
    const usersRunner = start(users);
    const runsRunner = start(agentRuns);
    const projectId = randomUUID();
    try {
      await store.append([{ stream: `user-${userId}`, expected: 'any', events: [{ type: 'UserPlatformRoleChanged', data: { userId, platformRole: 'admin' } }] as never }], systemMeta());
      await appendRuns(store, projectId, 3);
      await caughtUp(db.pools.primary, store, 'agent_runs');
      let checkpoint = await readCheckpoint(db.pools.primary, 'users');
      for (let i = 0; i < 100 && checkpoint?.state !== 'stopped'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        checkpoint = await readCheckpoint(db.pools.primary, 'users');
      }
      assert.equal(checkpoint?.state, 'stopped');
      assert.match(checkpoint!.error!, /expected to change one row/);
      assert.ok(checkpoint!.errorEventId);
      assert.deepEqual(await counts(projectId), { failed: 3}, 'agent_runs went on');
    } finally {
      await usersRunner.stop();
      await runsRunner.stop();
    }
  });

  it('a stopped projection resumes from where it stopped after the fix, and never skips the event', async () => {
    // A read model of the test's own: made by the owner, as a migration would, and granted to the platform.
    await db.ownerPool.query('CREATE TABLE IF NOT EXISTS test_fixable (run_id uuid PRIMARY KEY, project_id uuid NOT NULL)');
    await db.ownerPool.query('GRANT SELECT, INSERT, UPDATE, DELETE ON test_fixable TO codexk8s_platform');
    let fixed = false;
    const projectId = randomUUID();
    const fixable = projection({
      name: 'test_fixable',
      tables: ['test_fixable'],
      handles: ['RunRequested'],
      onFailure: 'stop',
      async apply(events, { tx, table }) {
        for (const e of events) {
          if (e.type !== 'RunRequested') continue;
          if (e.data.projectId !== projectId) continue;
          if (!fixed && e.data.subject.number === 13) throw new Error('bug: 13 is unlucky');
          await tx.query(`INSERT INTO ${table('test_fixable')} VALUES ($1, $2)`, [e.data.runId, e.data.projectId]);
        }
      },
    });
    const runner = start(fixable);
    try {
      const ids = await appendRuns(store, projectId, 20, 1); // subject numbers 0..19, in order
      let checkpoint = await readCheckpoint(db.pools.primary, 'test_fixable');
      for (let i = 0; i < 200 && checkpoint?.state !== 'stopped'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        checkpoint = await readCheckpoint(db.pools.primary, 'test_fixable');
      }
      assert.equal(checkpoint?.state, 'stopped');
      assert.match(checkpoint!.error!, /unlucky/);
      const before = await db.pools.primary.query('SELECT run_id FROM test_fixable');
      assert.equal(before.rowCount, 13, 'the events before the failing one were applied');

      fixed = true;
      assert.equal(await resume(db.pools.primary, 'test_fixable'), true);
      await caughtUp(db.pools.primary, store, 'test_fixable');
      const after = await db.pools.primary.query<{ run_id: string }>('SELECT run_id FROM test_fixable');
      assert.deepEqual(new Set(after.rows.map((r) => r.run_id)), new Set(ids));
    } finally {
      await runner.stop();
    }
  });

  it('a batch that always hits statement_timeout is blamed after a few tries: the slow event is parked, the rest applied', async () => {
    const projectId = randomUUID();
    const applied: number[] = [];
    const slow = projection({
      name: 'test_slow',
      tables: [],
      handles: ['RunRequested'],
      onFailure: 'dead-letter',
      async apply(events, { tx }) {
        await tx.query("SET LOCAL statement_timeout = '150ms'");
        for (const e of events) {
          if (e.type !== 'RunRequested' || e.data.projectId !== projectId) continue;
          // Event 7 always takes longer than the statement_timeout allows.
          await tx.query('SELECT pg_sleep($1)', [e.data.subject.number === 7 ? 1 : 0]);
          applied.push(e.data.subject.number);
        }
      },
    });
    const runner = start(slow);
    try {
      await appendRuns(store, projectId, 10, 1);
      await caughtUp(db.pools.primary, store, 'test_slow', 30_000);
    } finally {
      await runner.stop();
    }
    const parked = await db.pools.primary.query<{ error: string }>("SELECT error FROM projection_dead_letters WHERE projection = 'test_slow'");
    assert.equal(parked.rows.length, 1);
    assert.match(parked.rows[0]!.error, /statement timeout/);
    assert.deepEqual([...new Set(applied)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 8, 9]);
  });

  it('two runners race: only one holds the lease and applies; the other takes over when it stops', async () => {
    const projectId = randomUUID();
    const a = start(agentRuns, { leaseRetryMs: 100 });
    const b = start(agentRuns, { leaseRetryMs: 100 });
    let aRunning = true;
    try {
      await appendRuns(store, projectId, 40, 5);
      await caughtUp(db.pools.primary, store, 'agent_runs');
      const holder = (await readCheckpoint(db.pools.primary, 'agent_runs'))!.holder;
      assert.ok(holder, 'someone holds it');
      // Advisory locks are per database; other test files run their own runners in theirs.
      const { rows } = await db.pools.primary.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND objid = (hashtextextended('codexk8s.projection.agent_runs', 0) & 4294967295)::oid`,
      );
      assert.equal(rows[0]!.n, 1, 'exactly one lease');
      // Stop one (whichever holds the lease, the other must carry on).
      await a.stop();
      aRunning = false;
      await appendRuns(store, projectId, 10);
      await caughtUp(db.pools.primary, store, 'agent_runs', 10_000);
    } finally {
      if (aRunning) await a.stop();
      await b.stop();
    }
    assert.deepEqual(await counts(projectId), { failed: 50 }, 'no run counted twice');
  });
});

describe('checkpoints', () => {
  it('the skips of several projections at once go out in one statement; one from a moved checkpoint moves nothing', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `skip-test-${i}-${randomUUID()}`);
    for (const name of names) await ensureCheckpoint(db.pools.primary, name);
    const from = await Promise.all(names.map(async (name) => (await readCheckpoint(db.pools.primary, name))!));
    // The last one was moved by someone else since it was read.
    await db.pools.primary.query('UPDATE projection_checkpoints SET generation = generation + 1 WHERE name = $1', [names[5]]);
    const counted = countingPool(db.pools.primary);
    const to = (i: number) => new GlobalPosition(0, 1000n + BigInt(i), 7n);
    const at = new Date('2026-11-29T06:00:00Z');
    const skipped = await Promise.all(from.map((checkpoint, i) => skipCheckpoint(counted.pool, checkpoint, to(i), at)));
    // The first alone, the next five together, and the stale one tried again alone (it was not made).
    assert.ok(counted.queries <= 3, `${counted.queries} statements for 6 skips`);
    skipped.slice(0, 5).forEach((checkpoint, i) => {
      assert.equal(checkpoint?.name, names[i]);
      assert.equal(checkpoint?.position.compare(to(i)), 0);
      assert.deepEqual(checkpoint?.lastEventAt, at);
    });
    assert.equal(skipped[5], undefined);
    const stored = await Promise.all(names.map(async (name) => (await readCheckpoint(db.pools.primary, name))!));
    assert.deepEqual(stored.map((c) => c.position.toString()), [...[0, 1, 2, 3, 4].map((i) => to(i).toString()), from[5]!.position.toString()]);
  });

  it('a skip is not held back by another projection\'s row lock (a rebuild\'s swap or a retry holds it to pause that runner); that one waits', async () => {
    const [x, y] = [`skip-x-${randomUUID()}`, `skip-y-${randomUUID()}`];
    for (const n of [x, y]) await ensureCheckpoint(db.pools.primary, n);
    const fromX = (await readCheckpoint(db.pools.primary, x))!;
    const fromY = (await readCheckpoint(db.pools.primary, y))!;
    const at = new Date('2026-11-29T06:00:00Z');
    const to = (i: number) => new GlobalPosition(0, 2000n + BigInt(i), 7n);
    const swap = await db.pools.primary.connect();
    await swap.query('BEGIN');
    await readCheckpoint(swap, x, { lock: true });
    let skipX: Promise<unknown> | undefined;
    try {
      skipX = skipCheckpoint(db.pools.primary, fromX, to(1), at);
      await new Promise((r) => setTimeout(r, 50));
      const skipY = await Promise.race([skipCheckpoint(db.pools.primary, fromY, to(2), at), new Promise((r) => setTimeout(() => r('blocked'), 1000))]);
      assert.notEqual(skipY, 'blocked', 'y waited for x\'s lock');
      assert.equal((skipY as { position: GlobalPosition }).position.compare(to(2)), 0);
      assert.equal(await Promise.race([skipX, new Promise((r) => setTimeout(() => r('waiting'), 100))]), 'waiting', 'x waits for its own lock');
    } finally {
      await swap.query('ROLLBACK');
      swap.release();
    }
    assert.equal(((await skipX) as { position: GlobalPosition }).position.compare(to(1)), 0, 'and moves once it is released');
  });

  it('a skip from a stale checkpoint answers undefined, even beside a current one of the same projection', async () => {
    const [other, name] = [`skip-o-${randomUUID()}`, `skip-n-${randomUUID()}`];
    for (const n of [other, name]) await ensureCheckpoint(db.pools.primary, n);
    const fromOther = (await readCheckpoint(db.pools.primary, other))!;
    const current = (await readCheckpoint(db.pools.primary, name))!;
    const stale = { ...current, generation: current.generation - 1 }; // read before a rebuild moved it
    const at = new Date('2026-11-29T06:00:00Z');
    const to = (i: number) => new GlobalPosition(0, 3000n + BigInt(i), 7n);
    const first = skipCheckpoint(db.pools.primary, fromOther, to(0), at); // in flight: the next two would share a statement
    const [fromStale, fromCurrent] = await Promise.all([skipCheckpoint(db.pools.primary, stale, to(5), at), skipCheckpoint(db.pools.primary, current, to(6), at)]);
    await first;
    assert.equal(fromCurrent?.position.compare(to(6)), 0);
    assert.equal(fromStale, undefined, `the stale skip was told it moved the checkpoint to ${fromStale?.position.toString()}`);
  });
});

describe('rebuild', () => {
  it('while writes keep coming, ends identical to a fresh fold, and reads on the replica never fail', async () => {
    const projectId = randomUUID();
    await appendRuns(store, projectId, 300);
    const live = start(agentRuns);
    let writing = true;
    let written = 300;
    const writer = (async () => {
      while (writing) {
        await appendRuns(store, projectId, 10);
        written += 10;
      }
    })();
    let reads = 0;
    const readFailures: unknown[] = [];
    const reader = (async () => {
      while (writing) {
        try {
          await db.pools.replicas[0]!.query('SELECT count(*) FROM agent_runs WHERE project_id = $1', [projectId]);
          reads++;
        } catch (error) {
          readFailures.push(error);
        }
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const result = await rebuild(agentRuns, { pool: db.ownerPool, store, batchSize: 200 });
      assert.ok(result.events > 0);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      writing = false;
      await writer;
      await reader;
    }
    await caughtUp(db.pools.primary, store, 'agent_runs');
    await live.stop();
    assert.deepEqual(readFailures, []);
    assert.ok(reads > 10, `reads went on during the rebuild (${reads})`);
    assert.deepEqual(await counts(projectId), { failed: written});

    const runsHash = await contentHash(db.pools.primary, 'agent_runs', 't.id');
    const countsHash = await contentHash(db.pools.primary, 'project_run_counts', 't.project_id, t.status');
    // A fresh fold of the same log, with nothing else running, gives the same content.
    await allReadable(db.pools.primary, store);
    await rebuild(agentRuns, { pool: db.ownerPool, store });
    assert.equal(await contentHash(db.pools.primary, 'agent_runs', 't.id'), runsHash);
    assert.equal(await contentHash(db.pools.primary, 'project_run_counts', 't.project_id, t.status'), countsHash);
    const shadows = await db.pools.primary.query("SELECT 1 FROM pg_tables WHERE tablename LIKE '%\\_\\_rebuild' OR tablename LIKE '%\\_\\_old'");
    assert.equal(shadows.rowCount, 0, 'no shadow table left behind');
  });

  it('interrupted, leaves the live model untouched and no shadow; run again, completes', async () => {
    await appendRuns(store, randomUUID(), 100); // enough to interrupt midway, whatever ran before
    await allReadable(db.pools.primary, store);
    await rebuild(agentRuns, { pool: db.ownerPool, store });
    const before = await contentHash(db.pools.primary, 'agent_runs', 't.id');
    const controller = new AbortController();
    await assert.rejects(
      rebuild(agentRuns, { pool: db.ownerPool, store, batchSize: 100, signal: controller.signal, onProgress: (p) => p.events >= 200 && controller.abort() }),
      /interrupted; the live model is untouched/,
    );
    assert.equal(await contentHash(db.pools.primary, 'agent_runs', 't.id'), before);
    assert.equal((await db.pools.primary.query("SELECT 1 FROM pg_tables WHERE tablename LIKE '%\\_\\_rebuild'")).rowCount, 0, 'its shadows dropped');
    await rebuild(agentRuns, { pool: db.ownerPool, store });
    assert.equal(await contentHash(db.pools.primary, 'agent_runs', 't.id'), before);
  });

  it('project_members rebuilds over a log written before a removal ended memberships (member events after UserRemoved)', async () => {
    const [P, U] = [randomUUID(), randomUUID()];
    const at = '2026-11-27T10:00:00.000Z';
    const userAllowed = { type: 'UserAllowed', data: { userId: U, emailHash: 'a'.repeat(64), githubLogin: null, githubUserId: null, platformRole: null, allowedAt: at } };
    // What the old commands recorded: a user allowed again still had their membership, so a new role
    // was a MemberRoleChanged, and removing them a MemberRemoved.
    await store.append([{ stream: `project-${P}`, expected: 'no_stream', events: [
      { type: 'ProjectCreated', data: { projectId: P, key: `k${P.slice(0, 8)}`, name: 'x', createdAt: at } },
      { type: 'MemberAdded', data: { projectId: P, userId: U, role: 'read', addedAt: at } },
    ] as DomainEvent[] }], systemMeta());
    await store.append([{ stream: `user-${U}`, expected: 'no_stream', events: [userAllowed] as DomainEvent[] }], systemMeta());
    await store.append([{ stream: `user-${U}`, expected: 1, events: [{ type: 'UserRemoved', data: { userId: U, removedAt: at } }, userAllowed] as DomainEvent[] }], systemMeta());
    await store.append([{ stream: `project-${P}`, expected: 2, events: [
      { type: 'MemberRoleChanged', data: { projectId: P, userId: U, role: 'admin' } },
      { type: 'MemberLearningModeSet', data: { projectId: P, userId: U, learningMode: true } },
      { type: 'MemberRemoved', data: { projectId: P, userId: U } },
    ] as DomainEvent[] }], systemMeta());
    await allReadable(db.pools.primary, store);
    await rebuild(projectMembers, { pool: db.ownerPool, store });
    const { rows } = await db.pools.primary.query('SELECT count(*)::int AS n FROM project_members WHERE user_id = $1', [U]);
    assert.equal(rows[0].n, 0, 'the removal ended the membership; the later events found nothing to change');
  });
});
