import { createHash, randomBytes } from 'node:crypto';

export interface FakeOAuthUser {
  id: number;
  login: string;
  emails: { email: string; verified: boolean; primary?: boolean }[];
}

/** What a fake endpoint answers: status, body, and whether GitHub would send it form-encoded. */
export type FakeAnswer = [status: number, body: unknown, format?: 'json' | 'form'];

const CODE_LIFETIME_MS = 10 * 60_000;

/**
 * GitHub's OAuth web flow with PKCE, as GitHub behaves: `approve` stands in for the person clicking
 * "Authorize" (the platform never calls /login/oauth/authorize), the token endpoint checks the app's
 * credentials, the one-time code, the redirect_uri and the verifier, and `/user`, `/user/emails`
 * answer for the token's user. Refusals come with status 200, as GitHub sends them.
 */
export function fakeGithubOAuth(now: () => number) {
  let app: { clientId: string; clientSecret: string } | undefined;
  const codes = new Map<string, { clientId: string; redirectUri: string; challenge: string; scope: string; user: FakeOAuthUser; issuedAt: number }>();
  const tokens = new Map<string, FakeOAuthUser>();

  const refuse = (error: string, description: string): FakeAnswer => [200, { error, error_description: description }];

  function exchange(input: Record<string, string>, accept: string | undefined): FakeAnswer {
    const form = !/application\/json/i.test(accept ?? '');
    const answer = ([status, body]: FakeAnswer): FakeAnswer => [status, body, form ? 'form' : 'json'];
    if (!app || input.client_id !== app.clientId || input.client_secret !== app.clientSecret) {
      return answer(refuse('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.'));
    }
    const grant = codes.get(input.code ?? '');
    // A code is burnt by any attempt at it, so a wrong verifier cannot be retried against it.
    codes.delete(input.code ?? '');
    if (!grant || grant.clientId !== input.client_id || now() - grant.issuedAt > CODE_LIFETIME_MS) {
      return answer(refuse('bad_verification_code', 'The code passed is incorrect or expired.'));
    }
    if (input.redirect_uri !== grant.redirectUri) {
      return answer(refuse('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.'));
    }
    const challenge = createHash('sha256').update(input.code_verifier ?? '').digest('base64url');
    if (!input.code_verifier || challenge !== grant.challenge) {
      return answer(refuse('bad_verification_code', 'The code passed is incorrect or expired.'));
    }
    const token = `gho_${randomBytes(18).toString('base64url')}`;
    tokens.set(token, grant.user);
    return answer([200, { access_token: token, token_type: 'bearer', scope: grant.scope }]);
  }

  function userOf(authorization: string | undefined): FakeOAuthUser | FakeAnswer {
    const token = /^(?:token|bearer) (.+)$/i.exec(authorization ?? '')?.[1];
    if (token === undefined) return [401, { message: 'Requires authentication', status: '401' }];
    return tokens.get(token) ?? [401, { message: 'Bad credentials', status: '401' }];
  }

  return {
    oauthApp(credentials: { clientId: string; clientSecret: string }) {
      app = { ...credentials };
    },

    /** The person approves the app at `authorizeUrl`; answers the callback URL GitHub would redirect the browser to. */
    approve(authorizeUrl: string, user: FakeOAuthUser): string {
      const query = new URL(authorizeUrl).searchParams;
      const get = (name: string) => {
        const value = query.get(name);
        if (!value) throw new Error(`fake GitHub: the authorize URL has no ${name}`);
        return value;
      };
      if (!app || get('client_id') !== app.clientId) throw new Error('fake GitHub: the authorize URL names an unknown client_id');
      if (get('code_challenge_method') !== 'S256') throw new Error('fake GitHub: code_challenge_method must be S256');
      const code = randomBytes(10).toString('hex');
      const redirectUri = get('redirect_uri');
      codes.set(code, {
        clientId: app.clientId,
        redirectUri,
        challenge: get('code_challenge'),
        scope: (query.get('scope') ?? '').split(/[\s,]+/).filter(Boolean).join(','),
        user: structuredClone(user),
        issuedAt: now(),
      });
      const callback = new URL(redirectUri);
      callback.searchParams.set('code', code);
      if (query.has('state')) callback.searchParams.set('state', query.get('state')!);
      return callback.toString();
    },

    /** The OAuth endpoints' answer, or undefined for a path that is not theirs. */
    answer(method: string, path: string, headers: { authorization?: string | undefined; accept?: string | undefined }, input: Record<string, string>): FakeAnswer | undefined {
      if (method === 'POST' && path === '/login/oauth/access_token') return exchange(input, headers.accept);
      if (method === 'GET' && path === '/user') {
        const user = userOf(headers.authorization);
        return Array.isArray(user) ? user : [200, { id: user.id, login: user.login, type: 'User' }];
      }
      if (method === 'GET' && path === '/user/emails') {
        const user = userOf(headers.authorization);
        if (Array.isArray(user)) return user;
        return [200, user.emails.map((e) => ({ email: e.email, verified: e.verified, primary: e.primary ?? false, visibility: e.primary ? 'private' : null }))];
      }
      return undefined;
    },
  };
}
