import * as t from 'io-ts';
import { IsoTime, NonEmptyString, Uuid } from '../shared/codec.js';
import type { EventsOf } from '../shared/decider.js';

/**
 * People the platform lets in. No e-mail is ever stored in an event: the allow-list keeps a keyed
 * hash of the normalised address, which is what a first OAuth login is matched against.
 */
export const PlatformRole = t.union([t.literal('owner'), t.literal('admin'), t.null]);
export type PlatformRole = t.TypeOf<typeof PlatformRole>;

export const EmailHash = t.refinement(t.string, (s) => /^[0-9a-f]{64}$/.test(s), 'EmailHash');

export const UserAllowed = t.intersection([
  t.type({
    userId: Uuid,
    emailHash: EmailHash,
    githubLogin: t.union([NonEmptyString, t.null]), // for display: senders are matched by githubUserId
    platformRole: PlatformRole,
    allowedAt: IsoTime,
  }),
  // GitHub's numeric user id (absent only in events recorded before it was kept).
  t.partial({ githubUserId: t.union([t.number, t.null]) }),
]);
export const UserPlatformRoleChanged = t.type({ userId: Uuid, platformRole: PlatformRole });
/** null clears the override: the project's setting, then the platform default, decide. */
export const UserLearningModeSet = t.type({ userId: Uuid, learningMode: t.union([t.boolean, t.null]) });

/** Taken off the allow-list: their tokens stop working at the next request. Allowing the e-mail again brings the same user back. */
export const UserRemoved = t.type({ userId: Uuid, removedAt: IsoTime });
/** Their first GitHub login, by GitHub's numeric id (what webhook senders are matched by) and the login for display. */
export const UserGithubLinked = t.type({ userId: Uuid, githubUserId: t.number, githubLogin: NonEmptyString });

export const userEventCodecs = { UserAllowed, UserPlatformRoleChanged, UserLearningModeSet, UserRemoved, UserGithubLinked };
export type UserEvent = EventsOf<typeof userEventCodecs>;
