import { hostname } from 'node:os';
import type pg from 'pg';
import { sleep, whileLeased } from './lease.js';
import type { EventStore, RawEvent } from '../ports/event-store.js';
import type { Logger } from '../adapters/log.js';
import { idleWaits, type PollingBackoff, type Waker } from '../ports/waker.js';
import { ensureCheckpoint, readCheckpoint, advanceCheckpoint, skipCheckpoint, stopAt, setHolder, type Checkpoint } from './checkpoints.js';
import { foldBatch, isStatementTimeout, isTransient, type FoldOptions, type FoldResult } from './fold.js';

import type { ProjectedEvent, Projection } from './projection.js';
import { isOneOf } from '../domain/events.js';

/** How many times a batch may hit statement_timeout before a timeout is blamed on its events. */
const TIMEOUTS_BEFORE_BLAME = 3;
/** How often an idle runner looks whether a rebuild or a reset moved its checkpoint. */
const IDLE_CHECK_MS = 1000;

export interface RunnerOptions {
  pool: pg.Pool;
  store: Pick<EventStore, 'readAllRaw' | 'decode'>;
  waker: Waker;
  signal: AbortSignal;
  log: Logger;
  batchSize?: number;
  backoff?: PollingBackoff;
  /** How often a runner without the lease asks for it again. */
  leaseRetryMs?: number;
  /** Told after each committed batch (metrics, the live-lag benchmark). */
  onCommitted?: (batch: RawEvent[], result: FoldResult) => void;
}

export const holderName = () => `${hostname()}:${process.pid}`;

/**
 * Runs one projection live until `signal` aborts: waits for its lease (a session advisory lock held
 * on a connection of its own, outside the pool, so leases never starve requests and the lock goes
 * with the process when it dies, and another runner takes over), then folds the log batch by batch.
 * Each batch commits its rows and the checkpoint together, after checking under a row lock that the
 * checkpoint is still the one it read from, so no batch is ever applied twice even if two runners met.
 */
export async function runProjection(projection: Projection, options: RunnerOptions): Promise<void> {
  const { pool, signal, log } = options;
  await whileLeased(
    {
      pool, signal, key: `codexk8s.projection.${projection.name}`, applicationName: `codex-k8s-lease ${projection.name}`,
      retryMs: options.leaseRetryMs ?? 1000,
      onError: (error) => log.warn({ projection: projection.name, err: error }, 'projection runner interrupted; retrying'),
    },
    async (lease, lost) => {
      log.info({ projection: projection.name }, 'projection lease acquired');
      await ensureCheckpoint(pool, projection.name);
      await setHolder(pool, projection.name, holderName());
      try {
        await follow(projection, options, lost);
      } finally {
        await setHolder(pool, projection.name, null).catch(() => {});
      }
    },
  );
}

async function follow(projection: Projection, options: RunnerOptions, lost: () => Error | undefined): Promise<void> {
  const { pool, store, signal, log } = options;
  const waits = idleWaits(options.waker, options.backoff);
  const batchSize = options.batchSize ?? 1000;
  let checkpoint = (await readCheckpoint(pool, projection.name))!;
  let timeouts = { at: '', count: 0 };
  let checkedAt = Date.now();
  while (!signal.aborted) {
    if (lost()) throw lost();
    if (checkpoint.state === 'stopped') {
      // Waits for `projections reset` after a fix.
      await sleep(1000, signal);
      checkpoint = (await readCheckpoint(pool, projection.name))!;
      continue;
    }
    const batch = await store.readAllRaw(checkpoint.position, batchSize);
    if (batch.length === 0) {
      await waits.wait(signal);
      // A rebuild may have swapped the tables and moved the checkpoint meanwhile; the next batch
      // would find that out too, so an idle runner asks only now and then.
      if (Date.now() - checkedAt >= IDLE_CHECK_MS) {
        checkpoint = (await readCheckpoint(pool, projection.name))!;
        checkedAt = Date.now();
      }
      continue;
    }
    waits.found();
    let outcome: BatchOutcome;
    try {
      outcome = await commitBatch(projection, batch, checkpoint, options, { blameTimeouts: timeouts.count >= TIMEOUTS_BEFORE_BLAME });
      timeouts = { at: '', count: 0 };
    } catch (error) {
      if (!isStatementTimeout(error)) throw error;
      // The same batch timing out again and again is the batch's fault, not the load's: after a
      // few tries it is folded event by event, timeouts blamed on the event, like any failure.
      const at = checkpoint.position.toString();
      timeouts = { at, count: timeouts.at === at ? timeouts.count + 1 : 1 };
      log.warn({ projection: projection.name, attempts: timeouts.count }, 'projection batch hit statement_timeout');
      continue;
    }
    if (outcome.kind === 'moved') {
      checkpoint = outcome.checkpoint;
      continue;
    }
    if (outcome.result.stopped) {
      log.error({ projection: projection.name, event_id: outcome.result.stopped.event.id, error: outcome.result.stopped.error }, 'projection stopped');
    }
    for (const parked of outcome.result.parked) {
      log.warn({ projection: projection.name, event_id: parked.event.id, error: parked.error }, 'event parked as a dead letter');
    }
    options.onCommitted?.(batch, outcome.result);
    checkpoint = outcome.checkpoint;
  }
}

type BatchOutcome = { kind: 'moved'; checkpoint: Checkpoint } | { kind: 'committed'; checkpoint: Checkpoint; result: FoldResult };

async function commitBatch(projection: Projection, batch: RawEvent[], from: Checkpoint, options: RunnerOptions, fold: FoldOptions): Promise<BatchOutcome> {
  const { pool, store } = options;
  if (!batch.some((e) => isOneOf(projection.handles, e.type))) {
    const last = batch[batch.length - 1]!;
    const skipped = await skipCheckpoint(pool, from, last.position, last.createdAt);
    if (!skipped) return { kind: 'moved', checkpoint: (await readCheckpoint(pool, projection.name))! };
    return { kind: 'committed', checkpoint: skipped, result: { checkpoint: last.position, applied: 0, lastEventAt: last.createdAt, parked: [] } };
  }
  const tx = await pool.connect();
  let broken = false;
  try {
    await tx.query('BEGIN');
    const current = (await readCheckpoint(tx, projection.name, { lock: true }))!;
    if (current.generation !== from.generation || current.state !== from.state || current.position.compare(from.position) !== 0) {
      await tx.query('ROLLBACK');
      return { kind: 'moved', checkpoint: current };
    }
    const result = await foldBatch(projection, batch, tx, (t) => t, (raw) => store.decode(raw) as ProjectedEvent, fold);
    if (result.parked.length > 0) {
      await tx.query(
        `INSERT INTO projection_dead_letters (projection, event_id, epoch, tx_id, position, event_type, error)
         SELECT $1, p.event_id, p.epoch, p.tx_id::xid8, p.position, p.event_type, p.error
           FROM jsonb_to_recordset($2) AS p(event_id uuid, epoch int, tx_id text, position bigint, event_type text, error text)
         ON CONFLICT (projection, event_id) DO UPDATE SET error = EXCLUDED.error, parked_at = now()`,
        [projection.name, JSON.stringify(result.parked.map((p) => ({
          event_id: p.event.id, epoch: p.event.position.epoch, tx_id: p.event.position.txId.toString(),
          position: p.event.position.seq.toString(), event_type: p.event.type, error: p.error,
        })))],
      );
    }
    let next = result.checkpoint ? await advanceCheckpoint(tx, projection.name, result.checkpoint, result.applied, result.lastEventAt!) : undefined;
    if (result.stopped) {
      await stopAt(tx, projection.name, result.stopped.error, result.stopped.event.id);
      next = undefined;
    }
    next ??= (await readCheckpoint(tx, projection.name))!;
    await tx.query('COMMIT');
    return { kind: 'committed', checkpoint: next, result };
  } catch (error) {
    broken = isTransient(error);
    await tx.query('ROLLBACK').catch(() => (broken = true));
    throw error;
  } finally {
    tx.release(broken);
  }
}
