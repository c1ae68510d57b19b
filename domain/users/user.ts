import { DomainError } from '../shared/errors.js';
import { acceptsTypes, type Decider } from '../shared/decider.js';
import { userEventCodecs, type PlatformRole, type UserEvent } from './events.js';

export type User = { status: 'none' } | { status: 'allowed'; userId: string; platformRole: PlatformRole; learningMode: boolean | null };
export const initialUser: User = { status: 'none' };

/** A GitHub account, by its numeric id (what webhook senders are matched by) and its login (for display). */
export interface GithubAccount {
  id: number;
  login: string;
}

export type UserCommand = { type: 'AllowUser'; userId: string; emailHash: string; github: GithubAccount | null; platformRole: PlatformRole; now: string };

export function evolveUser(state: User, event: UserEvent): User {
  switch (event.type) {
    case 'UserAllowed':
      return { status: 'allowed', userId: event.data.userId, platformRole: event.data.platformRole, learningMode: null };
    case 'UserPlatformRoleChanged':
      return state.status === 'allowed' ? { ...state, platformRole: event.data.platformRole } : state;
    case 'UserLearningModeSet':
      return state.status === 'allowed' ? { ...state, learningMode: event.data.learningMode } : state;
  }
}

const githubLogin = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;

export function decideUser(command: UserCommand, state: User): UserEvent[] {
  const { github } = command;
  if (github !== null && (!githubLogin.test(github.login) || !Number.isSafeInteger(github.id) || github.id <= 0)) {
    throw new DomainError('invalid_argument', 'not a GitHub account');
  }
  if (state.status !== 'none') throw new DomainError('conflict', 'that user is allowed already');
  return [{
    type: 'UserAllowed',
    data: {
      userId: command.userId, emailHash: command.emailHash, githubLogin: github?.login ?? null, githubUserId: github?.id ?? null,
      platformRole: command.platformRole, allowedAt: command.now,
    },
  }];
}

export const userDecider: Decider<UserCommand, User, UserEvent> = {
  initial: initialUser,
  evolve: evolveUser,
  decide: decideUser,
  accepts: acceptsTypes<UserEvent>(userEventCodecs),
};
