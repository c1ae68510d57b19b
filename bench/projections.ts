/**
 * npm run bench:projections — (1) folds 1,000,000 synthetic run events into agent_runs through the
 * rebuild path and prints events/s; (2) the live lag, from an append's commit to the checkpoint
 * that covers it, at a steady 1,000 events/s; beside `pgbench -N` on the same database.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { createPool } from '../adapters/postgres/pools.js';
import { createWaker } from '../adapters/postgres/subscription.js';
import { createLogger } from '../adapters/log.js';
import { agentRuns } from '../projections/read-models/agent-runs.js';
import { rebuild } from '../projections/rebuild.js';
import { runProjection } from '../projections/runner.js';
import type { DomainEvent } from '../domain/events.js';
import { benchDatabase, pgbenchCommand, pgbenchInit, pgbenchTps, round, say, seconds } from './support.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RATE = 1000; // events per second for the live lag
const LIVE_SECONDS = Number(process.env.BENCH_LIVE_SECONDS ?? 10);

/** Synthetic runs, four events each (requested, scheduled, started, succeeded), over 100 projects. */
async function generate(url: string, events: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('SET statement_timeout = 0');
  const runsPerChunk = 25_000;
  const runs = Math.ceil(events / 4);
  for (let done = 0; done < runs; done += runsPerChunk) {
    const n = Math.min(runsPerChunk, runs - done);
    await client.query(
      `INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id, event_type, payload)
       SELECT gen_random_uuid(), 'run-' || r.id, s.step, 'delivery-' || r.id, 'system', 'bench',
              (ARRAY['RunRequested', 'RunScheduled', 'JobStarted', 'RunSucceeded'])[s.step],
              CASE s.step
                WHEN 1 THEN jsonb_build_object('runId', r.id, 'projectId', r.project, 'agent', 'dev', 'repository', 'github/octo/hello',
                                               'subject', jsonb_build_object('kind', 'issue', 'number', r.n), 'learningMode', false,
                                               'requestedAt', '2026-11-27T10:00:00.000Z')
                WHEN 2 THEN jsonb_build_object('runId', r.id, 'slot', 1, 'leaseExpiresAt', '2026-11-27T11:00:00.000Z', 'scheduledAt', '2026-11-27T10:00:01.000Z')
                WHEN 3 THEN jsonb_build_object('runId', r.id, 'namespace', 'run-' || r.id, 'job', 'agent', 'startedAt', '2026-11-27T10:00:02.000Z')
                ELSE jsonb_build_object('runId', r.id, 'finishedAt', '2026-11-27T10:10:00.000Z')
              END
         FROM (SELECT gen_random_uuid() AS id, md5('project-' || (i % 100))::uuid AS project, i AS n
                 FROM generate_series($1::int, $2::int) i) r
         CROSS JOIN generate_series(1, 4) s(step)
        ORDER BY r.n, s.step`,
      [done + 1, done + n],
    );
    say(`generated ${Math.min((done + n) * 4, events)} events`);
  }
  await client.end();
}

async function foldRate(url: string): Promise<{ events: number; seconds: number }> {
  const pool = createPool(url, 4, 'codex-k8s-bench');
  const store = createEventStore(pool, { notify: false });
  const result = await rebuild(agentRuns, {
    pool,
    store,
    batchSize: 10_000,
    onProgress: (p) => p.events % 200_000 < 10_000 && say(`folded ${p.events} of ${p.total}`),
  });
  const { rows } = await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM agent_runs');
  if (Number(rows[0]!.n) !== Math.ceil(EVENTS / 4)) throw new Error(`expected ${Math.ceil(EVENTS / 4)} runs, the model has ${rows[0]!.n}`);
  await pool.end();
  return { events: result.events, seconds: result.seconds };
}

/** Appends at a steady RATE and records, per event, the time from its commit to the checkpoint's. */
async function liveLag(url: string): Promise<number[]> {
  const pool = createPool(url, 12, 'codex-k8s-bench');
  const store = createEventStore(pool);
  const waker = await createWaker(url);
  const controller = new AbortController();
  const committedAt = new Map<string, number>();
  const lags: number[] = [];
  const runner = runProjection(agentRuns, {
    pool,
    store,
    waker,
    signal: controller.signal,
    log: createLogger({ level: 'warn' }),
    onCommitted: (batch) => {
      const now = performance.now();
      for (const e of batch) {
        const at = committedAt.get(e.id);
        if (at !== undefined) lags.push(now - at);
        committedAt.delete(e.id);
      }
    },
  });
  // Let the runner reach the head (the rebuilt model) before measuring.
  await new Promise((r) => setTimeout(r, 1000));
  const at = new Date().toISOString();
  const life = (runId: string): DomainEvent[] =>
    [
      { type: 'RunRequested', data: { runId, projectId: '00000000-0000-4000-8000-000000000001', agent: 'dev', repository: 'github/octo/hello', subject: { kind: 'issue', number: 1 }, learningMode: false, requestedAt: at } },
      { type: 'RunScheduled', data: { runId, slot: 1, leaseExpiresAt: at, scheduledAt: at } },
      { type: 'JobStarted', data: { runId, namespace: `run-${runId}`, job: 'agent', startedAt: at } },
      { type: 'RunSucceeded', data: { runId, finishedAt: at } },
    ] as DomainEvent[];
  const started = performance.now();
  let sent = 0;
  const inFlight: Promise<void>[] = [];
  while (performance.now() - started < LIVE_SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    while (sent + 4 <= due) {
      sent += 4;
      const runId = randomUUID();
      const events = life(runId).map((e) => ({ ...e, id: randomUUID() }));
      inFlight.push(
        store.append([{ stream: `run-${runId}`, expected: 'no_stream', events }], { correlationId: `delivery-${runId}`, actor: { type: 'system', id: 'bench' } }).then(() => {
          const now = performance.now();
          for (const e of events) committedAt.set(e.id, now);
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inFlight);
  await new Promise((r) => setTimeout(r, 1000));
  controller.abort();
  await runner;
  await waker.close();
  await pool.end();
  say(`live: ${sent} events sent, ${lags.length} measured, ${committedAt.size} not seen by the runner`);
  return lags;
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

const { url, ownerUrl, checkpoint } = await benchDatabase('codexk8s_bench_projections');
say(`generating ${EVENTS} synthetic run events`);
await generate(url, EVENTS);
await checkpoint();
say('folding them into agent_runs through the rebuild path');
const fold = await foldRate(ownerUrl); // a rebuild creates and swaps tables: the owner's work
const foldPerSecond = fold.events / fold.seconds;
say(`fold: ${fold.events} events in ${round(fold.seconds, 1)} s = ${round(foldPerSecond)} events/s`);
await checkpoint();
say(`live lag at ${RATE} events/s for ${LIVE_SECONDS} s`);
const lags = await liveLag(url);
say(`live lag p50 ${round(percentile(lags, 50), 1)} ms, p99 ${round(percentile(lags, 99), 1)} ms`);
pgbenchInit(ownerUrl);
await checkpoint();
const reference = pgbenchTps(ownerUrl, 8, seconds);
console.log(
  JSON.stringify({
    bench: 'projections',
    fold_events: fold.events,
    fold_seconds: round(fold.seconds, 2),
    fold_events_per_s: round(foldPerSecond),
    live_rate_events_per_s: RATE,
    live_lag_p50_ms: round(percentile(lags, 50), 1),
    live_lag_p99_ms: round(percentile(lags, 99), 1),
    reference: `${pgbenchCommand(8)} tps`,
    reference_value: round(reference),
    ratio: round(foldPerSecond / reference, 2),
  }),
);
