import * as t from 'io-ts';
import { NonEmptyString } from './codec.js';
import type { EventsOf } from './decider.js';

/**
 * Uniqueness is a constraint, not a lookup: claiming a name appends to a reservation stream that
 * must not exist yet (`email-<hash>`, `github_user-<numeric id>`, `project_key-<key>`,
 * `repository-github.<numeric id>`; see streamOf.reservation). The reservation names its owner's
 * stream, which also makes it the way to find the owner by name without a read model.
 * (`github_login` reservations were made before senders were matched by id; none are made now.)
 */
export const NameReserved = t.type({
  kind: t.keyof({ email: null, github_login: null, github_user: null, project_key: null, repository: null }),
  owner: NonEmptyString,
});

export const reservationEventCodecs = { NameReserved };
export type ReservationEvent = EventsOf<typeof reservationEventCodecs>;

/** The claim on a name: the first event of its reservation stream, which must not exist yet. */
export const reserve = (kind: ReservationEvent['data']['kind'], owner: string): ReservationEvent[] => [{ type: 'NameReserved', data: { kind, owner } }];
