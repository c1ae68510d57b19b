import type { RepositoryProviderKind } from '../repositories/provider.js';

/**
 * Stream names, one helper per kind, so no command builds one by hand. A stream is `category-id`.
 * GitHub things are named by GitHub's numeric ids: names change and get reused.
 */
export type ReservationKind = 'email' | 'github_user' | 'project_key' | 'repository';

/** An issue or pull request of a repository, by the repository's numeric id. */
export interface SubjectRef {
  provider: 'github';
  repositoryId: number;
  kind: 'issue' | 'pull_request';
  number: number;
}

export const streamOf = {
  delivery: (guid: string) => `delivery-${guid}`,
  run: (runId: string) => `run-${runId}`,
  project: (projectId: string) => `project-${projectId}`,
  user: (userId: string) => `user-${userId}`,
  /** One of a project's run slots (1…N): a lease with an expiry. */
  slot: (projectId: string, n: number) => `slot-${projectId}-${n}`,
  /** The runs an issue or pull request started: written with RunRequested, read and guarded by a cancel. */
  subject: (s: SubjectRef) => `subject-${s.provider}.${s.repositoryId}.${s.kind}.${s.number}`,
  /** A GitHub login's state, by the id inside it: created when the state is used, so it is used once. */
  oauthState: (id: string) => `oauth_state-${id}`,
  /** A claim on a unique name (compared case-insensitively): the stream must not exist yet. */
  reservation: (kind: ReservationKind, name: string) => `${kind}-${name.toLowerCase()}`,
};

/** A repository's reservation name: the provider and its numeric id. */
export const repositoryKey = (provider: RepositoryProviderKind, repositoryId: number) => `${provider}.${repositoryId}`;

/** The id part of a stream of the given category (`project-<id>` → `<id>`). */
export function idIn(category: 'project' | 'user' | 'run', stream: string): string {
  const prefix = `${category}-`;
  if (!stream.startsWith(prefix)) throw new RangeError(`${stream} is not a ${category} stream`);
  return stream.slice(prefix.length);
}
