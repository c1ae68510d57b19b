import type pg from 'pg';
import type { DomainEvent, EventType } from '../domain/events.js';
import type { RecordedEvent } from '../ports/event-store.js';

export type ProjectedEvent = RecordedEvent<DomainEvent>;

export interface ApplyContext {
  /** The runner's transaction: read-model rows and the checkpoint commit together. */
  tx: pg.PoolClient;
  /** The physical name of one of the projection's tables: the live one, or its shadow during a rebuild. */
  table(logical: string): string;
}

/**
 * A read model: the tables it owns and its fold. The runner owns checkpoints, leases, batching,
 * failures and rebuilds; a projection owns only its tables and how events change them.
 */
export interface Projection {
  name: string;
  tables: readonly string[];
  handles: readonly EventType[];
  /**
   * What an event that cannot be applied does: `stop` the projection (authorisation models: an
   * event is never skipped) or park it as a `dead-letter` and go on.
   */
  onFailure: 'stop' | 'dead-letter';
  /** Applies a batch in commit order; set-based where volume matters. Throwing fails the batch. */
  apply(events: ProjectedEvent[], ctx: ApplyContext): Promise<void>;
}

export function projection(definition: Projection): Projection {
  return definition;
}

/** Quotes an identifier made by the runner (table names are never user input, but stay careful). */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;
