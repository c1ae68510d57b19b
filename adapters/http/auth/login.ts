import { randomUUID } from 'node:crypto';
import * as t from 'io-ts';
import type { Context } from 'koa';
import type Router from '@koa/router';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { GithubLogin } from '../../../ports/github.js';
import { redeemLoginState, signIn, type SignInDeps } from '../../../commands/sign-in.js';
import { ApiError, tooMany } from '../errors.js';
import { queryInput, strictObject } from '../api/input.js';
import type { Logger } from '../../log.js';
import { InvalidTokenError, loginStates, type StaffTokens } from './tokens.js';

export interface LoginDeps extends SignInDeps {
  github: GithubLogin;
  tokens: StaffTokens;
  loginStates: ReturnType<typeof loginStates>;
  /** Where GitHub sends the browser back (CODEXK8S_PUBLIC_URL + the callback path); else this request's origin. */
  publicUrl: string | undefined;
  /** Logins started and finished per minute per address. */
  perAddressPerMinute: number;
  log: Logger;
}

export const loginPath = '/api/v1/auth/github/login';
export const callbackPath = '/api/v1/auth/github/callback';

const Text = t.refinement(t.string, (s) => s.length > 0 && s.length <= 2048, 'text of 1-2048 characters');
const Callback = strictObject('callback', {}, { code: Text, state: Text, error: Text, error_description: t.string, error_uri: t.string });

/**
 * Staff sign-in through GitHub's web flow with PKCE, without self-signup: login redirects to GitHub
 * with a signed single-use state and the S256 challenge; the callback checks the state, exchanges the
 * code with the verifier, reads who GitHub says it is, and answers a staff JWT only for a person an
 * admin allowed beforehand. GitHub's access token lives for the callback only.
 */
export function mountLogin(router: Router, deps: LoginDeps): void {
  const limiter = new RateLimiterMemory({ points: deps.perAddressPerMinute, duration: 60 });
  const limited = async (ctx: Context) => {
    try {
      await limiter.consume(ctx.ip || 'unknown');
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      throw tooMany(error, 'too many logins from this address');
    }
  };
  const redirectUri = (ctx: Context) => `${deps.publicUrl ?? ctx.origin}${callbackPath}`;

  router.get(loginPath, async (ctx) => {
    await limited(ctx);
    const { state, codeChallenge } = await deps.loginStates.issue();
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(deps.github.authorizeUrl({ state, codeChallenge, redirectUri: redirectUri(ctx) }));
  });

  router.get(callbackPath, async (ctx) => {
    await limited(ctx);
    ctx.set('Cache-Control', 'no-store');
    const query = queryInput(ctx, Callback);
    if (query.error) throw new ApiError(403, 'forbidden', 'GitHub did not authorise the login');
    if (!query.code || !query.state) throw new ApiError(400, 'invalid_argument', 'query: code and state are required');
    let opened;
    try {
      opened = await deps.loginStates.open(query.state);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw new ApiError(400, 'invalid_argument', `the login state is not valid (${error.message}): start the login again`);
      throw error;
    }
    const meta = { correlationId: `login-${randomUUID()}`, actor: { type: 'system' as const, id: 'github-login' } };
    const commands = { store: deps.store, emailHashKey: deps.emailHashKey, now: deps.now };
    await redeemLoginState(commands, opened.id, meta);
    let identity;
    try {
      const accessToken = await deps.github.exchangeCode({ code: query.code, codeVerifier: opened.codeVerifier, redirectUri: redirectUri(ctx) });
      identity = await deps.github.identity(accessToken);
    } catch (error) {
      deps.log.warn({ err: error }, 'a GitHub login failed at GitHub');
      throw new ApiError(401, 'unauthorized', 'GitHub did not confirm the login: start it again');
    }
    const user = await signIn(commands, identity, meta);
    const issued = await deps.tokens.issue(user);
    ctx.body = {
      token: issued.token,
      token_type: 'Bearer',
      expires_at: issued.expiresAt.toISOString(),
      user: { id: user.userId, platform_role: user.platformRole, github: user.github },
    };
  });
}
