import { DomainError } from '../shared/errors.js';
import { acceptsTypes, type Decider } from '../shared/decider.js';
import { userEventCodecs, type PlatformRole, type UserEvent } from './events.js';

/** A GitHub account, by its numeric id (what webhook senders are matched by) and its login (for display). */
export interface GithubAccount {
  id: number;
  login: string;
}

/**
 * `allowance` counts the times the user was allowed: a removal ends everything granted under the
 * current one (tokens, memberships), so allowed again, they start afresh.
 */
export type User =
  | { status: 'none' }
  | { status: 'allowed'; userId: string; allowance: number; allowedAt: string; platformRole: PlatformRole; learningMode: boolean | null; github: GithubAccount | null }
  | { status: 'removed'; userId: string; allowance: number; github: GithubAccount | null };
export const initialUser: User = { status: 'none' };

/** What a user is allowed under now: the count of their allowances and when the current one began; null when not allowed. */
export interface Grant {
  allowance: number;
  allowedAt: string;
}
export const grantOf = (user: User): Grant | null => (user.status === 'allowed' ? { allowance: user.allowance, allowedAt: user.allowedAt } : null);

export type UserCommand =
  | { type: 'AllowUser'; userId: string; emailHash: string; github: GithubAccount | null; platformRole: PlatformRole; now: string }
  | { type: 'SetPlatformRole'; platformRole: PlatformRole }
  | { type: 'SetLearningMode'; learningMode: boolean | null }
  | { type: 'RemoveUser'; now: string }
  /** At sign-in: the GitHub account that proved one of the user's e-mails. */
  | { type: 'LinkGithub'; github: GithubAccount };

export function evolveUser(state: User, event: UserEvent): User {
  switch (event.type) {
    case 'UserAllowed': {
      const { githubUserId, githubLogin } = event.data;
      const github = githubUserId && githubLogin ? { id: githubUserId, login: githubLogin } : state.status === 'removed' ? state.github : null;
      const allowance = state.status === 'none' ? 1 : state.allowance + 1;
      return { status: 'allowed', userId: event.data.userId, allowance, allowedAt: event.data.allowedAt, platformRole: event.data.platformRole, learningMode: null, github };
    }
    case 'UserPlatformRoleChanged':
      return state.status === 'allowed' ? { ...state, platformRole: event.data.platformRole } : state;
    case 'UserLearningModeSet':
      return state.status === 'allowed' ? { ...state, learningMode: event.data.learningMode } : state;
    case 'UserGithubLinked':
      return state.status === 'allowed' ? { ...state, github: { id: event.data.githubUserId, login: event.data.githubLogin } } : state;
    case 'UserRemoved':
      return state.status === 'allowed' ? { status: 'removed', userId: state.userId, allowance: state.allowance, github: state.github } : state;
  }
}

const githubLogin = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const isGithubAccount = (github: GithubAccount) => githubLogin.test(github.login) && Number.isSafeInteger(github.id) && github.id > 0;

const allowed = (state: User) => {
  if (state.status !== 'allowed') throw new DomainError('not_found', 'user not found');
  return state;
};

export function decideUser(command: UserCommand, state: User): UserEvent[] {
  switch (command.type) {
    case 'AllowUser': {
      const { github } = command;
      if (github !== null && !isGithubAccount(github)) throw new DomainError('invalid_argument', 'not a GitHub account');
      if (state.status === 'allowed') throw new DomainError('conflict', 'that user is allowed already');
      // A removed user allowed again is the same user, with the GitHub account they had.
      const userId = state.status === 'removed' ? state.userId : command.userId;
      const account = github ?? (state.status === 'removed' ? state.github : null);
      return [{
        type: 'UserAllowed',
        data: {
          userId, emailHash: command.emailHash, githubLogin: account?.login ?? null, githubUserId: account?.id ?? null,
          platformRole: command.platformRole, allowedAt: command.now,
        },
      }];
    }
    case 'SetPlatformRole': {
      const user = allowed(state);
      return user.platformRole === command.platformRole ? [] : [{ type: 'UserPlatformRoleChanged', data: { userId: user.userId, platformRole: command.platformRole } }];
    }
    case 'SetLearningMode': {
      const user = allowed(state);
      return user.learningMode === command.learningMode ? [] : [{ type: 'UserLearningModeSet', data: { userId: user.userId, learningMode: command.learningMode } }];
    }
    case 'RemoveUser':
      if (state.status === 'removed') return [];
      return [{ type: 'UserRemoved', data: { userId: allowed(state).userId, removedAt: command.now } }];
    case 'LinkGithub': {
      const user = allowed(state);
      if (!isGithubAccount(command.github)) throw new DomainError('invalid_argument', 'not a GitHub account');
      if (user.github?.id === command.github.id) {
        return user.github.login === command.github.login ? [] : [{ type: 'UserGithubLinked', data: { userId: user.userId, githubUserId: command.github.id, githubLogin: command.github.login } }];
      }
      // An e-mail proves the person only together with the account it was allowed or first used with.
      if (user.github) throw new DomainError('failed_precondition', 'this user signs in with another GitHub account');
      return [{ type: 'UserGithubLinked', data: { userId: user.userId, githubUserId: command.github.id, githubLogin: command.github.login } }];
    }
  }
}

export const userDecider: Decider<UserCommand, User, UserEvent> = {
  initial: initialUser,
  evolve: evolveUser,
  decide: decideUser,
  accepts: acceptsTypes<UserEvent>(userEventCodecs),
};
