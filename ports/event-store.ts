/**
 * The event store as commands and projections see it: what an append and a read are, and the
 * errors they raise. adapters/postgres implements it; nothing outside adapters imports that.
 */
import type pg from 'pg';
import type { DomainEvent } from '../domain/events.js';
import { GlobalPosition } from './position.js';

export { GlobalPosition };
export { foldStream } from '../domain/shared/decider.js';

export type ExpectedVersion = 'any' | 'no_stream' | number;
export type ActorType = 'human' | 'agent' | 'system';

export interface EventMeta {
  correlationId: string;
  actor: { type: ActorType; id: string };
  causationId?: string;
  requestId?: string;
}

/** An event to append; `id` may be given to make a retried append of the same fact recognisable. */
export type NewEvent<E> = E & { id?: string };

/** Events for one stream at an expected version; no events means the stream only guards the append. */
export interface StreamAppend<E = DomainEvent> {
  stream: string;
  expected: ExpectedVersion;
  events: NewEvent<E>[];
}

export interface AppendResult {
  /** The position of the last event written: a reader that has reached it has seen the whole append. */
  position: GlobalPosition;
  streams: { stream: string; version: number }[];
}

/** What the log adds to every event. */
export interface EventEnvelope {
  id: string;
  stream: string;
  streamPosition: number;
  position: GlobalPosition;
  schemaVersion: number;
  correlationId: string;
  actor: { type: ActorType; id: string };
  metadata: { causationId?: string; requestId?: string };
  createdAt: Date;
}

/** A stored event: a discriminated union over E's types, so narrowing on `type` narrows `data`. */
export type RecordedEvent<E extends { type: string; data: unknown } = { type: string; data: unknown }> = E extends unknown
  ? EventEnvelope & E
  : never;

export type RawEvent = EventEnvelope & { type: string; data: unknown };

/** The expected version did not match: nothing of the append was written. */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(`stream ${stream} is at version ${actual}, expected ${String(expected)}`);
  }
}

/** A stored event whose type is not known or whose payload does not match its codec. */
export class EventDecodeError extends Error {
  override readonly name = 'EventDecodeError';
  constructor(
    readonly event: Pick<RawEvent, 'id' | 'stream' | 'type' | 'position'>,
    readonly reason: string,
  ) {
    super(`event ${event.id} (${event.type} in ${event.stream} at ${event.position}): ${reason}`);
  }
}

/** Where a read runs: the store's pool, or a caller's transaction (projections fold inside theirs). */
export type Queryable = pg.Pool | pg.PoolClient;

export interface EventStore {
  /**
   * Appends to one or more streams atomically, each checked against its expected version (a stream
   * with no events only guards: its version is checked, nothing is written). A guard excludes
   * concurrent writers of its stream. On a mismatch nothing is written and a ConcurrencyError names
   * the stream.
   */
  append(appends: StreamAppend[], meta: EventMeta): Promise<AppendResult>;
  readStream(stream: string, options?: { after?: number; limit?: number }): Promise<RecordedEvent<DomainEvent>[]>;
  /** Several whole streams in one round trip, each in version order. */
  readStreams(streams: readonly string[]): Promise<Map<string, RecordedEvent<DomainEvent>[]>>;
  /** The events after `after` in commit order, never skipping one that commits later with a smaller id. */
  readAllRaw(after: GlobalPosition, limit: number, db?: Queryable): Promise<RawEvent[]>;
  /** Particular events by id, in log order (for example parked ones being retried). */
  readByIds(ids: readonly string[], db?: Queryable): Promise<RawEvent[]>;
  /** The position of the newest event a reader may see now. */
  headPosition(db?: Queryable): Promise<GlobalPosition>;
  /** A raw event's payload checked against its codec: an unknown or malformed one is an EventDecodeError. */
  decode(raw: RawEvent): RecordedEvent<DomainEvent>;
}
