import * as t from 'io-ts';
import { NonEmptyString } from './codec.js';

/**
 * Uniqueness is a constraint, not a lookup: claiming a name appends to a reservation stream that
 * must not exist yet (`email-<hash>`, `github_login-<login>`, `project_key-<key>`,
 * `repository-<provider/owner/name>`). The reservation names its owner's stream, which also makes it
 * the way to find the owner by name without a read model.
 */
export const NameReserved = t.type({
  kind: t.keyof({ email: null, github_login: null, project_key: null, repository: null }),
  owner: NonEmptyString,
});

export const reservationEventCodecs = { NameReserved };

export type ReservationKind = t.TypeOf<typeof NameReserved>['kind'];

/** The reservation stream of a name; names are compared case-insensitively. */
export const reservationStream = (kind: ReservationKind, name: string) => `${kind}-${name.toLowerCase()}`;
