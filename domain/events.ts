import type * as t from 'io-ts';
import type { EventsOf } from './shared/decider.js';
import { authEventCodecs } from './auth/events.js';
import { learningEventCodecs } from './learning/events.js';
import { projectEventCodecs } from './projects/events.js';
import { runEventCodecs, subjectEventCodecs } from './runs/events.js';
import { reservationEventCodecs } from './shared/reservations.js';
import { slotEventCodecs } from './slots/events.js';
import { userEventCodecs } from './users/events.js';
import { webhookEventCodecs } from './webhooks/events.js';

/**
 * Every event type the platform records, with the codec of its payload. The event store refuses to
 * append or read anything not listed here: an unknown or malformed event is an error, never a skip.
 */
export const eventCodecs = {
  ...runEventCodecs,
  ...subjectEventCodecs,
  ...slotEventCodecs,
  ...userEventCodecs,
  ...projectEventCodecs,
  ...learningEventCodecs,
  ...reservationEventCodecs,
  ...webhookEventCodecs,
  ...authEventCodecs,
} as const;

export type EventCodecs = Record<string, t.Mixed>;
export type EventType = keyof typeof eventCodecs;

/** A domain event: its type and its validated payload. */
export type DomainEvent = EventsOf<typeof eventCodecs>;

/** Payload schema version per type; bump it with an upcaster when a payload changes shape. */
export const schemaVersions: Partial<Record<EventType, number>> = {};
export const schemaVersionOf = (type: string): number => (schemaVersions as Record<string, number | undefined>)[type] ?? 1;

/** Whether an event of this type is among those a projection or reactor handles. */
export const isOneOf = (types: readonly EventType[], type: string): boolean => (types as readonly string[]).includes(type);
