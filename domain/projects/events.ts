import * as t from 'io-ts';
import { IsoTime, NonEmptyString, Uuid } from '../shared/codec.js';
import type { EventsOf } from '../shared/decider.js';
import { RepositoryProviderKind } from '../repositories/provider.js';

export const ProjectRole = t.keyof({ read: null, read_write: null, admin: null });
export type ProjectRole = t.TypeOf<typeof ProjectRole>;

export const ProjectCreated = t.type({
  projectId: Uuid,
  key: NonEmptyString,
  name: NonEmptyString,
  createdAt: IsoTime,
});
export const ProjectRenamed = t.type({ projectId: Uuid, name: NonEmptyString });
export const ProjectLearningModeSet = t.type({ projectId: Uuid, learningMode: t.union([t.boolean, t.null]) });
export const ProjectDeleted = t.type({ projectId: Uuid, deletedAt: IsoTime });
/** The project's own number of run slots; null: the platform's (CODEXK8S_SLOTS_PER_PROJECT). */
export const ProjectSlotsSet = t.type({ projectId: Uuid, slots: t.union([t.number, t.null]) });

export const MemberAdded = t.intersection([
  t.type({
    projectId: Uuid,
    userId: Uuid,
    role: ProjectRole,
    addedAt: IsoTime,
  }),
  // The user's allowance the membership was granted under (absent in events recorded before it was kept: the first).
  t.partial({ allowance: t.number }),
]);
export const MemberRoleChanged = t.type({ projectId: Uuid, userId: Uuid, role: ProjectRole });
/** The member's own learning-mode override in this project; null clears it. */
export const MemberLearningModeSet = t.type({ projectId: Uuid, userId: Uuid, learningMode: t.union([t.boolean, t.null]) });
export const MemberRemoved = t.type({ projectId: Uuid, userId: Uuid });

/**
 * A repository token is only ever recorded encrypted (AES-256-GCM, key id inside the ciphertext,
 * the repository id as associated data): the log and the read model never hold it in plaintext.
 */
export const RepositoryConnected = t.intersection([
  t.type({
    repositoryId: Uuid,
    projectId: Uuid,
    provider: RepositoryProviderKind,
    owner: NonEmptyString, // for display: matched by githubRepositoryId
    name: NonEmptyString,
    tokenCiphertext: t.union([NonEmptyString, t.null]),
    connectedAt: IsoTime,
  }),
  // GitHub's numeric id, what deliveries are matched by (absent only in events recorded before it was kept);
  // where the repository describes its services (absent: services.yaml).
  t.partial({ githubRepositoryId: t.number, servicesYamlPath: NonEmptyString }),
]);
/** GitHub reported a new owner or name for a connected repository; its numeric id is unchanged. */
export const RepositoryRenamed = t.type({ repositoryId: Uuid, projectId: Uuid, owner: NonEmptyString, name: NonEmptyString });
export const RepositoryDisconnected = t.type({ repositoryId: Uuid, projectId: Uuid });
/** The same token sealed again under the current key (`keys rotate`), so an old key can be retired. */
export const RepositoryTokenReencrypted = t.type({ repositoryId: Uuid, projectId: Uuid, tokenCiphertext: NonEmptyString });

/** Which key sealed a token ciphertext (`<key id>.<sealed>`): comparable without decrypting anything. */
export const tokenKeyId = (tokenCiphertext: string): string => tokenCiphertext.split('.')[0]!;

export const projectEventCodecs = {
  ProjectCreated,
  ProjectRenamed,
  ProjectLearningModeSet,
  ProjectDeleted,
  ProjectSlotsSet,
  MemberAdded,
  MemberRoleChanged,
  MemberLearningModeSet,
  MemberRemoved,
  RepositoryConnected,
  RepositoryRenamed,
  RepositoryDisconnected,
  RepositoryTokenReencrypted,
};
export type ProjectEvent = EventsOf<typeof projectEventCodecs>;
