import { isEmail } from '../domain/shared/codec.js';
import { createHmac, randomUUID } from 'node:crypto';
import { ConcurrencyError, type AppendResult, type EventMeta, type EventStore } from '../ports/event-store.js';
import type { GithubDirectory } from '../ports/github.js';
import { providerNames, type RepositoryProviderKind, type RepositoryProviders } from '../domain/repositories/provider.js';
import { authorize } from '../domain/access/authorize.js';
import type { Action } from '../domain/access/permissions.js';
import { decideAll } from '../domain/shared/decider.js';
import { DomainError } from '../domain/shared/errors.js';
import { decideProject, projectDecider, type Project, type ProjectCommand } from '../domain/projects/project.js';
import type { ProjectRole } from '../domain/projects/events.js';
import { reserve } from '../domain/shared/reservations.js';
import { idIn, repositoryKey, streamOf, type ReservationKind } from '../domain/shared/streams.js';
import { decideUser, grantOf, userDecider, type Grant, type User } from '../domain/users/user.js';
import type { PlatformRole } from '../domain/users/events.js';
import type { StateAt } from './remembered-states.js';
import { handleCommand, type Load, type Outcome, type Write } from './handle-command.js';
import { ownerOf } from './reservations.js';

/**
 * The setup commands, one set for the operator CLI and the staff API. Names are claimed through
 * reservation streams in the same append as the fact, so a duplicate is a conflict and nothing is
 * written. GitHub things are looked up by name once, here, and kept by their numeric ids. A command
 * on behalf of a person (`by` a user id) is authorised inside its decision, on that user's stream
 * and the project's, which the append guards: a demotion and a command cannot both win. The
 * operator (`by: 'operator'`, the CLI with the database's credentials) is not a person.
 */
export interface SetupDeps {
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  /** GitHub users, looked up by login (webhook senders are matched by their numeric id). */
  github: GithubDirectory;
  /** Where repositories are looked up, by the kind of host a connection names. */
  providers: RepositoryProviders;
  /** Keyed hash of a normalised e-mail: what the allow-list stores instead of the address. */
  emailHashKey: Buffer;
  now: () => string;
}

export type By = 'operator' | { userId: string };

const githubName = /^[A-Za-z0-9_.-]{1,100}$/;
const githubLoginPattern = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;

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

const userFold = (userId: string) => ({ stream: streamOf.user(userId), fold: userDecider });

/** A project's settings; a missing one stays as it is (null slots: the platform's CODEXK8S_SLOTS_PER_PROJECT). */
export interface ProjectSettings {
  name?: string;
  learningMode?: boolean | null;
  slots?: number | null;
}

const settingCommands = (input: ProjectSettings): ProjectCommand[] => [
  ...(input.name !== undefined ? [{ type: 'RenameProject' as const, name: input.name }] : []),
  ...(input.learningMode !== undefined ? [{ type: 'SetLearningMode' as const, learningMode: input.learningMode }] : []),
  ...(input.slots !== undefined ? [{ type: 'SetSlots' as const, slots: input.slots }] : []),
];
const projectFold = (projectId: string) => ({ stream: streamOf.project(projectId), fold: projectDecider });
const noAppend = { position: undefined, streams: [] } as const;
type Written = AppendResult | typeof noAppend;

export function setupCommands(deps: SetupDeps) {
  const { store } = deps;

  /**
   * One decision for `by`, authorised for `action` on the streams it loads. With a project, the
   * decision gets the project's state (which must exist); the operator may do anything.
   */
  const decideAs = <R>(
    by: By,
    action: Action,
    projectId: string | undefined,
    meta: EventMeta,
    decide: (ctx: { load: Load; project: StateAt<Project> | undefined; actor: User | undefined }) => Promise<Outcome<R>>,
    messages: Partial<Record<ReservationKind, string>> = {},
  ) =>
    claiming(() => handleCommand(deps, meta, async (load) => {
      const [project] = projectId ? await load<[Project]>([projectFold(projectId)]) : [undefined];
      let actor: User | undefined;
      if (by !== 'operator') {
        [{ state: actor }] = await load<[User]>([userFold(by.userId)]);
        authorize(action, actor, project?.state);
      } else if (project && project.state.status !== 'active') {
        throw new DomainError('not_found', 'project not found');
      }
      return decide({ load, project, actor });
    }), messages);

  /** Commands on one project's stream, decided one after another on its evolving state. */
  const onProject = (by: By, action: Action, projectId: string, meta: EventMeta, commands: (project: Project) => ProjectCommand[], extra: (project: Project) => Write[] = () => [], messages = {}) =>
    decideAs(by, action, projectId, meta, async ({ project }) => ({
      writes: [{ stream: project!.stream, events: decideAll(projectDecider, commands(project!.state), project!.state) }, ...extra(project!.state)],
      result: undefined,
    }), messages).then(({ append }) => append ?? noAppend);

  /** A command on a project about one of its members, decided with what the member is allowed under, read from their stream. */
  const onMember = (by: By, action: Action, projectId: string, userId: string, meta: EventMeta, command: (grant: Grant | null) => ProjectCommand) =>
    decideAs(by, action, projectId, meta, async ({ load, project }) => {
      const [user] = await load<[User]>([userFold(userId)]);
      return { writes: [{ stream: project!.stream, events: decideProject(command(grantOf(user.state)), project!.state) }], result: undefined };
    }).then(({ append }) => append ?? noAppend);

  async function projectIdOf(key: string): Promise<string> {
    const owner = await ownerOf(store, 'project_key', key);
    if (!owner) throw new DomainError('not_found', `project ${key} not found`);
    return idIn('project', owner);
  }

  async function userIdOfEmail(email: string): Promise<string> {
    if (!isEmail(email)) throw new DomainError('invalid_argument', 'not an e-mail address');
    const owner = await ownerOf(store, 'email', hashEmail(deps.emailHashKey, email));
    if (!owner) throw new DomainError('failed_precondition', 'that e-mail is not allowed on the platform yet: allow the user first');
    return idIn('user', owner);
  }

  const projectRef = (ref: { projectId: string } | { projectKey: string }) => ('projectId' in ref ? Promise.resolve(ref.projectId) : projectIdOf(ref.projectKey));

  return {
    projectIdOf,
    userIdOf: userIdOfEmail,

    /**
     * Allows a person in by e-mail (the address itself is never stored, only its keyed hash). A user
     * who was removed and is allowed again is the same user. Making an owner takes an owner.
     */
    async allowUser(input: { email: string; githubLogin: string | null; platformRole: PlatformRole }, meta: EventMeta, by: By = 'operator'): Promise<AppendResult & { userId: string }> {
      if (!isEmail(input.email)) throw new DomainError('invalid_argument', 'not an e-mail address');
      if (input.githubLogin !== null && !githubLoginPattern.test(input.githubLogin)) throw new DomainError('invalid_argument', 'not a GitHub login');
      const github = input.githubLogin === null ? null : await deps.github.user(input.githubLogin);
      if (github === undefined) throw new DomainError('failed_precondition', `GitHub has no user ${input.githubLogin}`);
      const emailHash = hashEmail(deps.emailHashKey, input.email);
      const existing = await ownerOf(store, 'email', emailHash);
      const userId = existing ? idIn('user', existing) : randomUUID();
      const stream = streamOf.user(userId);
      const githubOwner = github ? await ownerOf(store, 'github_user', String(github.id)) : undefined;
      if (githubOwner && githubOwner !== stream) throw new DomainError('conflict', claimConflicts.github_user!);
      const action = input.platformRole === 'owner' ? 'users.manage_owners' : 'users.manage';
      const { append } = await decideAs(by, action, undefined, meta, async ({ load }) => {
        const [user] = existing ? await load<[User]>([userFold(userId)]) : [{ stream, version: 0, state: userDecider.initial }];
        const events = decideUser({ type: 'AllowUser', userId, emailHash, github, platformRole: input.platformRole, now: deps.now() }, user.state);
        return {
          writes: [
            existing ? { stream, events } : { stream, expected: 'no_stream' as const, events },
            ...(existing ? [] : [reserved('email', emailHash, stream)]),
            ...(github && !githubOwner ? [reserved('github_user', String(github.id), stream)] : []),
          ],
          result: undefined,
        };
      });
      return { ...append!, userId };
    },

    /**
     * CODEXK8S_BOOTSTRAP_OWNER_EMAIL: the first owner, allowed only while nobody ever had that
     * e-mail, so a restart never undoes what admins did since (a removal, a role change).
     */
    async bootstrapOwner(email: string, meta: EventMeta): Promise<'allowed' | 'known'> {
      if (await ownerOf(store, 'email', hashEmail(deps.emailHashKey, email))) return 'known';
      try {
        await this.allowUser({ email, githubLogin: null, platformRole: 'owner' }, meta);
        return 'allowed';
      } catch (error) {
        if (error instanceof DomainError && error.code === 'conflict') return 'known'; // another pod was first
        throw error;
      }
    },

    /** Sets a user's platform role; owners are made and unmade only by owners, and nobody changes their own. */
    async setPlatformRole(userId: string, platformRole: PlatformRole, meta: EventMeta, by: By): Promise<Written> {
      if (by !== 'operator' && by.userId === userId) throw new DomainError('forbidden', 'nobody changes their own platform role');
      const { append } = await decideAs(by, 'users.manage', undefined, meta, async ({ load, actor }) => {
        const [user] = await load<[User]>([userFold(userId)]);
        const touchesOwner = platformRole === 'owner' || (user.state.status === 'allowed' && user.state.platformRole === 'owner');
        if (touchesOwner && by !== 'operator') authorize('users.manage_owners', actor!);
        return { writes: [{ stream: user.stream, events: decideUser({ type: 'SetPlatformRole', platformRole }, user.state) }], result: undefined };
      });
      return append ?? noAppend;
    },

    /** Takes a user off the allow-list: their tokens stop working at their next request. */
    async removeUser(userId: string, meta: EventMeta, by: By): Promise<Written> {
      if (by !== 'operator' && by.userId === userId) throw new DomainError('forbidden', 'nobody removes themselves');
      const { append } = await decideAs(by, 'users.manage', undefined, meta, async ({ load, actor }) => {
        const [user] = await load<[User]>([userFold(userId)]);
        if (user.state.status === 'allowed' && user.state.platformRole === 'owner' && by !== 'operator') authorize('users.manage_owners', actor!);
        return { writes: [{ stream: user.stream, events: decideUser({ type: 'RemoveUser', now: deps.now() }, user.state) }], result: undefined };
      });
      return append ?? noAppend;
    },

    /** A new project, with the settings given, in one append. */
    async createProject(input: { key: string; name: string } & Omit<ProjectSettings, 'name'>, meta: EventMeta, by: By = 'operator'): Promise<AppendResult & { projectId: string }> {
      const projectId = randomUUID();
      const stream = streamOf.project(projectId);
      const { name: _name, ...settings } = input;
      const events = decideAll(projectDecider, [{ type: 'CreateProject', projectId, key: input.key, name: input.name, now: deps.now() }, ...settingCommands(settings)], projectDecider.initial);
      const { append } = await decideAs(by, 'projects.create', undefined, meta, async () => ({
        writes: [{ stream, expected: 'no_stream', events }, reserved('project_key', input.key, stream)],
        result: undefined,
      }), { project_key: `project ${input.key} exists already` });
      return { ...append!, projectId };
    },

    /** A project's settings: name, learning-mode default, slots (null: the platform's), in one append. */
    async updateProject(projectId: string, input: ProjectSettings, meta: EventMeta, by: By): Promise<Written> {
      return onProject(by, 'project.update', projectId, meta, () => settingCommands(input));
    },

    /** A deleted project's key is never given to another project: links and logs that name it stay unambiguous. */
    async deleteProject(projectId: string, meta: EventMeta, by: By): Promise<Written> {
      return onProject(by, 'project.delete', projectId, meta, () => [{ type: 'DeleteProject', now: deps.now() }]);
    },

    /** A project's own number of run slots (null: the platform's CODEXK8S_SLOTS_PER_PROJECT). */
    async setProjectSlots(input: { projectKey: string; slots: number | null }, meta: EventMeta): Promise<Written> {
      return onProject('operator', 'project.update', await projectIdOf(input.projectKey), meta, () => [{ type: 'SetSlots', slots: input.slots }]);
    },

    /** Adds a member, or changes their role. The person must be allowed on the platform already. */
    async addMember(input: ({ projectId: string } | { projectKey: string }) & ({ email: string } | { userId: string }) & { role: ProjectRole }, meta: EventMeta, by: By = 'operator'): Promise<Written> {
      const projectId = await projectRef(input);
      const userId = 'email' in input ? await userIdOfEmail(input.email) : input.userId;
      const { append } = await decideAs(by, 'members.manage', projectId, meta, async ({ load, project }) => {
        const [user] = await load<[User]>([userFold(userId)]);
        if (user.state.status !== 'allowed') throw new DomainError('failed_precondition', 'that user is not allowed on the platform');
        const command = { type: 'AddMember' as const, userId, grant: grantOf(user.state)!, role: input.role, now: deps.now() };
        return { writes: [{ stream: project!.stream, events: decideProject(command, project!.state) }], result: undefined };
      });
      return append ?? noAppend;
    },

    async removeMember(projectId: string, userId: string, meta: EventMeta, by: By): Promise<Written> {
      return onMember(by, 'members.manage', projectId, userId, meta, (grant) => ({ type: 'RemoveMember', userId, grant }));
    },

    /** A member's learning-mode override in the project (null clears it): their own, or anyone's for who manages members. */
    async setMemberLearningMode(projectId: string, userId: string, learningMode: boolean | null, meta: EventMeta, by: By): Promise<Written> {
      const action = by !== 'operator' && by.userId === userId ? 'members.own_learning_mode' : 'members.manage';
      return onMember(by, action, projectId, userId, meta, (grant) => ({ type: 'SetMemberLearningMode', userId, grant, learningMode }));
    },

    /**
     * Connects a repository: its provider is asked for it with its token (which proves the token can
     * read it) and it is kept by the provider's numeric id, claimed so that it belongs to one project
     * (for good: disconnected, it can come back to the same project only).
     */
    async connectRepository(
      input: ({ projectId: string } | { projectKey: string }) & { provider: RepositoryProviderKind; owner: string; name: string; token: string | null; servicesYamlPath?: string },
      encrypt: (token: string, repositoryId: string) => string,
      meta: EventMeta,
      by: By = 'operator',
    ): Promise<AppendResult & { repositoryId: string; githubRepositoryId: number }> {
      if (!githubName.test(input.owner) || !githubName.test(input.name)) {
        throw new DomainError('invalid_argument', 'a repository is <owner>/<name> with letters, digits, ".", "-" and "_"');
      }
      const host = providerNames[input.provider];
      const provider = deps.providers[input.provider];
      if (!provider) throw new DomainError('failed_precondition', `repositories on ${host} cannot be connected here: no ${host} provider is configured`);
      const projectId = await projectRef(input);
      // Authorised before the provider is asked: nobody learns through us what a token can see.
      await decideAs(by, 'repositories.manage', projectId, meta, async () => ({ writes: [], result: undefined }));
      const found = await provider.find(input.owner, input.name, input.token);
      if (!found) {
        throw new DomainError('failed_precondition', `${host} does not show ${input.owner}/${input.name} ${input.token ? 'to this token' : 'without a token'}`);
      }
      const key = repositoryKey(input.provider, found.id);
      const claimedBy = await ownerOf(store, 'repository', key);
      const taken = `${found.owner}/${found.name} is connected to a project already`;
      if (claimedBy && claimedBy !== streamOf.project(projectId)) throw new DomainError('conflict', taken);
      const repositoryId = randomUUID();
      const tokenCiphertext = input.token ? encrypt(input.token, repositoryId) : null;
      const command = {
        type: 'ConnectRepository', repositoryId, provider: input.provider, githubRepositoryId: found.id, owner: found.owner, name: found.name, tokenCiphertext, now: deps.now(),
        ...(input.servicesYamlPath !== undefined ? { servicesYamlPath: input.servicesYamlPath } : {}),
      } as const;
      const append = await onProject(by, 'repositories.manage', projectId, meta, () => [command], () => (claimedBy ? [] : [reserved('repository', key, streamOf.project(projectId))]), { repository: taken });
      return { ...(append as AppendResult), repositoryId, githubRepositoryId: found.id };
    },

    async disconnectRepository(projectId: string, repositoryId: string, meta: EventMeta, by: By): Promise<Written> {
      return onProject(by, 'repositories.manage', projectId, meta, () => [{ type: 'DisconnectRepository', repositoryId }]);
    },
  };
}

export type SetupCommands = ReturnType<typeof setupCommands>;
