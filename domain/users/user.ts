import type { DomainEvent } from '../events.js';
import { DomainError } from '../projects/project.js';
import type { PlatformRole } from './events.js';

export type User = { status: 'none' } | { status: 'allowed'; userId: string; platformRole: PlatformRole; learningMode: boolean | null };
export const initialUser: User = { status: 'none' };

export type UserCommand = { type: 'AllowUser'; userId: string; emailHash: string; githubLogin: string | null; platformRole: PlatformRole; now: string };

export function evolveUser(state: User, event: DomainEvent): User {
  switch (event.type) {
    case 'UserAllowed':
      return { status: 'allowed', userId: event.data.userId, platformRole: event.data.platformRole, learningMode: null };
    case 'UserPlatformRoleChanged':
      return state.status === 'allowed' ? { ...state, platformRole: event.data.platformRole } : state;
    case 'UserLearningModeSet':
      return state.status === 'allowed' ? { ...state, learningMode: event.data.learningMode } : state;
    default:
      return state;
  }
}

const githubLogin = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;

export function decideUser(command: UserCommand, state: User): DomainEvent[] {
  if (command.githubLogin !== null && !githubLogin.test(command.githubLogin)) throw new DomainError('invalid_argument', 'not a GitHub login');
  if (state.status !== 'none') throw new DomainError('conflict', 'that user is allowed already');
  return [{ type: 'UserAllowed', data: { userId: command.userId, emailHash: command.emailHash, githubLogin: command.githubLogin, platformRole: command.platformRole, allowedAt: command.now } } as DomainEvent];
}
