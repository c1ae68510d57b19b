import type { EventMeta, RecordedEvent } from '../../ports/event-store.js';
import type { DomainEvent, EventType } from '../../domain/events.js';

/**
 * A reactor: it reacts to events of the log by acting on the outside world and recording what
 * happened as new events, through the command handlers. It is at-least-once: a crash between the
 * reaction and its checkpoint replays the event, so every reaction must be idempotent (names
 * derived from ids, "already exists" taken as done, commands that are no-ops when repeated).
 */
export interface Reactor {
  name: string;
  handles: readonly EventType[];
  /**
   * How many of a batch's events it may react to at once (1: one by one, in log order). Only for a
   * reactor whose reactions are independent of each other's order (each run's launch is its own).
   */
  concurrency?: number;
  react(event: RecordedEvent<DomainEvent>, ctx: ReactionContext): Promise<void>;
  /**
   * Called each time this process takes the lease, before it follows the log from the checkpoint:
   * what the reactor kept in memory may be stale, since another process may have reacted meanwhile.
   */
  leased?(): void;
  /** Called when this process no longer holds the lease (lost, or stopping): another may react now. */
  unleased?(): void;
  /**
   * Events of these types that come one after another in a batch are reacted to at once, in log
   * order (the scheduler reads and commits a burst of requests together). When that throws, the
   * runner reacts to them one by one with `react`, with its retries and dead letters, so it must be
   * as idempotent as `react`.
   */
  together?: {
    handles: readonly EventType[];
    react(events: RecordedEvent<DomainEvent>[], ctx: { signal: AbortSignal; metaOf(event: RecordedEvent<DomainEvent>): EventMeta }): Promise<void>;
  };
}

export interface ReactionContext {
  /** The meta for what the reaction records: caused by the event, in its correlation. */
  meta: EventMeta;
  signal: AbortSignal;
}

export const reactor = (definition: Reactor): Reactor => definition;
