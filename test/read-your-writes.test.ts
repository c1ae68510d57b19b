import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import { createEventStore, type EventStore } from '../adapters/postgres/event-store.js';
import { createPool } from '../adapters/postgres/pools.js';
import { createReplicaReads, type NoReplicaPolicy } from '../adapters/postgres/replica-reads.js';
import { pollingOnly } from '../adapters/postgres/subscription.js';
import { GlobalPosition } from '../ports/position.js';
import { errorModel, notFound } from '../adapters/http/errors.js';
import { answerWithPosition, minPositionHeader, minPositionOf, positionHeader } from '../adapters/http/consistency.js';
import { agentRuns } from '../projections/read-models/agent-runs.js';
import { runProjection } from '../projections/runner.js';
import { runQueries } from '../queries/runs.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { quietLog, runLife } from './support/projections.js';
import type pg from 'pg';

let db: TestDatabase;
let store: EventStore;
const controller = new AbortController();
let runner: Promise<void>;
const unreachable: pg.Pool[] = [];
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
  runner = runProjection(agentRuns, { pool: db.pools.primary, store, waker: pollingOnly, signal: controller.signal, log: quietLog, backoff: { minMs: 5, maxMs: 20 } });
});
after(async () => {
  controller.abort();
  await runner;
  await Promise.all(unreachable.map((p) => p.end()));
});

/** The query side as the staff API mounts it: error model, the min-position header, a run query. */
function app(replicas: pg.Pool[], policy: NoReplicaPolicy = 'fail', maxWaitMs = 2000) {
  const reads = createReplicaReads({ primary: db.pools.primary, replicas, end: async () => {} }, { policy, maxWaitMs });
  const runs = runQueries(reads);
  const router = new Router();
  // A command: it appends and answers with the position it wrote.
  router.post('/projects/:projectId/runs', async (ctx) => {
    const runId = randomUUID();
    const { position } = await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: runLife(runId, ctx.params.projectId!).slice(0, 1) }], {
      correlationId: `delivery-${runId}`,
      actor: { type: 'human', id: 'test' },
    });
    answerWithPosition(ctx, 202, { run_id: runId }, position);
  });
  router.get('/runs/:id', async (ctx) => {
    const run = await runs.byId(ctx.params.id!, minPositionOf(ctx));
    if (!run) throw notFound('run');
    ctx.body = run;
  });
  const koa = new Koa();
  koa.use(errorModel(quietLog));
  koa.use(router.routes());
  return koa.callback();
}

const deadReplica = () => {
  const pool = createPool('postgres://codexk8s@127.0.0.1:1/nowhere', 1, 'test-dead');
  unreachable.push(pool);
  return pool;
};

async function requestRun(projectId = randomUUID()) {
  const runId = randomUUID();
  const { position } = await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: runLife(runId, projectId).slice(0, 1) }], {
    correlationId: `delivery-${runId}`,
    actor: { type: 'system', id: 'test' },
  });
  return { runId, position };
}

describe('read-your-writes through the asynchronous replica', () => {
  it('a command answers with its position in the body and X-Codex-Position; a query that sends it back sees the write', async () => {
    const server = app([db.pools.replicas[0]!]);
    for (let i = 0; i < 10; i++) {
      const created = await request(server).post(`/projects/${randomUUID()}/runs`);
      assert.equal(created.status, 202);
      assert.match(created.body.position, /^\d+:\d+:\d+$/);
      assert.equal(created.headers[positionHeader.toLowerCase()], created.body.position);
      const read = await request(server).get(`/runs/${created.body.run_id}`).set(minPositionHeader, created.body.position);
      assert.equal(read.status, 200);
      assert.equal(read.body.id, created.body.run_id);
    }
  });

  it('a query with X-Codex-Min-Position sees the write, every time', async () => {
    const server = app([db.pools.replicas[0]!]);
    for (let i = 0; i < 15; i++) {
      const { runId, position } = await requestRun();
      const res = await request(server).get(`/runs/${runId}`).set(minPositionHeader, position.toString());
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.id, runId);
      assert.equal(res.body.status, 'pending');
    }
  });

  it('answers 503 with Retry-After when the replica has not caught up within the bound', async () => {
    const server = app([db.pools.replicas[0]!], 'fail', 300);
    const head = await store.headPosition();
    const future = new GlobalPosition(head.epoch, head.txId + 1_000_000n, head.seq);
    const started = Date.now();
    const res = await request(server).get(`/runs/${randomUUID()}`).set(minPositionHeader, future.toString());
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(res.body.error.code, 'unavailable');
    assert.ok(Date.now() - started >= 300, 'it waited for the bound first');
  });

  it('answers at once without the header, and 404 for an unknown run', async () => {
    const res = await request(app([db.pools.replicas[0]!])).get(`/runs/${randomUUID()}`);
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { error: { code: 'not_found', message: 'run not found' } });
  });

  it('refuses a malformed or oversized position with 400 invalid_argument', async () => {
    for (const bad of ['yesterday', '1:2', '-1:2:3', '9'.repeat(4000), '1:99999999999999999999:1', '1:1:99999999999999999999', '1:18446744073709551616:1', '1:1:9223372036854775808']) {
      const res = await request(app([db.pools.replicas[0]!])).get(`/runs/${randomUUID()}`).set(minPositionHeader, bad);
      assert.equal(res.status, 400, bad.slice(0, 20));
      assert.equal(res.body.error.code, 'invalid_argument');
      assert.ok(res.body.error.message.length < 300);
    }
  });
});

describe('several replicas', () => {
  it('reads go to the healthy ones, past one that is down', async () => {
    const server = app([deadReplica(), db.pools.replicas[0]!]);
    for (let i = 0; i < 4; i++) {
      const { runId, position } = await requestRun();
      const res = await request(server).get(`/runs/${runId}`).set(minPositionHeader, position.toString());
      assert.equal(res.status, 200);
    }
  });

  it('with none healthy: policy "fail" answers 503, policy "primary" reads the primary', async () => {
    const { runId, position } = await requestRun();
    const failing = await request(app([deadReplica()], 'fail')).get(`/runs/${runId}`).set(minPositionHeader, position.toString());
    assert.equal(failing.status, 503);
    assert.match(failing.body.error.message, /no read replica is reachable/);
    const primary = await request(app([deadReplica()], 'primary')).get(`/runs/${runId}`).set(minPositionHeader, position.toString());
    assert.equal(primary.status, 200);
    assert.equal(primary.body.id, runId);
  });
});
