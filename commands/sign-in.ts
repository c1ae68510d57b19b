import { ConcurrencyError, type EventMeta, type EventStore } from '../ports/event-store.js';
import { DomainError } from '../domain/shared/errors.js';
import { reserve } from '../domain/shared/reservations.js';
import { streamOf } from '../domain/shared/streams.js';
import { decideUser, userDecider, type User } from '../domain/users/user.js';
import type { AllowedUser } from '../domain/access/authorize.js';
import { handleCommand } from './handle-command.js';
import { ownerOf } from './reservations.js';
import { hashEmail } from './setup.js';

export interface SignInDeps {
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  emailHashKey: Buffer;
  now: () => string;
}

/** Uses a login's state once: a second use, on any pod, is refused. */
export async function redeemLoginState(deps: SignInDeps, stateId: string, meta: EventMeta): Promise<void> {
  try {
    await deps.store.append([{ stream: streamOf.oauthState(stateId), expected: 'no_stream', events: [{ type: 'OAuthStateRedeemed', data: { redeemedAt: deps.now() } }] }], meta);
  } catch (error) {
    if (error instanceof ConcurrencyError) throw new DomainError('invalid_argument', 'this login state was used already: start the login again');
    throw error;
  }
}

/**
 * Lets a GitHub account in only if one of its verified e-mails was allowed by an admin beforehand
 * (no self-signup: nothing is created for anyone else). The first sign-in links the account, by
 * its numeric id, to the user, and claims it so that it belongs to one user; a user already linked
 * to another account is refused.
 */
export async function signIn(deps: SignInDeps, github: { id: number; login: string; verifiedEmails: readonly string[] }, meta: EventMeta): Promise<AllowedUser> {
  const owners = await Promise.all(github.verifiedEmails.slice(0, 50).map((email) => ownerOf(deps.store, 'email', hashEmail(deps.emailHashKey, email))));
  const candidates = [...new Set(owners.filter((o): o is string => o !== undefined))];
  // Twice at most: a first sign-in of the same account on another pod may claim it meanwhile.
  for (let attempt = 1; ; attempt++) {
    const accountOwner = await ownerOf(deps.store, 'github_user', String(github.id));
    // An account already linked lets in its own user only, whatever order its e-mails come in.
    const users = accountOwner ? candidates.filter((c) => c === accountOwner) : candidates;
    if (accountOwner && users.length === 0) throw new DomainError('forbidden', 'this GitHub account belongs to another user');
    try {
      for (const stream of users) {
        const linked = await linkAccount(deps, stream, github, accountOwner, meta);
        if (linked) return linked;
      }
      throw new DomainError('forbidden', 'no allowed user has a verified e-mail of this GitHub account: ask an admin to allow yours');
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      if (attempt >= 2) throw new DomainError('forbidden', 'this GitHub account belongs to another user');
    }
  }
}

/** Links the account to this allowed user (and claims it, unless claimed already); undefined when the user is not allowed. */
async function linkAccount(deps: SignInDeps, stream: string, github: { id: number; login: string }, accountOwner: string | undefined, meta: EventMeta): Promise<AllowedUser | undefined> {
  const { result } = await handleCommand(deps, meta, async (load) => {
    const [user] = await load<[User]>([{ stream, fold: userDecider }]);
    if (user.state.status !== 'allowed') return { writes: [], result: undefined };
    let events;
    try {
      events = decideUser({ type: 'LinkGithub', github: { id: github.id, login: github.login } }, user.state);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'failed_precondition') throw new DomainError('forbidden', error.message);
      throw error;
    }
    const linked = events.reduce<User>(userDecider.evolve, user.state) as AllowedUser;
    return {
      writes: [
        { stream, events },
        ...(accountOwner ? [] : [{ stream: streamOf.reservation('github_user', String(github.id)), expected: 'no_stream' as const, events: reserve('github_user', stream) }]),
      ],
      result: linked,
    };
  });
  return result;
}
