import { createHmac, randomUUID } from 'node:crypto';
import type { EventMeta, EventStore, AppendResult } from '../adapters/postgres/event-store.js';
import { ConcurrencyError } from '../adapters/postgres/event-store.js';
import type { DomainEvent } from '../domain/events.js';
import { decideProject, DomainError, evolveProject, initialProject } from '../domain/projects/project.js';
import type { ProjectRole } from '../domain/projects/events.js';
import { reservationStream, type ReservationKind } from '../domain/shared/reservations.js';
import { ownerOf } from './reservations.js';
import { decideUser, initialUser } from '../domain/users/user.js';
import type { PlatformRole } from '../domain/users/events.js';

/**
 * The setup commands: the same handlers serve the operator CLI now and the staff API later. Each
 * loads a stream, decides, and appends with the expected version; names are claimed through
 * reservation streams in the same append, so a duplicate is a conflict and nothing is written.
 */
export interface SetupDeps {
  store: EventStore;
  /** Keyed hash of a normalised e-mail: what the allow-list stores instead of the address. */
  emailHashKey: Buffer;
  now: () => string;
}

const emailPattern = /^[^\s@]{1,64}@[^\s@]{1,255}$/;

export function hashEmail(key: Buffer, email: string): string {
  return createHmac('sha256', key).update(email.trim().toLowerCase()).digest('hex');
}

const reserved = (kind: ReservationKind, name: string, owner: string) => ({
  stream: reservationStream(kind, name),
  expected: 'no_stream' as const,
  events: [{ type: 'NameReserved', data: { kind, owner } } as DomainEvent],
});

/** Turns a lost reservation race into the conflict the caller can act on. */
async function claiming<T>(work: () => Promise<T>, conflict: (stream: string) => string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ConcurrencyError) throw new DomainError('conflict', conflict(error.stream));
    throw error;
  }
}

export function setupCommands(deps: SetupDeps) {
  const { store } = deps;

  async function projectIdOf(key: string): Promise<string> {
    const owner = await ownerOf(store, 'project_key', key);
    if (!owner) throw new DomainError('not_found', `project ${key} not found`);
    return owner.replace(/^project-/, '');
  }

  return {
    async allowUser(input: { email: string; githubLogin: string | null; platformRole: PlatformRole }, meta: EventMeta): Promise<AppendResult & { userId: string }> {
      if (!emailPattern.test(input.email)) throw new DomainError('invalid_argument', 'not an e-mail address');
      const userId = randomUUID();
      const emailHash = hashEmail(deps.emailHashKey, input.email);
      const events = decideUser({ type: 'AllowUser', userId, emailHash, githubLogin: input.githubLogin, platformRole: input.platformRole, now: deps.now() }, initialUser);
      const appends = [
        { stream: `user-${userId}`, expected: 'no_stream' as const, events },
        reserved('email', emailHash, `user-${userId}`),
        ...(input.githubLogin ? [reserved('github_login', input.githubLogin, `user-${userId}`)] : []),
      ];
      const result = await claiming(() => store.append(appends, meta), (stream) =>
        stream.startsWith('email-') ? 'a user with that e-mail is allowed already' : 'a user with that GitHub login is allowed already',
      );
      return { ...result, userId };
    },

    async createProject(input: { key: string; name: string }, meta: EventMeta): Promise<AppendResult & { projectId: string }> {
      const projectId = randomUUID();
      const events = decideProject({ type: 'CreateProject', projectId, key: input.key, name: input.name, now: deps.now() }, initialProject);
      const result = await claiming(
        () => store.append([{ stream: `project-${projectId}`, expected: 'no_stream', events }, reserved('project_key', input.key, `project-${projectId}`)], meta),
        () => `project ${input.key} exists already`,
      );
      return { ...result, projectId };
    },

    async addMember(input: { projectKey: string; email: string; role: ProjectRole }, meta: EventMeta): Promise<AppendResult | { position: undefined; streams: [] }> {
      if (!emailPattern.test(input.email)) throw new DomainError('invalid_argument', 'not an e-mail address');
      const projectId = await projectIdOf(input.projectKey);
      const owner = await ownerOf(store, 'email', hashEmail(deps.emailHashKey, input.email));
      if (!owner) throw new DomainError('failed_precondition', 'that e-mail is not allowed on the platform yet: run `users allow` first');
      const stream = `project-${projectId}`;
      const { state, version } = await store.aggregate(stream, evolveProject, initialProject);
      const events = decideProject({ type: 'AddMember', userId: owner.replace(/^user-/, ''), role: input.role, now: deps.now() }, state);
      if (events.length === 0) return { position: undefined, streams: [] };
      return claiming(() => store.append([{ stream, expected: version, events }], meta), () => 'the project changed meanwhile; try again');
    },

    async connectRepository(
      input: { projectKey: string; owner: string; name: string; token: string | null },
      encrypt: (token: string, repositoryId: string) => string,
      meta: EventMeta,
    ): Promise<AppendResult & { repositoryId: string }> {
      if (!/^[A-Za-z0-9_.-]{1,100}$/.test(input.owner) || !/^[A-Za-z0-9_.-]{1,100}$/.test(input.name)) {
        throw new DomainError('invalid_argument', 'a repository is <owner>/<name> with letters, digits, ".", "-" and "_"');
      }
      const projectId = await projectIdOf(input.projectKey);
      const repositoryId = randomUUID();
      const stream = `project-${projectId}`;
      const { state, version } = await store.aggregate(stream, evolveProject, initialProject);
      const tokenCiphertext = input.token ? encrypt(input.token, repositoryId) : null;
      const events = decideProject({ type: 'ConnectRepository', repositoryId, owner: input.owner, name: input.name, tokenCiphertext, now: deps.now() }, state);
      const fullName = `github/${input.owner}/${input.name}`;
      const result = await claiming(
        () => store.append([{ stream, expected: version, events }, reserved('repository', fullName, `project-${projectId}`)], meta),
        (s) => (s.startsWith('repository-') ? `${input.owner}/${input.name} is connected to a project already` : 'the project changed meanwhile; try again'),
      );
      return { ...result, repositoryId };
    },
  };
}
