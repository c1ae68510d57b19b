import { isPrintable } from '../shared/codec.js';
import type { Grant } from '../users/user.js';
import { DomainError } from '../shared/errors.js';
import { acceptsTypes, type Decider } from '../shared/decider.js';
import type { RepositoryProviderKind } from '../repositories/provider.js';
import { projectEventCodecs, tokenKeyId, type ProjectEvent, type ProjectRole } from './events.js';

export interface ConnectedRepository {
  id: string;
  /** GitHub's numeric id: what deliveries are matched by. Null only for repositories connected before it was kept. */
  githubRepositoryId: number | null;
  owner: string;
  name: string;
  /** The newest ciphertext of its token (never the token), or null when it has none. */
  tokenCiphertext: string | null;
}

export type Project =
  | { status: 'none' }
  | {
      status: 'active';
      projectId: string;
      key: string;
      name: string;
      learningMode: boolean | null;
      /** Its own number of run slots, or null for the platform's. */
      slots: number | null;
      /** By user id, each under the user's allowance it was granted under (see membershipOf). */
      members: Readonly<Record<string, ProjectMember>>;
      repositories: readonly ConnectedRepository[];
    }
  | { status: 'deleted' };

export const initialProject: Project = { status: 'none' };

export interface ProjectMember {
  role: ProjectRole;
  learningMode: boolean | null;
  /** The user's allowance it was granted under; null in a MemberAdded recorded before it was kept. */
  allowance: number | null;
  addedAt: string;
}

/**
 * The user's membership, if they have one that counts: granted under their current allowance (`grant`
 * null: they are not allowed now). A removal from the platform ends every membership; allowed again,
 * a user is a member of nothing until added again. A membership recorded before allowances were kept
 * counts if it was granted after the current allowance began.
 */
export function membershipOf(project: Extract<Project, { status: 'active' }>, userId: string, grant: Grant | null): ProjectMember | undefined {
  const member = project.members[userId];
  if (!member || !grant) return undefined;
  const current = member.allowance === null ? Date.parse(member.addedAt) >= Date.parse(grant.allowedAt) : member.allowance === grant.allowance;
  return current ? member : undefined;
}

export type ProjectCommand =
  | { type: 'CreateProject'; projectId: string; key: string; name: string; now: string }
  | { type: 'RenameProject'; name: string }
  | { type: 'SetLearningMode'; learningMode: boolean | null }
  | { type: 'DeleteProject'; now: string }
  // `grant`: what the user is allowed under now, from their stream (null: not allowed now).
  | { type: 'AddMember'; userId: string; grant: Grant; role: ProjectRole; now: string }
  | { type: 'RemoveMember'; userId: string; grant: Grant | null }
  | { type: 'SetMemberLearningMode'; userId: string; grant: Grant | null; learningMode: boolean | null }
  | {
      type: 'ConnectRepository'; repositoryId: string; provider: RepositoryProviderKind; githubRepositoryId: number; owner: string; name: string; tokenCiphertext: string | null;
      servicesYamlPath?: string; now: string;
    }
  | { type: 'DisconnectRepository'; repositoryId: string }
  | { type: 'RenameRepository'; githubRepositoryId: number; owner: string; name: string }
  /** The repository's token as sealed again under the current key by the caller (the decider never sees a token). */
  | { type: 'ReencryptRepositoryToken'; repositoryId: string; tokenCiphertext: string }
  | { type: 'SetSlots'; slots: number | null };

export function evolveProject(state: Project, event: ProjectEvent): Project {
  if (event.type === 'ProjectCreated') {
    return { status: 'active', projectId: event.data.projectId, key: event.data.key, name: event.data.name, learningMode: null, slots: null, members: {}, repositories: [] };
  }
  if (event.type === 'ProjectDeleted') return { status: 'deleted' };
  if (state.status !== 'active') return state;
  switch (event.type) {
    case 'ProjectRenamed':
      return { ...state, name: event.data.name };
    case 'ProjectLearningModeSet':
      return { ...state, learningMode: event.data.learningMode };
    case 'ProjectSlotsSet':
      return { ...state, slots: event.data.slots };
    case 'MemberAdded':
      return { ...state, members: { ...state.members, [event.data.userId]: { role: event.data.role, learningMode: null, allowance: event.data.allowance ?? null, addedAt: event.data.addedAt } } };
    case 'MemberRoleChanged':
    case 'MemberLearningModeSet': {
      const member = state.members[event.data.userId];
      if (!member) return state;
      const changed = event.type === 'MemberRoleChanged' ? { ...member, role: event.data.role } : { ...member, learningMode: event.data.learningMode };
      return { ...state, members: { ...state.members, [event.data.userId]: changed } };
    }
    case 'MemberRemoved': {
      const { [event.data.userId]: _removed, ...members } = state.members;
      return { ...state, members };
    }
    case 'RepositoryConnected': {
      const { repositoryId: id, githubRepositoryId, owner, name, tokenCiphertext } = event.data;
      return { ...state, repositories: [...state.repositories, { id, githubRepositoryId: githubRepositoryId ?? null, owner, name, tokenCiphertext }] };
    }
    case 'RepositoryRenamed':
      return {
        ...state,
        repositories: state.repositories.map((r) => (r.id === event.data.repositoryId ? { ...r, owner: event.data.owner, name: event.data.name } : r)),
      };
    case 'RepositoryDisconnected':
      return { ...state, repositories: state.repositories.filter((r) => r.id !== event.data.repositoryId) };
    case 'RepositoryTokenReencrypted':
      return {
        ...state,
        repositories: state.repositories.map((r) => (r.id === event.data.repositoryId ? { ...r, tokenCiphertext: event.data.tokenCiphertext } : r)),
      };
  }
}

/** The connected repository GitHub knows by this numeric id, if the project has it. */
export const repositoryByGithubId = (project: Project, githubRepositoryId: number): ConnectedRepository | undefined =>
  project.status === 'active' ? project.repositories.find((r) => r.githubRepositoryId === githubRepositoryId) : undefined;

const projectKey = /^[a-z][a-z0-9-]{1,62}$/;
const checkName = (name: string) => {
  if (name.length === 0 || name.length > 200 || !isPrintable(name)) throw new DomainError('invalid_argument', 'a project name is 1-200 characters, none of them control characters');
};
const servicesYamlPath = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9_./-]{1,255}$/;

const active = (state: Project) => {
  if (state.status !== 'active') throw new DomainError('not_found', 'project not found');
  return state;
};
const memberOf = (state: Project, userId: string, grant: Grant | null) => {
  const project = active(state);
  const member = membershipOf(project, userId, grant);
  if (!member) throw new DomainError('not_found', 'member not found');
  return { project, member };
};

export function decideProject(command: ProjectCommand, state: Project): ProjectEvent[] {
  switch (command.type) {
    case 'CreateProject':
      if (!projectKey.test(command.key)) throw new DomainError('invalid_argument', 'a project key is 2-63 characters: a-z, 0-9 and -, starting with a letter');
      checkName(command.name);
      if (state.status !== 'none') throw new DomainError('conflict', `project ${command.key} exists already`);
      return [{ type: 'ProjectCreated', data: { projectId: command.projectId, key: command.key, name: command.name, createdAt: command.now } }];
    case 'RenameProject': {
      const project = active(state);
      checkName(command.name);
      return project.name === command.name ? [] : [{ type: 'ProjectRenamed', data: { projectId: project.projectId, name: command.name } }];
    }
    case 'SetLearningMode': {
      const project = active(state);
      return project.learningMode === command.learningMode ? [] : [{ type: 'ProjectLearningModeSet', data: { projectId: project.projectId, learningMode: command.learningMode } }];
    }
    case 'DeleteProject':
      if (state.status === 'deleted') return [];
      return [{ type: 'ProjectDeleted', data: { projectId: active(state).projectId, deletedAt: command.now } }];
    case 'RemoveMember': {
      const project = active(state);
      return membershipOf(project, command.userId, command.grant) ? [{ type: 'MemberRemoved', data: { projectId: project.projectId, userId: command.userId } }] : [];
    }
    case 'SetMemberLearningMode': {
      const { project, member } = memberOf(state, command.userId, command.grant);
      return member.learningMode === command.learningMode
        ? []
        : [{ type: 'MemberLearningModeSet', data: { projectId: project.projectId, userId: command.userId, learningMode: command.learningMode } }];
    }
    case 'DisconnectRepository': {
      const project = active(state);
      if (!project.repositories.some((r) => r.id === command.repositoryId)) throw new DomainError('not_found', 'repository not found');
      return [{ type: 'RepositoryDisconnected', data: { repositoryId: command.repositoryId, projectId: project.projectId } }];
    }
    case 'AddMember': {
      if (state.status !== 'active') throw new DomainError('not_found', 'project not found');
      // A membership from before the user was removed does not count: it is granted afresh.
      const current = membershipOf(state, command.userId, command.grant)?.role;
      if (current === command.role) return [];
      if (current) return [{ type: 'MemberRoleChanged', data: { projectId: state.projectId, userId: command.userId, role: command.role } }];
      return [{ type: 'MemberAdded', data: { projectId: state.projectId, userId: command.userId, role: command.role, addedAt: command.now, allowance: command.grant.allowance } }];
    }
    case 'ConnectRepository':
      if (state.status !== 'active') throw new DomainError('not_found', 'project not found');
      if (command.servicesYamlPath !== undefined && !servicesYamlPath.test(command.servicesYamlPath)) {
        throw new DomainError('invalid_argument', 'services_yaml_path is a relative path inside the repository');
      }
      if (repositoryByGithubId(state, command.githubRepositoryId)) throw new DomainError('conflict', `${command.owner}/${command.name} is connected to this project already`);
      return [{
        type: 'RepositoryConnected',
        data: {
          repositoryId: command.repositoryId, projectId: state.projectId, provider: command.provider, githubRepositoryId: command.githubRepositoryId,
          owner: command.owner, name: command.name, tokenCiphertext: command.tokenCiphertext, connectedAt: command.now,
          ...(command.servicesYamlPath !== undefined ? { servicesYamlPath: command.servicesYamlPath } : {}),
        },
      }];
    case 'SetSlots':
      if (state.status !== 'active') throw new DomainError('not_found', 'project not found');
      if (command.slots !== null && (!Number.isInteger(command.slots) || command.slots < 1 || command.slots > 100)) throw new DomainError('invalid_argument', 'slots are a whole number from 1 to 100');
      if (state.slots === command.slots) return [];
      return [{ type: 'ProjectSlotsSet', data: { projectId: state.projectId, slots: command.slots } }];
    case 'RenameRepository': {
      const repository = repositoryByGithubId(state, command.githubRepositoryId);
      if (state.status !== 'active' || !repository) return [];
      if (repository.owner === command.owner && repository.name === command.name) return [];
      return [{ type: 'RepositoryRenamed', data: { repositoryId: repository.id, projectId: state.projectId, owner: command.owner, name: command.name } }];
    }
    case 'ReencryptRepositoryToken': {
      // Disconnected (or its project deleted) meanwhile, or without a token: nothing to keep sealed.
      const repository = state.status === 'active' ? state.repositories.find((r) => r.id === command.repositoryId) : undefined;
      if (state.status !== 'active' || !repository?.tokenCiphertext) return [];
      // Sealed under that key already (an earlier run got here first): a rerun writes nothing.
      if (tokenKeyId(repository.tokenCiphertext) === tokenKeyId(command.tokenCiphertext)) return [];
      return [{ type: 'RepositoryTokenReencrypted', data: { repositoryId: repository.id, projectId: state.projectId, tokenCiphertext: command.tokenCiphertext } }];
    }
  }
}

export const projectDecider: Decider<ProjectCommand, Project, ProjectEvent> = {
  initial: initialProject,
  evolve: evolveProject,
  decide: decideProject,
  accepts: acceptsTypes<ProjectEvent>(projectEventCodecs),
};
