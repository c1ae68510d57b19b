/**
 * npm run bench:append — our append at 8 concurrent writers (1 event per transaction, then batches
 * of 100) beside `pgbench -N` with 8 clients on the same database, in the same run.
 */
import { randomUUID } from 'node:crypto';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { createPool } from '../adapters/postgres/pools.js';
import type { DomainEvent } from '../domain/events.js';
import { benchDatabase, median, pgbenchCommand, pgbenchInit, pgbenchTps, round, rounds, say, seconds } from './support.js';

const WRITERS = 8;

function event(runId: string): DomainEvent {
  return {
    type: 'RunFailed',
    data: { runId, reason: 'benchmark', finishedAt: '2026-11-27T10:00:00.000Z' },
  } as DomainEvent;
}

async function measure(url: string, batch: number): Promise<number> {
  const pool = createPool(url, WRITERS, 'codex-k8s-bench');
  // No NOTIFY: nobody listens here, and the reference does not pay for one either. No group commit:
  // each append is its own transaction, as each pgbench one is.
  const store = createEventStore(pool, { notify: false, groupCommit: false });
  const runId = randomUUID();
  const deadline = performance.now() + seconds * 1000;
  let events = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      const stream = `run-${randomUUID()}`;
      let version = 0;
      const payload = Array.from({ length: batch }, () => event(runId));
      while (performance.now() < deadline) {
        const result = await store.append([{ stream, expected: version, events: payload }], {
          correlationId: `bench-${w}`,
          actor: { type: 'system', id: 'bench' },
        });
        version = result.streams[0]!.version;
        events += batch;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await pool.end();
  return events / elapsed;
}

const { url, ownerUrl, checkpoint } = await benchDatabase('codexk8s_bench_append');
pgbenchInit(ownerUrl);
const reference: number[] = [];
const single: number[] = [];
const batched: number[] = [];
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
}
console.log(
  JSON.stringify({
    bench: 'append',
    writers: WRITERS,
    rounds,
    seconds_per_phase: seconds,
    events_per_s: round(median(single)),
    batch100_events_per_s: round(median(batched)),
    reference: `${pgbenchCommand(WRITERS)} tps`,
    reference_value: round(median(reference)),
    ratio: round(median(single) / median(reference), 2),
  }),
);
