import { createHmac, randomUUID } from 'node:crypto';
import { ConcurrencyError, type AppendResult, type EventMeta, type EventStore } from '../ports/event-store.js';
import type { GithubDirectory } from '../ports/github.js';
import { DomainError } from '../domain/shared/errors.js';
import { decideProject, projectDecider } from '../domain/projects/project.js';
import type { ProjectRole } from '../domain/projects/events.js';
import { reserve } from '../domain/shared/reservations.js';
import { idIn, repositoryKey, streamOf, type ReservationKind } from '../domain/shared/streams.js';
import { decideUser, initialUser } from '../domain/users/user.js';
import type { PlatformRole } from '../domain/users/events.js';
import { handleCommand, type Write } from './handle-command.js';
import { ownerOf } from './reservations.js';

/**
 * The setup commands: the same handlers serve the operator CLI now and the staff API later. Names
 * are claimed through reservation streams in the same append as the fact, so a duplicate is a
 * conflict and nothing is written. GitHub things are looked up by name once, here, and kept by
 * their numeric ids.
 */
export interface SetupDeps {
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  github: GithubDirectory;
  /** Keyed hash of a normalised e-mail: what the allow-list stores instead of the address. */
  emailHashKey: Buffer;
  now: () => string;
}

const emailPattern = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
const githubName = /^[A-Za-z0-9_.-]{1,100}$/;

export function hashEmail(key: Buffer, email: string): string {
  return createHmac('sha256', key).update(email.trim().toLowerCase()).digest('hex');
}

const reserved = (kind: ReservationKind, name: string, owner: string): Write => ({
  stream: streamOf.reservation(kind, name),
  expected: 'no_stream',
  events: reserve(kind, owner),
});

/** What a lost claim on each kind of name means to the person who asked. */
const claimConflicts: Record<string, string> = {
  email: 'a user with that e-mail is allowed already',
  github_user: 'a user with that GitHub account is allowed already',
  project_key: 'a project with that key exists already',
  repository: 'that repository is connected to a project already',
};

/** Turns a lost claim into the conflict the caller can act on, named by the stream that was taken. */
async function claiming<T>(work: () => Promise<T>, messages: Partial<Record<ReservationKind, string>> = {}): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof ConcurrencyError)) throw error;
    const kind = error.stream.slice(0, error.stream.indexOf('-')) as ReservationKind;
    throw new DomainError('conflict', messages[kind] ?? claimConflicts[kind] ?? 'it changed meanwhile; try again');
  }
}

export function setupCommands(deps: SetupDeps) {
  const { store } = deps;

  async function projectIdOf(key: string): Promise<string> {
    const owner = await ownerOf(store, 'project_key', key);
    if (!owner) throw new DomainError('not_found', `project ${key} not found`);
    return idIn('project', owner);
  }

  /** A command on one project's stream, decided on its current state. */
  const onProject = <R>(projectId: string, meta: EventMeta, decide: (state: Parameters<typeof decideProject>[1]) => { writes: Write[]; result: R }, messages = {}) =>
    claiming(
      () =>
        handleCommand(deps, meta, async (load) => {
          const [project] = await load([{ stream: streamOf.project(projectId), fold: projectDecider }]);
          return decide(project.state);
        }),
      messages,
    );

  return {
    async allowUser(input: { email: string; githubLogin: string | null; platformRole: PlatformRole }, meta: EventMeta): Promise<AppendResult & { userId: string }> {
      if (!emailPattern.test(input.email)) throw new DomainError('invalid_argument', 'not an e-mail address');
      if (input.githubLogin !== null && !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(input.githubLogin)) throw new DomainError('invalid_argument', 'not a GitHub login');
      const github = input.githubLogin === null ? null : await deps.github.user(input.githubLogin);
      if (github === undefined) throw new DomainError('not_found', `GitHub has no user ${input.githubLogin}`);
      const userId = randomUUID();
      const user = streamOf.user(userId);
      const emailHash = hashEmail(deps.emailHashKey, input.email);
      const events = decideUser({ type: 'AllowUser', userId, emailHash, github, platformRole: input.platformRole, now: deps.now() }, initialUser);
      const { append } = await claiming(() =>
        handleCommand(deps, meta, async () => ({
          writes: [
            { stream: user, expected: 'no_stream', events },
            reserved('email', emailHash, user),
            ...(github ? [reserved('github_user', String(github.id), user)] : []),
          ],
          result: undefined,
        })),
      );
      return { ...append!, userId };
    },

    async createProject(input: { key: string; name: string }, meta: EventMeta): Promise<AppendResult & { projectId: string }> {
      const projectId = randomUUID();
      const events = decideProject({ type: 'CreateProject', projectId, key: input.key, name: input.name, now: deps.now() }, projectDecider.initial);
      const { append } = await claiming(() =>
        handleCommand(deps, meta, async () => ({
          writes: [{ stream: streamOf.project(projectId), expected: 'no_stream', events }, reserved('project_key', input.key, streamOf.project(projectId))],
          result: undefined,
        })),
        { project_key: `project ${input.key} exists already` },
      );
      return { ...append!, projectId };
    },

    async addMember(input: { projectKey: string; email: string; role: ProjectRole }, meta: EventMeta): Promise<AppendResult | { position: undefined; streams: [] }> {
      if (!emailPattern.test(input.email)) throw new DomainError('invalid_argument', 'not an e-mail address');
      const projectId = await projectIdOf(input.projectKey);
      const owner = await ownerOf(store, 'email', hashEmail(deps.emailHashKey, input.email));
      if (!owner) throw new DomainError('failed_precondition', 'that e-mail is not allowed on the platform yet: run `users allow` first');
      const { append } = await onProject(projectId, meta, (state) => ({
        writes: [{ stream: streamOf.project(projectId), events: decideProject({ type: 'AddMember', userId: idIn('user', owner), role: input.role, now: deps.now() }, state) }],
        result: undefined,
      }));
      return append ?? { position: undefined, streams: [] };
    },

    /** A project's own number of run slots (null: the platform's CODEXK8S_SLOTS_PER_PROJECT). */
    async setProjectSlots(input: { projectKey: string; slots: number | null }, meta: EventMeta): Promise<AppendResult | { position: undefined; streams: [] }> {
      const projectId = await projectIdOf(input.projectKey);
      const { append } = await onProject(projectId, meta, (state) => ({
        writes: [{ stream: streamOf.project(projectId), events: decideProject({ type: 'SetSlots', slots: input.slots }, state) }],
        result: undefined,
      }));
      return append ?? { position: undefined, streams: [] };
    },

    /**
     * Connects a repository: GitHub is asked for it with its token (which proves the token can read
     * it) and it is kept by GitHub's numeric id, claimed so that it belongs to one project.
     */
    async connectRepository(
      input: { projectKey: string; owner: string; name: string; token: string | null },
      encrypt: (token: string, repositoryId: string) => string,
      meta: EventMeta,
    ): Promise<AppendResult & { repositoryId: string; githubRepositoryId: number }> {
      if (!githubName.test(input.owner) || !githubName.test(input.name)) {
        throw new DomainError('invalid_argument', 'a repository is <owner>/<name> with letters, digits, ".", "-" and "_"');
      }
      const projectId = await projectIdOf(input.projectKey);
      const found = await deps.github.repository(input.owner, input.name, input.token);
      if (!found) {
        throw new DomainError('failed_precondition', `GitHub does not show ${input.owner}/${input.name} ${input.token ? 'to this token' : 'without a token'}`);
      }
      const repositoryId = randomUUID();
      const tokenCiphertext = input.token ? encrypt(input.token, repositoryId) : null;
      const command = { type: 'ConnectRepository', repositoryId, githubRepositoryId: found.id, owner: found.owner, name: found.name, tokenCiphertext, now: deps.now() } as const;
      const { append } = await onProject(projectId, meta, (state) => ({
        writes: [
          { stream: streamOf.project(projectId), events: decideProject(command, state) },
          reserved('repository', repositoryKey('github', found.id), streamOf.project(projectId)),
        ],
        result: undefined,
      }), { repository: `${found.owner}/${found.name} is connected to a project already` });
      return { ...append!, repositoryId, githubRepositoryId: found.id };
    },
  };
}
