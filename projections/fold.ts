import type pg from 'pg';
import type { RawEvent } from '../ports/event-store.js';
import type { GlobalPosition } from '../ports/position.js';
import { isConnectionFailure, pgCode, sqlState } from '../ports/sql-errors.js';
import type { ApplyContext, ProjectedEvent, Projection } from './projection.js';
import { isOneOf } from '../domain/events.js';

export interface ParkedEvent {
  event: Pick<RawEvent, 'id' | 'position' | 'type'>;
  error: string;
}

export interface FoldResult {
  /**
   * Where the checkpoint goes: the last event of the batch, or the one before a stopping failure
   * (undefined: the very first event failed, the checkpoint stays).
   */
  checkpoint: GlobalPosition | undefined;
  applied: number;
  lastEventAt: Date | undefined;
  parked: ParkedEvent[];
  stopped?: ParkedEvent;
}

/**
 * Errors of the connection or the transaction, not of the event: the batch is retried as a whole
 * and no event is blamed (connection failures, 40 rollback, 53 resources, 57 operator intervention).
 */
export function isTransient(error: unknown): boolean {
  const code = sqlState(error);
  return isConnectionFailure(error) || (code !== undefined && /^(40|53|57)/.test(code));
}

/** A statement that ran out of time (statement_timeout): the load's fault, or the batch's once it keeps happening. */
export const isStatementTimeout = (error: unknown): boolean => sqlState(error) === pgCode.queryCanceled;

export interface FoldOptions {
  /**
   * The batch has timed out again and again: take a timeout as an event's fault, not the load's,
   * and go event by event at once, so the culprit is found (parked, or it stops the projection).
   */
  blameTimeouts?: boolean;
}

const describe = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 2000);

/**
 * Folds one batch of the log into a projection inside `tx`: all handled events at once, set-based;
 * if that fails, one by one under savepoints to find the events that cannot be applied, which are
 * parked (dead-letter) or stop the fold (stop). Events of other types only move the checkpoint.
 */
export async function foldBatch(
  projection: Projection,
  batch: RawEvent[],
  tx: pg.PoolClient,
  table: ApplyContext['table'],
  decode: (raw: RawEvent) => ProjectedEvent,
  options: FoldOptions = {},
): Promise<FoldResult> {
  const transient = (error: unknown) => isTransient(error) && !(options.blameTimeouts && isStatementTimeout(error));
  const last = batch[batch.length - 1]!;
  const result: FoldResult = { checkpoint: last.position, applied: 0, lastEventAt: last.createdAt, parked: [] };
  const handled = batch.filter((e) => isOneOf(projection.handles, e.type));
  if (handled.length === 0) return result;
  const ctx: ApplyContext = { tx, table };

  const decoded: (ProjectedEvent | Error)[] = handled.map((raw) => {
    try {
      return decode(raw);
    } catch (error) {
      return error as Error;
    }
  });
  if (!options.blameTimeouts && decoded.every((d) => !(d instanceof Error))) {
    await tx.query('SAVEPOINT fold_batch');
    try {
      await projection.apply(decoded as ProjectedEvent[], ctx);
      await tx.query('RELEASE SAVEPOINT fold_batch');
      result.applied = handled.length;
      return result;
    } catch (error) {
      if (isTransient(error)) throw error;
      await tx.query('ROLLBACK TO SAVEPOINT fold_batch');
    }
  }

  // Find the culprits one event at a time.
  const index = new Map(batch.map((e, i) => [e.id, i]));
  for (let i = 0; i < handled.length; i++) {
    const raw = handled[i]!;
    const event = decoded[i]!;
    let failure: unknown = event instanceof Error ? event : undefined;
    if (!failure) {
      await tx.query('SAVEPOINT fold_event');
      try {
        await projection.apply([event as ProjectedEvent], ctx);
        await tx.query('RELEASE SAVEPOINT fold_event');
        result.applied++;
        continue;
      } catch (error) {
        if (transient(error)) throw error;
        await tx.query('ROLLBACK TO SAVEPOINT fold_event');
        failure = error;
      }
    }
    const parked: ParkedEvent = { event: { id: raw.id, position: raw.position, type: raw.type }, error: describe(failure) };
    if (projection.onFailure === 'dead-letter') {
      result.parked.push(parked);
      continue;
    }
    // stop: keep everything before this event, and the checkpoint right before it.
    const before = batch[index.get(raw.id)! - 1];
    result.stopped = parked;
    result.checkpoint = before?.position;
    result.lastEventAt = before?.createdAt;
    return result;
  }
  return result;
}
