import type { ProjectRole } from './events.js';
import type { DomainEvent } from '../events.js';

/** Thrown by deciders; transports map it to the API's error model. */
export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly code: 'not_found' | 'conflict' | 'failed_precondition' | 'invalid_argument',
    message: string,
  ) {
    super(message);
  }
}

export type Project =
  | { status: 'none' }
  | {
      status: 'active';
      projectId: string;
      key: string;
      learningMode: boolean | null;
      members: Readonly<Record<string, { role: ProjectRole; learningMode: boolean | null }>>;
      repositories: readonly { id: string; owner: string; name: string }[];
    }
  | { status: 'deleted' };

export const initialProject: Project = { status: 'none' };

export type ProjectCommand =
  | { type: 'CreateProject'; projectId: string; key: string; name: string; now: string }
  | { type: 'AddMember'; userId: string; role: ProjectRole; now: string }
  | { type: 'ConnectRepository'; repositoryId: string; owner: string; name: string; tokenCiphertext: string | null; now: string };

export function evolveProject(state: Project, event: DomainEvent): Project {
  switch (event.type) {
    case 'ProjectCreated':
      return { status: 'active', projectId: event.data.projectId, key: event.data.key, learningMode: null, members: {}, repositories: [] };
    case 'ProjectLearningModeSet':
      return state.status === 'active' ? { ...state, learningMode: event.data.learningMode } : state;
    case 'MemberAdded':
      return state.status === 'active' ? { ...state, members: { ...state.members, [event.data.userId]: { role: event.data.role, learningMode: null } } } : state;
    case 'MemberRoleChanged':
    case 'MemberLearningModeSet': {
      if (state.status !== 'active') return state;
      const member = state.members[event.data.userId];
      if (!member) return state;
      const changed = event.type === 'MemberRoleChanged' ? { ...member, role: event.data.role } : { ...member, learningMode: event.data.learningMode };
      return { ...state, members: { ...state.members, [event.data.userId]: changed } };
    }
    case 'MemberRemoved': {
      if (state.status !== 'active') return state;
      const { [event.data.userId]: _removed, ...members } = state.members;
      return { ...state, members };
    }
    case 'RepositoryConnected':
      return state.status === 'active'
        ? { ...state, repositories: [...state.repositories, { id: event.data.repositoryId, owner: event.data.owner, name: event.data.name }] }
        : state;
    case 'RepositoryDisconnected':
      return state.status === 'active' ? { ...state, repositories: state.repositories.filter((r) => r.id !== event.data.repositoryId) } : state;
    case 'ProjectDeleted':
      return { status: 'deleted' };
    default:
      return state;
  }
}

const projectKey = /^[a-z][a-z0-9-]{1,62}$/;

export function decideProject(command: ProjectCommand, state: Project): DomainEvent[] {
  switch (command.type) {
    case 'CreateProject':
      if (!projectKey.test(command.key)) throw new DomainError('invalid_argument', 'a project key is 2-63 characters: a-z, 0-9 and -, starting with a letter');
      if (command.name.length === 0 || command.name.length > 200) throw new DomainError('invalid_argument', 'a project name is 1-200 characters');
      if (state.status !== 'none') throw new DomainError('conflict', `project ${command.key} exists already`);
      return [{ type: 'ProjectCreated', data: { projectId: command.projectId, key: command.key, name: command.name, createdAt: command.now } } as DomainEvent];
    case 'AddMember': {
      if (state.status !== 'active') throw new DomainError('not_found', 'project not found');
      const current = state.members[command.userId]?.role;
      if (current === command.role) return [];
      if (current) return [{ type: 'MemberRoleChanged', data: { projectId: state.projectId, userId: command.userId, role: command.role } } as DomainEvent];
      return [{ type: 'MemberAdded', data: { projectId: state.projectId, userId: command.userId, role: command.role, addedAt: command.now } } as DomainEvent];
    }
    case 'ConnectRepository':
      if (state.status !== 'active') throw new DomainError('not_found', 'project not found');
      return [{
        type: 'RepositoryConnected',
        data: { repositoryId: command.repositoryId, projectId: state.projectId, provider: 'github', owner: command.owner, name: command.name, tokenCiphertext: command.tokenCiphertext, connectedAt: command.now },
      } as DomainEvent];
  }
}
