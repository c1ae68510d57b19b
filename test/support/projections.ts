import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type pg from 'pg';
import type { DomainEvent } from '../../domain/events.js';
import type { EventStore } from '../../adapters/postgres/event-store.js';
import { createLogger } from '../../adapters/log.js';
import { readCheckpoint } from '../../projections/checkpoints.js';
import { GlobalPosition } from '../../ports/position.js';

/** A logger that keeps quiet (tests assert on state, not on log lines). */
export const quietLog = createLogger({ destination: new Writable({ write: (_c, _e, done) => done() }) });

const at = '2026-11-27T10:00:00.000Z';

/** The whole life of one run, in its own stream: requested, scheduled, then failed. */
export function runLife(runId: string, projectId: string, number = 1): DomainEvent[] {
  return [
    { type: 'RunRequested', data: { runId, projectId, agent: 'dev', repository: 'github/octo/hello', subject: { kind: 'issue', number }, learningMode: false, requestedAt: at } },
    { type: 'RunScheduled', data: { runId, slot: 1, leaseExpiresAt: at, scheduledAt: at } },
    { type: 'RunFailed', data: { runId, reason: 'timeout', finishedAt: at } },
  ] as DomainEvent[];
}

/**
 * Appends `runs` complete runs for a project, `concurrency` appends at a time; each run is its own
 * append, since a run's correlation id (its delivery) is unique. Returns the run ids in order.
 */
export async function appendRuns(store: EventStore, projectId: string, runs: number, concurrency = 8): Promise<string[]> {
  const ids = Array.from({ length: runs }, () => randomUUID());
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, runs) }, async () => {
      while (next < ids.length) {
        const i = next++;
        const runId = ids[i]!;
        await store.append([{ stream: `run-${runId}`, expected: 'no_stream', events: runLife(runId, projectId, i) }], {
          correlationId: `delivery-${runId}`,
          actor: { type: 'system', id: 'test' },
        });
      }
    }),
  );
  return ids;
}

/**
 * The newest committed event, whether or not readers may take it yet: the read horizon is
 * cluster-wide, so another database's transaction can hold headPosition() behind our own writes.
 */
async function committedHead(db: pg.Pool): Promise<GlobalPosition> {
  const { rows } = await db.query<{ epoch: number; tx_id: string; position: string }>(
    // Qualified in ORDER BY: the text aliases would sort '9999' after '10155'.
    'SELECT f.epoch, f.tx_id::text AS tx_id, f.position::text AS position FROM flow_events f ORDER BY f.epoch DESC, f.tx_id DESC, f.position DESC LIMIT 1',
  );
  const r = rows[0];
  return r ? new GlobalPosition(r.epoch, BigInt(r.tx_id), BigInt(r.position)) : GlobalPosition.start;
}

/**
 * Waits until readers may take every event committed so far. A rebuild folds up to the read horizon,
 * which another test file's transaction (any database of the cluster) can hold back: a rebuild whose
 * result is compared must wait for this first (a rebuild missed the last runs on CI once).
 */
export async function allReadable(db: pg.Pool, store: Pick<EventStore, 'headPosition'>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const head = await committedHead(db);
  while (!(await store.headPosition()).isAtOrAfter(head)) {
    if (Date.now() > deadline) throw new Error(`the log is not readable up to ${head}: a transaction holds the horizon`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until a projection's checkpoint on `db` has passed every event committed so far. */
export async function caughtUp(db: pg.Pool, _store: EventStore, name: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const head = await committedHead(db);
  for (;;) {
    const checkpoint = await readCheckpoint(db, name);
    if (checkpoint && checkpoint.position.isAtOrAfter(head)) return;
    if (Date.now() > deadline) throw new Error(`${name} did not catch up: at ${checkpoint?.position} of ${head}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A content hash of a table, independent of physical order. */
export async function contentHash(db: pg.Pool, table: string, orderBy: string): Promise<string> {
  const { rows } = await db.query<{ h: string }>(`SELECT md5(string_agg(t::text, '|' ORDER BY ${orderBy})) AS h FROM ${table} t`);
  return rows[0]!.h ?? 'empty';
}
