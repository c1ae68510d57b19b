/**
 * npm run bench:append — our append at 8 concurrent writers (1 event per transaction, then batches
 * of 100) beside `pgbench -N` with 8 clients on the same database, in the same run; concurrent
 * single-event appends with group commit as shipped, at 8 and at 64 callers; and the batches of
 * 100 beside the same rows inserted by a plain multi-row INSERT, without the append function.
 */
import { randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { createPool } from '../adapters/postgres/pools.js';
import type { DomainEvent } from '../domain/events.js';
import { benchDatabase, median, pgbenchCommand, pgbenchInit, pgbenchTps, round, rounds, say, seconds } from './support.js';

const WRITERS = 8;

const event = (runId: string): DomainEvent => ({ type: 'RunFailed', data: { runId, reason: 'benchmark', finishedAt: '2026-11-27T10:00:00.000Z' } });

/**
 * Events per second while `callers` run concurrently for the phase's seconds; `caller(i)` gives the
 * i-th caller's step, which writes and says how many events it wrote.
 */
async function rate(callers: number, caller: (i: number) => () => Promise<number>): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let events = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, i) => {
      const step = caller(i);
      while (performance.now() < deadline) {
        const written = await step(); // not `events += await step()`: that reads `events` before the await
        events += written;
      }
    }),
  );
  return events / ((performance.now() - started) / 1000);
}

/** Appends of `batch` events to a caller's own stream at its expected version, through `store`. */
const appending = (store: ReturnType<typeof createEventStore>, batch: number) => (i: number) => {
  const stream = `run-${randomUUID()}`;
  const events = Array.from({ length: batch }, () => event(randomUUID()));
  let version = 0;
  return async () => {
    const result = await store.append([{ stream, expected: version, events }], { correlationId: `bench-${i}`, actor: { type: 'system', id: 'bench' } });
    version = result.streams[0]!.version;
    return batch;
  };
};

async function measure(url: string, batch: number): Promise<number> {
  const pool = createPool(url, WRITERS, 'codex-k8s-bench');
  // No NOTIFY: nobody listens here, and the reference does not pay for one either. No group commit:
  // each append is its own transaction, as each pgbench one is.
  const store = createEventStore(pool, { notify: false, groupCommit: false });
  try {
    return await rate(WRITERS, appending(store, batch));
  } finally {
    await pool.end();
  }
}

/** Single-event appends from `callers` concurrent callers, with group commit as `serve` ships it. */
async function measureGrouped(url: string, callers: number): Promise<number> {
  const pool = createPool(url, 10, 'codex-k8s-bench'); // serve's default pool size
  const store = createEventStore(pool, { notify: false });
  try {
    return await rate(callers, appending(store, 1));
  } finally {
    await pool.end();
  }
}

/** The reference for batches: the same rows by a plain multi-row INSERT (no versions checked, no locks). */
async function measurePlainInsert(url: string, batch: number): Promise<number> {
  const pool = createPool(url, WRITERS, 'codex-k8s-bench');
  try {
    return await rate(WRITERS, (i) => {
      const stream = `run-${randomUUID()}`;
      // Each row its own payload, as the append sends them (one per event).
      const payloads = Array.from({ length: batch }, () => JSON.stringify(event(randomUUID()).data));
      let version = 0;
      return async () => {
        const positions = Array.from({ length: batch }, (_, n) => version + n + 1);
        await pool.query({
          name: 'bench_plain_insert',
          text: `INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id, event_type, payload, metadata)
                 SELECT u.id, $2, u.position, $3, 'system', 'bench', 'RunFailed', u.payload, '{}'::jsonb
                   FROM unnest($1::uuid[], $5::bigint[], $4::jsonb[]) AS u(id, position, payload)`,
          values: [positions.map(() => uuidv7()), stream, `bench-${i}`, payloads, positions],
        });
        version += batch;
        return batch;
      };
    });
  } finally {
    await pool.end();
  }
}

const { url, ownerUrl, checkpoint } = await benchDatabase('codexk8s_bench_append');
pgbenchInit(ownerUrl);
const reference: number[] = [];
const single: number[] = [];
const batched: number[] = [];
const plain: number[] = [];
const grouped8: number[] = [];
const grouped64: number[] = [];
for (let round_ = 1; round_ <= rounds; round_++) {
  await checkpoint();
  reference.push(pgbenchTps(ownerUrl, WRITERS));
  say(`round ${round_}: pgbench -N ${round(reference.at(-1)!)} tps`);
  await checkpoint();
  single.push(await measure(url, 1));
  say(`round ${round_}: append, 1 event per transaction, ${WRITERS} writers: ${round(single.at(-1)!)} events/s`);
  await checkpoint();
  batched.push(await measure(url, 100));
  say(`round ${round_}: append, batches of 100, ${WRITERS} writers: ${round(batched.at(-1)!)} events/s`);
  await checkpoint();
  plain.push(await measurePlainInsert(url, 100));
  say(`round ${round_}: plain multi-row INSERT, batches of 100, ${WRITERS} writers: ${round(plain.at(-1)!)} events/s`);
  await checkpoint();
  grouped8.push(await measureGrouped(url, 8));
  say(`round ${round_}: append with group commit, 8 callers: ${round(grouped8.at(-1)!)} events/s`);
  await checkpoint();
  grouped64.push(await measureGrouped(url, 64));
  say(`round ${round_}: append with group commit, 64 callers: ${round(grouped64.at(-1)!)} events/s`);
}
console.log(
  JSON.stringify({
    bench: 'append',
    writers: WRITERS,
    rounds,
    seconds_per_phase: seconds,
    events_per_s: round(median(single)),
    batch100_events_per_s: round(median(batched)),
    plain_insert_batch100_events_per_s: round(median(plain)),
    batch100_ratio_to_plain_insert: round(median(batched) / median(plain), 2),
    grouped_events_per_s_8: round(median(grouped8)),
    grouped_events_per_s_64: round(median(grouped64)),
    grouped_ratio_8: round(median(grouped8) / median(reference), 2),
    grouped_ratio_64: round(median(grouped64) / median(reference), 2),
    reference: `${pgbenchCommand(WRITERS)} tps`,
    reference_value: round(median(reference)),
    ratio: round(median(single) / median(reference), 2),
  }),
);
