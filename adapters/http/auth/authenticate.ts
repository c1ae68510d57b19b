import { isUuid } from '../../../domain/shared/codec.js';
import type { Context, Next } from 'koa';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { EventStore } from '../../../ports/event-store.js';
import { readFolded } from '../../../commands/remembered-states.js';
import { streamOf } from '../../../domain/shared/streams.js';
import { userDecider, type User } from '../../../domain/users/user.js';
import { projectDecider, type Project } from '../../../domain/projects/project.js';
import type { AllowedUser } from '../../../domain/access/authorize.js';
import { ApiError, tooMany } from '../errors.js';
import { InvalidTokenError, type StaffTokens, type TokenSubject } from './tokens.js';

export interface StaffState {
  user: AllowedUser;
  /**
   * The project the request names (the `projectId` path parameter, or a `project_id` query), read
   * with the user's stream in the same round trip: most requests need both.
   */
  project?: { id: string; state: Project };
}

/** The project a request names, if it names one well-formed; the handler still validates its input. */
function namedProject(ctx: Context): string | undefined {
  const named = (ctx as Context & { params?: Record<string, string> }).params?.projectId ?? ctx.query.project_id;
  return typeof named === 'string' && isUuid(named) ? named.toLowerCase() : undefined;
}

const unauthorized = (message: string) => new ApiError(401, 'unauthorized', message, { 'WWW-Authenticate': 'Bearer realm="codex-k8s"' });

/**
 * Staff requests carry `Authorization: Bearer <JWT>`. The token only says who; whether they are
 * still allowed, and with which role, is read from their user stream at every request, so a removal
 * or a demotion counts at the next request, not at the token's expiry. Each user has a request budget
 * per minute (per process), answered 429 with Retry-After past it.
 */
export function authenticate(deps: { tokens: StaffTokens; store: Pick<EventStore, 'readStreams'>; requestsPerMinute: number }) {
  const limiter = new RateLimiterMemory({ points: deps.requestsPerMinute, duration: 60 });
  return async (ctx: Context, next: Next) => {
    // The scheme is case-insensitive (RFC 9110, 11.1).
    const match = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/i.exec(ctx.get('Authorization'));
    if (!match) throw unauthorized('send a staff token as Authorization: Bearer <token>');
    let subject: TokenSubject;
    try {
      subject = await deps.tokens.verify(match[1]!);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw unauthorized(`the token is not valid: ${error.message}`);
      throw error;
    }
    const { userId } = subject;
    if (!isUuid(userId)) throw unauthorized('the token is not valid: bad subject');
    // Counted before the user's stream is read, so requests past the budget cost the database nothing.
    try {
      await limiter.consume(userId);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      throw tooMany(error);
    }
    const projectId = namedProject(ctx);
    const [user, project] = await readFolded(deps.store, [
      { stream: streamOf.user(userId), fold: userDecider },
      ...(projectId ? [{ stream: streamOf.project(projectId), fold: projectDecider }] : []),
    ]);
    const state = user!.state as User;
    if (state.status !== 'allowed') throw unauthorized('this user is not allowed on the platform');
    if (state.allowance !== subject.allowance) throw unauthorized('the token was issued before the user was taken off the allow-list: sign in again');
    (ctx.state as StaffState).user = state;
    if (project) (ctx.state as StaffState).project = { id: projectId!, state: project.state as Project };
    await next();
  };
}
