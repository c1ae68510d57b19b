import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { pollingOnly } from '../adapters/postgres/subscription.js';
import { GlobalPosition } from '../ports/position.js';
import { reactor, type Reactor } from '../adapters/reactors/reactor.js';
import { runReactor } from '../adapters/reactors/runner.js';
import { lookForExpiredLeases, runScheduler } from '../adapters/reactors/run-scheduler.js';
import { endRun, renewLease, scheduleRun } from '../commands/runs.js';
import { agentRuns } from '../projections/read-models/agent-runs.js';
import { slots } from '../projections/read-models/runs-support.js';
import { runProjection } from '../projections/runner.js';
import { countingPool, useTestDatabase, type TestDatabase } from './support/cluster.js';
import { until } from './support/until.js';
import { runRequested, systemMeta } from './support/events.js';
import { quietLog } from './support/projections.js';

let db: TestDatabase;
let store: PostgresEventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

function start(r: Reactor, options: { attempts?: number; pool?: pg.Pool } = {}) {
  const controller = new AbortController();
  const done = runReactor(r, { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 50 }, leaseRetryMs: 50, retryMs: 5, ...options });
  return { stop: async () => (controller.abort(), await done) };
}


// For the tests below (written by a review of the scheduler's memory of settled projects).
const statusOf = async (id: string) => (await store.readStream(`run-${id}`)).at(-1)!.type;
const nowIso = () => new Date().toISOString();
const endIt = (id: string) => endRun({ store, now: nowIso }, id, { type: 'FailRun', reason: 'test' }, systemMeta());

function projecting() {
  const controller = new AbortController();
  const done = runProjection(agentRuns, { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 50 } });
  return { stop: async () => (controller.abort(), await done) };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let requests = 0;
const request = async (project: string) => {
  const id = randomUUID();
  const e = runRequested(id, project);
  (e.data as { requestedAt: string }).requestedAt = new Date(Date.UTC(2026, 10, 28, 10) + 1000 * requests++).toISOString(); // oldest first
  await store.append([{ stream: `run-${id}`, expected: 'no_stream', events: [e] }], systemMeta());
  return id;
};
const projected = async (id: string) => (await db.pools.primary.query('SELECT 1 FROM agent_runs WHERE id = $1', [id])).rowCount === 1;
const rowStatus = async (id: string) => (await db.pools.primary.query<{ status: string }>('SELECT status FROM agent_runs WHERE id = $1', [id])).rows[0]?.status;
/** An object whose methods can be intercepted. */
function proxied<T extends object>(target: T, overrides: Record<string, (...args: never[]) => unknown>): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (typeof prop === 'string' && overrides[prop]) return overrides[prop];
      const v = Reflect.get(t, prop, receiver);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

describe('reactors', () => {
  it('react to each handled event once in log order, retry a failing reaction, and park one that keeps failing', async () => {
    const project = randomUUID();
    const seen: string[] = [];
    let flaky = 2;
    const recorder = reactor({
      name: `test-recorder-${project.slice(0, 8)}`,
      handles: ['RunRequested'],
      async react(event) {
        if (event.type !== 'RunRequested' || event.data.projectId !== project) return;
        if (event.data.subject.number === 2 && flaky-- > 0) throw new Error('the cluster is busy');
        if (event.data.subject.number === 3) throw new Error('this one never works');
        seen.push(String(event.data.subject.number));
      },
    });
    for (const n of [1, 2, 3, 4]) {
      const runId = randomUUID();
      const e = runRequested(runId, project);
      (e.data as { subject: { number: number } }).subject.number = n;
      await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [e] }], systemMeta());
    }
    const running = start(recorder, { attempts: 3 });
    try {
      await until(async () => seen.length === 3, 'three reactions');
    } finally {
      await running.stop();
    }
    assert.deepEqual(seen, ['1', '2', '4'], 'in order; 2 after two failures; 3 parked');
    const parked = await db.pools.primary.query('SELECT error FROM projection_dead_letters WHERE projection = $1', [`reactor:${recorder.name}`]);
    assert.match(parked.rows[0]!.error, /never works/);
    // Started again, it goes on from its checkpoint: nothing is reacted to twice.
    const again = start(recorder);
    await new Promise((r) => setTimeout(r, 200));
    await again.stop();
    assert.deepEqual(seen, ['1', '2', '4']);
  });

  it('events reacted to together: a failing group falls back to one by one, with retries and dead letters', async () => {
    const project = randomUUID();
    const groups: number[][] = [];
    const alone: number[] = [];
    const n = (event: { data: unknown }) => (event.data as { subject: { number: number } }).subject.number;
    const grouped = reactor({
      name: `test-together-${project.slice(0, 8)}`,
      handles: ['RunRequested'],
      together: {
        handles: ['RunRequested'],
        async react(events) {
          const mine = events.filter((e) => e.type === 'RunRequested' && e.data.projectId === project).map(n);
          if (mine.length > 0) groups.push(mine);
          if (mine.includes(3)) throw new Error('one of them is bad');
        },
      },
      async react(event) {
        if (event.type !== 'RunRequested' || event.data.projectId !== project) return;
        if (n(event) === 3) throw new Error('this one never works');
        alone.push(n(event));
      },
    });
    await store.append([1, 2, 3, 4].map((k) => {
      const runId = randomUUID();
      const e = runRequested(runId, project);
      (e.data as { subject: { number: number } }).subject.number = k;
      return { stream: `run-${runId}`, expected: 'no_stream' as const, events: [e] };
    }), systemMeta());
    const running = start(grouped, { attempts: 2 });
    try {
      await until(async () => alone.length === 3, 'the fallback reactions');
    } finally {
      await running.stop();
    }
    assert.deepEqual(groups, [[1, 2, 3, 4]], 'one group, in log order');
    assert.deepEqual(alone, [1, 2, 4], 'then one by one; 3 parked');
    const parked = await db.pools.primary.query('SELECT error FROM projection_dead_letters WHERE projection = $1', [`reactor:${grouped.name}`]);
    assert.equal(parked.rowCount, 1);
    assert.match(parked.rows[0]!.error, /never works/);
  });

  it('with concurrency, a slow reaction holds back no later one, and the checkpoint waits for it', async () => {
    const project = randomUUID();
    const finished: number[] = [];
    let releaseSlow: () => void = () => {};
    const slowDone = new Promise<void>((r) => (releaseSlow = r));
    const windowed = reactor({
      name: `test-window-${project.slice(0, 8)}`,
      handles: ['RunRequested'],
      concurrency: 4,
      async react(event) {
        if (event.type !== 'RunRequested' || event.data.projectId !== project) return;
        const n = event.data.subject.number;
        if (n === 1) {
          slowStarted = true;
          await slowDone;
        }
        finished.push(n);
      },
    });
    let slowStarted = false;
    const ids: string[] = [];
    const request = async (n: number) => {
      const runId = randomUUID();
      ids.push(runId);
      const e = runRequested(runId, project);
      (e.data as { subject: { number: number } }).subject.number = n;
      await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [e] }], systemMeta());
    };
    await request(1);
    const first = (await store.readStream(`run-${ids[0]}`))[0]!.position;
    const checkpoint = async () => {
      const { rows } = await db.pools.primary.query<{ epoch: number; tx_id: string; position: string }>(
        'SELECT epoch, tx_id::text AS tx_id, position::text AS position FROM reactor_checkpoints WHERE name = $1', [windowed.name]);
      return rows[0] ? `${rows[0].epoch}:${rows[0].tx_id}:${rows[0].position}` : undefined;
    };
    const running = start(windowed);
    try {
      // The events after the slow one come while it runs, as a burst of labels does.
      await until(async () => slowStarted, 'the slow reaction to start');
      for (const n of [2, 3, 4, 5, 6, 7, 8]) await request(n);
      await until(async () => finished.length === 7, 'the seven quick reactions, past the slow one');
      assert.deepEqual([...finished].sort(), [2, 3, 4, 5, 6, 7, 8]);
      // The checkpoint has not passed the slow event: a crash now would replay it.
      const before = await checkpoint();
      assert.ok(before === undefined || GlobalPosition.parse(before).compare(first) < 0, `checkpoint ${before} passed the slow event ${first}`);
      releaseSlow();
      await until(async () => finished.length === 8, 'the slow reaction');
      const last = (await store.readStream(`run-${ids[7]}`))[0]!.position;
      await until(async () => {
        const at = await checkpoint();
        return at !== undefined && GlobalPosition.parse(at).compare(last) >= 0;
      }, 'the checkpoint past the last event');
    } finally {
      releaseSlow();
      await running.stop();
    }
  });

  it('with concurrency, reactions that end while others run are saved together, at most a tenth of a second later, and all of them once idle', async () => {
    const project = randomUUID();
    let reacted = 0;
    const windowed = reactor({
      name: `test-saves-${project.slice(0, 8)}`,
      handles: ['RunRequested'],
      concurrency: 8,
      async react(event) {
        if (event.type !== 'RunRequested' || event.data.projectId !== project) return;
        await sleep(5 + (event.data.subject.number % 7) * 5);
        reacted++;
      },
    });
    const counted = countingPool(db.pools.primary);
    const ids = Array.from({ length: 60 }, () => randomUUID());
    await Promise.all(ids.map((id, n) => {
      const e = runRequested(id, project);
      (e.data as { subject: { number: number } }).subject.number = n;
      return store.append([{ stream: `run-${id}`, expected: 'no_stream', events: [e] }], systemMeta());
    }));
    const requested = await store.readStreams(ids.map((id) => `run-${id}`));
    const newest = [...requested.values()].map((events) => events[0]!.position).reduce((a, b) => (a.compare(b) > 0 ? a : b));
    const running = start(windowed, { pool: counted.pool });
    try {
      await until(async () => reacted === 60, 'the 60 reactions');
      const checkpoint = async () => (await db.pools.primary.query<{ epoch: number; tx_id: string; position: string; reactions: string }>(
        'SELECT epoch, tx_id::text AS tx_id, position::text AS position, reactions::text AS reactions FROM reactor_checkpoints WHERE name = $1', [windowed.name])).rows[0]!;
      await until(async () => {
        const at = await checkpoint();
        return GlobalPosition.parse(`${at.epoch}:${at.tx_id}:${at.position}`).compare(newest) >= 0;
      }, 'the checkpoint past the last event');
      // Every reaction counted (a new reactor reads the log from its start: other tests' requests too).
      const handled = await db.pools.primary.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM flow_events WHERE event_type = 'RunRequested' AND (epoch, tx_id, position) <= ($1::int, $2::xid8, $3::bigint)`,
        [newest.epoch, newest.txId.toString(), newest.seq.toString()]);
      assert.equal((await checkpoint()).reactions, handled.rows[0]!.n, 'every reaction counted');
      const saves = counted.texts.filter((t) => t.includes('UPDATE reactor_checkpoints SET epoch')).length;
      assert.ok(saves <= 12, `${saves} saves for 60 reactions ending over about 0.3 s`);
    } finally {
      await running.stop();
    }
  });

  it('one reaction at a time: the checkpoint is saved a tenth of a second behind at most while busy, and at once on stopping', async () => {
    const project = randomUUID();
    let reacted = 0;
    const sequential = reactor({
      name: `test-sequential-saves-${project.slice(0, 8)}`,
      handles: ['RunRequested'],
      async react(event) {
        if (event.type !== 'RunRequested' || event.data.projectId !== project) return;
        await sleep(2);
        // The last one stops the runner while it is busy: what is unsaved then is saved on stopping.
        if (++reacted === 40) stopped = running.stop();
      },
    });
    let stopped: Promise<void> | undefined;
    const ids = Array.from({ length: 40 }, () => randomUUID());
    await Promise.all(ids.map((id) => store.append([{ stream: `run-${id}`, expected: 'no_stream', events: [runRequested(id, project)] }], systemMeta())));
    const requested = await store.readStreams(ids.map((id) => `run-${id}`));
    const newest = [...requested.values()].map((events) => events[0]!.position).reduce((a, b) => (a.compare(b) > 0 ? a : b));
    const counted = countingPool(db.pools.primary);
    const running = start(sequential, { pool: counted.pool });
    await until(async () => stopped !== undefined, 'the 40 reactions');
    await stopped;
    const { rows } = await db.pools.primary.query<{ epoch: number; tx_id: string; position: string }>(
      'SELECT epoch, tx_id::text AS tx_id, position::text AS position FROM reactor_checkpoints WHERE name = $1', [sequential.name]);
    assert.ok(GlobalPosition.parse(`${rows[0]!.epoch}:${rows[0]!.tx_id}:${rows[0]!.position}`).compare(newest) >= 0, 'saved past the last reaction');
    const saves = counted.texts.filter((t) => t.includes('UPDATE reactor_checkpoints SET epoch')).length;
    assert.ok(saves <= 10, `${saves} saves for 40 reactions`);
  });

  for (const concurrency of [1, 4]) {
    it(`a reaction that ended is saved within a tenth of a second even while the next one is slow (concurrency ${concurrency}; from a review)`, async () => {
      const project = randomUUID();
      let release = () => {};
      const slow = new Promise<void>((r) => (release = r));
      let quickDone = false;
      let slowStarted = false;
      const r = reactor({
        name: `test-slow-next-${concurrency}-${project.slice(0, 8)}`,
        handles: ['RunRequested'],
        concurrency,
        async react(event) {
          if (event.type !== 'RunRequested' || event.data.projectId !== project) return;
          if (event.data.subject.number === 1) {
            quickDone = true;
            return;
          }
          slowStarted = true;
          await slow; // a launch waiting out 429s, or a reaction retried with backoff
        },
      });
      const ids = [randomUUID(), randomUUID()];
      for (const [n, id] of ids.entries()) {
        const e = runRequested(id, project);
        (e.data as { subject: { number: number } }).subject.number = n + 1;
        await store.append([{ stream: `run-${id}`, expected: 'no_stream', events: [e] }], systemMeta());
      }
      const quick = (await store.readStream(`run-${ids[0]}`))[0]!.position;
      const running = start(r);
      try {
        await until(async () => quickDone && slowStarted, 'the quick reaction done, the slow one started');
        await sleep(600);
        const { rows } = await db.pools.primary.query<{ epoch: number; tx_id: string; position: string }>(
          'SELECT epoch, tx_id::text AS tx_id, position::text AS position FROM reactor_checkpoints WHERE name = $1', [r.name]);
        const at = GlobalPosition.parse(`${rows[0]!.epoch}:${rows[0]!.tx_id}:${rows[0]!.position}`);
        assert.ok(at.compare(quick) >= 0, `600 ms after the quick reaction the checkpoint is at ${at.toString()}, before it (${quick.toString()})`);
      } finally {
        release();
        await running.stop();
      }
    });
  }

  it('with concurrency, a reaction whose dead letter cannot be written stops the runner, never the process, and its event is not passed', async () => {
    const project = randomUUID();
    let faulty = true;
    const real = db.pools.primary;
    // The real pool, but writing a dead letter fails while `faulty` (the database went away then).
    const pool = new Proxy(real, {
      get(target, prop) {
        if (prop === 'query') {
          return (text: unknown, ...rest: unknown[]) =>
            faulty && typeof text === 'string' && text.includes('INSERT INTO projection_dead_letters')
              ? Promise.reject(new Error('the database is gone'))
              : (target.query as (...args: unknown[]) => unknown).call(target, text, ...rest);
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const failing = reactor({
      name: `test-park-fails-${project.slice(0, 8)}`,
      handles: ['RunRequested'],
      concurrency: 2,
      async react(event) {
        if (event.type === 'RunRequested' && event.data.projectId === project) throw new Error('never works');
      },
    });
    const runId = randomUUID();
    await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: [runRequested(runId, project)] }], systemMeta());
    const controller = new AbortController();
    const done = runReactor(failing, { pool, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 50 }, leaseRetryMs: 50, retryMs: 5, attempts: 1 });
    const parked = async () => (await real.query('SELECT 1 FROM projection_dead_letters WHERE projection = $1', [`reactor:${failing.name}`])).rowCount === 1;
    try {
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await parked(), false);
      faulty = false;
      await until(parked, 'the dead letter once the database is back');
    } finally {
      controller.abort();
      await done;
    }
  });

  it('only one instance of a reactor runs at a time across runners', async () => {
    let concurrent = 0;
    let most = 0;
    const slow = reactor({
      name: 'test-single',
      handles: ['RunRequested'],
      async react() {
        most = Math.max(most, ++concurrent);
        await new Promise((r) => setTimeout(r, 5));
        concurrent--;
      },
    });
    const a = start(slow);
    const b = start(slow);
    for (let i = 0; i < 20; i++) await store.append([{ stream: `run-${randomUUID()}`, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    await new Promise((r) => setTimeout(r, 1000));
    await Promise.all([a.stop(), b.stop()]);
    assert.equal(most, 1);
  });

  it('the run scheduler starts requested runs on free slots, the oldest waiting run when a slot is released, and never holds up another project', async () => {
    const controller = new AbortController();
    const projection = runProjection(agentRuns, { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 50 } });
    const scheduler = start(runScheduler({ store, pool: db.pools.primary, now: () => new Date().toISOString(), leaseMs: 60_000, slotsPerProject: 2 }));
    try {
      const busy = randomUUID();
      const other = randomUUID();
      // The other project has one slot of its own; the busy one the platform's two.
      await store.append([{ stream: `project-${other}`, expected: 'no_stream', events: [
        { type: 'ProjectCreated', data: { projectId: other, key: `p${other.slice(0, 8)}`, name: 'Other', createdAt: new Date().toISOString() } },
        { type: 'ProjectSlotsSet', data: { projectId: other, slots: 1 } },
      ] }], systemMeta());
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const id = randomUUID();
        ids.push(id);
        const e = runRequested(id, busy);
        (e.data as { requestedAt: string }).requestedAt = new Date(Date.UTC(2026, 10, 28, 10, i)).toISOString();
        await store.append([{ stream: `run-${id}`, expected: 'no_stream', events: [e] }], systemMeta());
      }
      const theirs = randomUUID();
      const theirSecond = randomUUID();
      // Requested a minute apart: at the same instant, "oldest first" has no answer (the read model
      // orders them by id), and a look at the project (for its new slot count) may find both.
      for (const [minute, id] of [[10, theirs], [11, theirSecond]] as const) {
        const e = runRequested(id, other);
        (e.data as { requestedAt: string }).requestedAt = new Date(Date.UTC(2026, 10, 28, 11, minute)).toISOString();
        await store.append([{ stream: `run-${id}`, expected: 'no_stream', events: [e] }], systemMeta());
      }
      const status = async (id: string) => (await store.readStream(`run-${id}`)).at(-1)!.type;
      await until(async () => (await status(theirs)) === 'RunScheduled', 'the other project\'s run');
      assert.equal(await status(theirSecond), 'RunRequested', 'one slot of its own: its second run waits');
      await until(async () => (await status(ids[0]!)) === 'RunScheduled' && (await status(ids[1]!)) === 'RunScheduled', 'the first two runs');
      assert.deepEqual([await status(ids[2]!), await status(ids[3]!)], ['RunRequested', 'RunRequested'], 'saturated: the others wait');
      await endRun({ store, now: () => new Date().toISOString() }, ids[0]!, { type: 'FailRun', reason: 'test' }, systemMeta());
      await until(async () => (await status(ids[2]!)) === 'RunScheduled', 'the oldest waiting run takes the released slot');
      assert.equal(await status(ids[3]!), 'RunRequested');
    } finally {
      await scheduler.stop();
      controller.abort();
      await projection;
    }
  });

  it('a scheduler that took over schedules the runs its predecessor left waiting, and then its own, each on the next release', async () => {
    const projection = projecting();
    const scheduler = () => start(runScheduler({ store, pool: db.pools.primary, now: () => new Date().toISOString(), leaseMs: 60_000, slotsPerProject: 1 }));
    const project = randomUUID();
    try {
      const first = scheduler();
      const [a, b] = [await request(project), await request(project)];
      await until(async () => (await statusOf(a)) === 'RunScheduled', 'the first run');
      await sleep(200);
      await first.stop();
      assert.equal(await statusOf(b), 'RunRequested', 'one slot: left waiting by the first scheduler');
      const second = scheduler();
      try {
        await endIt(a);
        await until(async () => (await statusOf(b)) === 'RunScheduled', 'the run left waiting before the takeover');
        const c = await request(project);
        await sleep(200);
        assert.equal(await statusOf(c), 'RunRequested', 'the slot is taken again: its own run waits');
        await endIt(b);
        await until(async () => (await statusOf(c)) === 'RunScheduled', 'its own waiting run, on the next release');
        await endIt(c);
        const d = await request(project);
        await until(async () => (await statusOf(d)) === 'RunScheduled', 'a free slot: at once');
      } finally {
        await second.stop();
      }
    } finally {
      await projection.stop();
    }
  });
  it('a project given more slots starts its waiting runs at once, oldest first, without waiting for a release', async () => {
    const projection = projecting();
    const project = randomUUID();
    const s = start(runScheduler({ store, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 1 }));
    try {
      await store.append([{ stream: `project-${project}`, expected: 'no_stream', events: [
        { type: 'ProjectCreated', data: { projectId: project, key: `s${project.slice(0, 8)}`, name: 'Slots', createdAt: nowIso() } },
      ] }], systemMeta());
      const [a, b, c, d] = [await request(project), await request(project), await request(project), await request(project)];
      await until(async () => (await statusOf(a)) === 'RunScheduled', 'the first run');
      await sleep(300);
      assert.deepEqual(await Promise.all([b, c, d].map(statusOf)), ['RunRequested', 'RunRequested', 'RunRequested'], 'one slot: the rest wait');
      await store.append([{ stream: `project-${project}`, expected: 1, events: [{ type: 'ProjectSlotsSet', data: { projectId: project, slots: 3 } }] }], systemMeta());
      await until(async () => (await statusOf(b)) === 'RunScheduled' && (await statusOf(c)) === 'RunScheduled', 'the two oldest waiting runs, on the new slots');
      assert.equal(await statusOf(d), 'RunRequested', 'three slots, three runs');
    } finally {
      await s.stop();
      await projection.stop();
    }
  });

  it('a run waiting behind a lease nobody renewed gets the slot when the lease runs out, with no other event to tell', async () => {
    const controller = new AbortController();
    const projections = [agentRuns, slots].map((projection) => runProjection(projection, { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 50 } }));
    let clock = Date.now();
    const scheduler = runScheduler({ store, pool: db.pools.primary, now: () => new Date(clock).toISOString(), leaseMs: 60_000, slotsPerProject: 1 });
    const s = start(scheduler);
    const looking = lookForExpiredLeases(scheduler, { signal: controller.signal, log: quietLog, everyMs: 50 });
    // Another process's scheduler, not holding the lease: it leaves the looks to the holder.
    const standby = runScheduler({ store, pool: db.pools.primary, now: () => new Date(clock).toISOString(), leaseMs: 60_000, slotsPerProject: 1 });
    let standbyLooks = 0;
    const look = standby.expiredLeases;
    standby.expiredLeases = (meta) => (standbyLooks++, look(meta));
    const standing = lookForExpiredLeases(standby, { signal: controller.signal, log: quietLog, everyMs: 50 });
    const project = randomUUID();
    try {
      const [a, b] = [await request(project), await request(project)];
      await until(async () => (await statusOf(a)) === 'RunScheduled', 'the first run');
      await until(async () => (await db.pools.primary.query('SELECT 1 FROM slots WHERE run_id = $1', [a])).rowCount === 1, 'its lease in the read model');
      await sleep(300);
      assert.equal(await statusOf(b), 'RunRequested', 'the lease holds: b waits');
      clock += 61_000; // a's worker died: nobody renews its lease, and nothing is appended
      await until(async () => (await statusOf(b)) === 'RunScheduled', 'the waiting run, on the slot whose lease ran out');
      const leased = (await store.readStream(`run-${b}`)).find((e) => e.type === 'RunScheduled');
      assert.equal((leased!.data as { slot: number }).slot, 1);
      assert.equal(standbyLooks, 0, 'the standby looked at nothing');
      assert.equal(scheduler.holding(), true);
    } finally {
      await s.stop();
      assert.equal(scheduler.holding(), false, 'a stopped scheduler no longer holds the lease');
      controller.abort();
      await Promise.all([...projections, looking, standing]);
    }
  });

  it('an expired lease on a slot above the project\'s count (it was given fewer) is not one to look for (from a review)', async () => {
    const controller = new AbortController();
    const projections = [agentRuns, slots].map((projection) => runProjection(projection, { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 50 } }));
    let clock = Date.now();
    const deps = { store, now: () => new Date(clock).toISOString(), leaseMs: 60_000 };
    const project = randomUUID();
    try {
      const [h1, h2] = [await request(project), await request(project)];
      assert.deepEqual(await scheduleRun(deps, h1!, 2, systemMeta()), { slot: 1 });
      assert.deepEqual(await scheduleRun(deps, h2!, 2, systemMeta()), { slot: 2 });
      clock += 50_000;
      assert.equal(await renewLease(deps, h1!, systemMeta()), true); // h1 is alive; h2's worker died
      const waiting = await request(project);
      clock += 20_000; // slot 2's lease ran out, slot 1's holds
      await until(async () => (await rowStatus(waiting)) === 'pending', 'the waiting run, projected');
      await until(async () => (await db.pools.primary.query('SELECT 1 FROM slots WHERE project_id = $1 AND slot = 1 AND lease_expires_at > $2', [project, new Date(clock + 30_000)])).rowCount === 1, 'the renewal, projected');
      const scheduler = runScheduler({ ...deps, pool: db.pools.primary, slotsPerProject: 1 }); // one slot now
      assert.deepEqual(await scheduler.expiredLeases(systemMeta()), [], 'slot 2 is not the project\'s any more: nothing to look at');
      assert.equal(await statusOf(waiting), 'RunRequested', 'slot 1 is still leased');
      clock += 60_000; // now slot 1's lease ran out too
      await until(async () => (await scheduler.expiredLeases(systemMeta())).includes(project), 'a look at the project');
      assert.equal(await statusOf(waiting), 'RunScheduled');
    } finally {
      controller.abort();
      await Promise.all(projections);
    }
  });

  it('a lease lost between taking it and following the log: its process lets go, and only one holds (from a review)', async () => {
    const terminateLeases = () => db.pools.primary.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'codex-k8s-reactor run-scheduler' AND datname = current_database()`);
    const make = () => runScheduler({ store, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 1 });
    const [a, b] = [make(), make()];
    let killed = false;
    // The session holding the lock ends (a restart, a failover) right after the lock was taken.
    const pool = proxied(db.pools.primary, {
      query: async (text: string, values?: unknown[]) => {
        if (!killed && typeof text === 'string' && text.startsWith('INSERT INTO reactor_checkpoints')) {
          killed = true;
          await terminateLeases();
          await sleep(300);
        }
        return db.pools.primary.query(text, values as never);
      },
    });
    const first = start(a, { pool });
    await until(async () => killed, 'the lease taken and lost');
    await sleep(400);
    const second = start(b);
    try {
      await until(async () => b.holding() || a.holding(), 'a holder');
      await sleep(1000);
      assert.equal(Number(a.holding()) + Number(b.holding()), 1, `a=${a.holding()} b=${b.holding()}`);
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  it('a backlog of >20 releases of one project, reacted to together, fills every freed slot', async () => {
    const projection = projecting();
    const project = randomUUID();
    const scheduler = () => start(runScheduler({ store, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 25 }));
    try {
      const first = scheduler();
      const ids: string[] = [];
      for (let i = 0; i < 50; i++) ids.push(await request(project));
      const running = ids.slice(0, 25);
      const waiting = ids.slice(25);
      await until(async () => (await Promise.all(running.map(statusOf))).every((s) => s === 'RunScheduled'), '25 scheduled');
      await sleep(300);
      await first.stop();
      // 25 runs end while no scheduler runs (a restart, a takeover): the next one finds 25 releases in one batch.
      for (const id of running) await endIt(id);
      const second = scheduler();
      try {
        await sleep(3000);
        const states = await Promise.all(waiting.map(statusOf));
        assert.equal(states.filter((s) => s === 'RunScheduled').length, 25, `25 slots free, 25 runs waiting: ${states.filter((s) => s === 'RunRequested').length} still wait`);
      } finally {
        await second.stop();
      }
    } finally {
      await projection.stop();
    }
  });

  it('the same scheduler object, leased again after another process reacted meanwhile, forgets that a project was settled', async () => {
    const projection = projecting();
    const project = randomUUID();
    const deps = { store, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 1 };
    const mine = runScheduler(deps);
    try {
      let s = start(mine);
      const a = await request(project);
      await until(async () => (await statusOf(a)) === 'RunScheduled', 'a');
      const b = await request(project);
      await sleep(300);
      await endIt(a);
      await until(async () => (await statusOf(b)) === 'RunScheduled', 'b');
      await endIt(b); // nothing waits: settled in `mine`
      await sleep(300);
      await s.stop();
      const other = start(runScheduler(deps)); // another process holds the lease for a while
      const c = await request(project);
      await until(async () => (await statusOf(c)) === 'RunScheduled', 'c');
      const d = await request(project); // left waiting by the other process
      await sleep(300);
      await other.stop();
      s = start(mine); // the first process takes the lease back
      try {
        await endIt(c);
        await until(async () => (await statusOf(d)) === 'RunScheduled', 'd, on the release of c');
      } finally {
        await s.stop();
      }
    } finally {
      await projection.stop();
    }
  });
});

describe('the scheduler under failures, cancels and a lagging read model (from a review)', () => {
  it('a together batch that fails in one project: nothing of it outlives the reaction, and the run its replay left waiting takes the next release', async () => {
    const P = randomUUID();
    const Q = randomUUID();
    let failP = false;
    let delayQ = false;
    const store2 = proxied(store, {
      readStream: (async (stream: string) => {
        if (failP && stream === `project-${P}`) { failP = false; throw new Error('hiccup reading P'); }
        return store.readStream(stream);
      }) as never,
    });
    const pool2 = proxied(db.pools.primary, {
      query: (async (sql: string, params?: unknown[]) => {
        const slow = delayQ && sql.includes('FROM agent_runs') && params?.[0] === Q;
        if (slow) delayQ = false;
        const result = await db.pools.primary.query(sql, params);
        if (slow) await sleep(1500);
        return result;
      }) as never,
    }) as pg.Pool;
    let proj = projecting();
    const first = start(runScheduler({ store, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 1 }));
    const p0 = await request(P);
    const q0 = await request(Q);
    await until(async () => (await statusOf(p0)) === 'RunScheduled' && (await statusOf(q0)) === 'RunScheduled', 'p0, q0');
    await first.stop();
    await endIt(q0); // SlotReleased(Q)
    await endIt(p0); // SlotReleased(P)
    const marker = await request(randomUUID()); // so agent_runs' checkpoint passes both releases
    await until(() => projected(marker), 'agent_runs past the releases');
    await proj.stop(); // agent_runs now lags: x and r are not in it yet
    const x = await request(Q);
    const r = await request(Q);
    failP = true;
    delayQ = true;
    const s = start(runScheduler({ store: store2, pool: pool2, now: nowIso, leaseMs: 60_000, slotsPerProject: 1 }));
    try {
      await until(async () => (await statusOf(x)) === 'RunScheduled', 'x');
      await sleep(2500); // the leftover look of Q ends
      assert.equal(await statusOf(r), 'RunRequested', 'r waits: Q is full');
      proj = projecting();
      await until(async () => (await rowStatus(r)) === 'pending', 'r pending in agent_runs');
      await endIt(x); // Q's slot is free, r waits
      await sleep(2500);
      assert.equal(await statusOf(r), 'RunScheduled', 'r takes the slot x released');
    } finally {
      await s.stop();
      await proj.stop();
    }
  });

  it('a request parked while agent_runs lags is still found by a later release', async () => {
    const Q = randomUUID();
    let failFor: string | undefined;
    const flaky = proxied(store, {
      append: (async (writes: { stream: string }[], meta: never) => {
        if (failFor && writes.some((w) => w.stream === `run-${failFor}`)) throw new Error('database hiccup');
        return store.append(writes as never, meta);
      }) as never,
    });
    let proj = projecting();
    const s = start(runScheduler({ store: flaky, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 1 }), { attempts: 2 });
    try {
      const a = await request(Q);
      await until(async () => (await statusOf(a)) === 'RunScheduled', 'a');
      await endIt(a);
      const marker = await request(randomUUID());
      await until(() => projected(marker), 'agent_runs past a');
      await proj.stop(); // agent_runs lags from here
      const b = await request(Q);
      failFor = b;
      await sleep(1000); // b's reaction fails and is parked
      failFor = undefined;
      const parked = await db.pools.primary.query("SELECT count(*)::int AS n FROM projection_dead_letters WHERE projection = 'reactor:run-scheduler' AND event_type = 'RunRequested' AND parked_at > now() - interval '5 seconds'");
      assert.equal(parked.rows[0].n, 1, 'b parked');
      const c = await request(Q);
      await until(async () => (await statusOf(c)) === 'RunScheduled', 'c takes the free slot');
      await endIt(c); // a release while agent_runs lacks b: a "complete" look with nothing pending
      await sleep(500);
      proj = projecting();
      // The release of c may still be looking (it waits for agent_runs a while) and find b itself:
      // b can go from absent to scheduled in one batch of agent_runs, never shown pending.
      await until(async () => ['pending', 'scheduled'].includes((await rowStatus(b)) ?? ''), 'b in agent_runs');
      const d = await request(Q);
      await sleep(2500);
      if ((await statusOf(d)) === 'RunScheduled') { // d, newer than b, took the free slot
        await endIt(d); // a release: b waits, agent_runs shows it
        await sleep(2500);
      }
      assert.equal(await statusOf(b), 'RunScheduled', 'b is scheduled on the release of d');
    } finally {
      await s.stop();
      await proj.stop();
    }
  });

  it('a pending run canceled between the look and its append: its slot goes to the next waiting run', async () => {
    const Q = randomUUID();
    let cancelOnSchedule: string | undefined;
    const racing = proxied(store, {
      append: (async (writes: { stream: string; events: { type: string }[] }[], meta: never) => {
        if (cancelOnSchedule && writes.some((w) => w.stream === `run-${cancelOnSchedule}` && w.events.some((e) => e.type === 'RunScheduled'))) {
          const id = cancelOnSchedule;
          cancelOnSchedule = undefined;

          await endRun({ store, now: nowIso }, id, { type: 'CancelRun', reason: 'user', by: null }, systemMeta());

        }
        return store.append(writes as never, meta);
      }) as never,
    });
    const proj = projecting();
    const s = start(runScheduler({ store: racing, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 1 }));
    try {
      const h = await request(Q);
      await until(async () => (await statusOf(h)) === 'RunScheduled', 'h');
      const c1 = await request(Q);
      const c2 = await request(Q);
      await until(async () => (await rowStatus(c2)) === 'pending', 'c1, c2 pending in agent_runs');
      await sleep(300);
      cancelOnSchedule = c1; // the user cancels c1 just as the release schedules it
      await endIt(h);
      await sleep(2500);

      assert.equal(await statusOf(c1), 'RunCanceled');
      assert.equal(await statusOf(c2), 'RunScheduled', 'c2 takes the slot c1 was to take');
    } finally {
      await s.stop();
      await proj.stop();
    }
  });

  it('with agent_runs behind, a release waits for it once, not once per look, so other projects are not held back', async () => {
    const Q = randomUUID();
    const P = randomUUID();
    let proj = projecting();
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await request(Q));
    await until(() => projected(ids.at(-1)!), 'all 60 pending in agent_runs');
    await proj.stop(); // agent_runs lags from here
    const s = start(runScheduler({ store, pool: db.pools.primary, now: nowIso, leaseMs: 60_000, slotsPerProject: 45 }));
    try {
      await until(async () => (await statusOf(ids[44]!)) === 'RunScheduled', '45 scheduled');
      const late = await request(Q); // left waiting after agent_runs' checkpoint
      await sleep(300);
      const t0 = Date.now();
      await endIt(ids[0]!); // one release: looks 1-20 and 21-40 are all stale, 41-60 has the waiting 46th
      const other = await request(P); // another project's request, right behind the release
      await until(async () => (await statusOf(other)) === 'RunScheduled', 'the other project\'s run', 20_000);
      const otherMs = Date.now() - t0;
      await until(async () => (await statusOf(ids[45]!)) === 'RunScheduled', 'the 46th', 20_000);
      const ms = Date.now() - t0;
      console.log(`release handled after ${ms} ms; other project's request after ${otherMs} ms; late=${await statusOf(late)}`);
      assert.ok(otherMs < 3000, `another project's request waited ${otherMs} ms behind one release`);
    } finally {
      await s.stop();
      proj = projecting();
      await proj.stop();
    }
  });
});
