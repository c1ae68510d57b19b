import { request } from '@octokit/request';
import { Octokit } from '@octokit/rest';
import * as t from 'io-ts';

/**
 * The code exchange failed. `reason` is GitHub's error code (`bad_verification_code`,
 * `incorrect_client_credentials`, `redirect_uri_mismatch`, …) or one of ours (`http_<status>`,
 * `timeout`, `unreachable`, `malformed_answer`). The message never holds the code, the verifier,
 * the client secret or a token.
 */
export class OAuthExchangeError extends Error {
  override readonly name = 'OAuthExchangeError';
  constructor(message: string, readonly reason: string) {
    super(message);
  }
}

/** GitHub would not say who holds the access token; `status` is GitHub's HTTP status when it answered. No token, no e-mail in the message. */
export class OAuthIdentityError extends Error {
  override readonly name = 'OAuthIdentityError';
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export interface GithubIdentity {
  id: number;
  login: string;
  /** Verified addresses only, trimmed and lower-cased: an unverified address proves nothing about who signed in. */
  verifiedEmails: string[];
}

export interface GithubOAuth {
  authorizeUrl(input: { state: string; codeChallenge: string; redirectUri: string }): string;
  exchangeCode(input: { code: string; codeVerifier: string; redirectUri: string }): Promise<string>;
  identity(accessToken: string): Promise<GithubIdentity>;
}

export interface GithubOAuthOptions {
  /** CODEXK8S_GITHUB_OAUTH_URL, e.g. the GitHub web host; the OAuth endpoints are not under the API host. */
  oauthUrl: string;
  /** CODEXK8S_GITHUB_API_URL. */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** Budget for one exchange or one identity lookup, all its requests together. */
  timeoutMs?: number;
}

// GitHub's login needs the numeric id and login (read:user) and the verified e-mails (user:email); nothing more.
const SCOPE = 'read:user%20user:email';
const USER_AGENT = 'codex-k8s';
const DEFAULT_TIMEOUT_MS = 10_000;
// S256 of anything is 32 bytes, 43 base64url characters: refuses a hex digest, padding or a `plain` challenge up front.
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
// GitHub's error codes are snake_case words; anything else is not echoed into our messages.
const ERROR_CODE = /^[a-z][a-z0-9_]{0,63}$/;

// Octokit logs failed requests to the console, with their URL; our errors say what went wrong instead.
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

const TokenAnswer = t.type({ access_token: t.string });
const ErrorAnswer = t.type({ error: t.string });
const User = t.type({ id: t.number, login: t.string });
const Emails = t.array(t.type({ email: t.string, verified: t.boolean }));

/** What became of a request that threw: GitHub's status, our deadline, or no answer at all. */
function failureOf(error: unknown, deadline: AbortSignal): { kind: 'timeout' } | { kind: 'status'; status: number } | { kind: 'unreachable'; detail: string } {
  if (deadline.aborted) return { kind: 'timeout' };
  const { status, response } = error as { status?: unknown; response?: unknown };
  // Octokit reports a connection failure as status 500 without a response.
  if (typeof status === 'number' && response !== undefined) return { kind: 'status', status };
  // fetch's TypeError hides the system error (ECONNREFUSED, …) one or two causes down; only its code is kept.
  const cause = (error as { cause?: { code?: unknown; cause?: { code?: unknown } } }).cause;
  const detail = [cause?.code, cause?.cause?.code].find((c): c is string => typeof c === 'string' && /^E[A-Z_]+$/.test(c));
  return { kind: 'unreachable', detail: detail ?? 'no answer' };
}

/**
 * GitHub's OAuth web flow with PKCE, as a client: the authorize URL to send a browser to, the code
 * exchange (`@octokit/request`: `@octokit/oauth-methods` cannot send a code_verifier), and who the
 * token belongs to (`@octokit/rest`). Tokens are only passed through, never stored or logged.
 */
export function githubOAuth(options: GithubOAuthOptions): GithubOAuth {
  const oauthUrl = options.oauthUrl.replace(/\/+$/, '');
  const apiUrl = options.apiUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  return {
    authorizeUrl({ state, codeChallenge, redirectUri }) {
      if (!S256_CHALLENGE.test(codeChallenge)) throw new Error('codeChallenge must be base64url(sha256(code verifier))');
      const params: [string, string][] = [
        ['client_id', options.clientId],
        ['redirect_uri', redirectUri],
        ['state', state],
        ['code_challenge', codeChallenge],
        ['code_challenge_method', 'S256'],
      ];
      const query = params.map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('&');
      return `${oauthUrl}/login/oauth/authorize?${query}&scope=${SCOPE}`;
    },

    async exchangeCode({ code, codeVerifier, redirectUri }) {
      const deadline = AbortSignal.timeout(timeoutMs);
      let data: unknown;
      try {
        ({ data } = await request('POST /login/oauth/access_token', {
          baseUrl: oauthUrl,
          headers: { accept: 'application/json', 'user-agent': USER_AGENT },
          client_id: options.clientId,
          client_secret: options.clientSecret,
          code,
          redirect_uri: redirectUri,
          code_verifier: codeVerifier,
          request: { signal: deadline, log: quiet },
        }));
      } catch (error) {
        // Octokit's error carries the request body (the secret, the code): only what we learnt from it leaves here.
        const failure = failureOf(error, deadline);
        if (failure.kind === 'timeout') throw new OAuthExchangeError(`GitHub's token endpoint did not answer within ${timeoutMs} ms`, 'timeout');
        if (failure.kind === 'unreachable') throw new OAuthExchangeError(`GitHub's token endpoint could not be reached (${failure.detail})`, 'unreachable');
        throw new OAuthExchangeError(`GitHub's token endpoint answered status ${failure.status}`, `http_${failure.status}`);
      }
      if (TokenAnswer.is(data) && data.access_token !== '') return data.access_token;
      // GitHub answers a refused exchange with status 200 and {error, error_description}.
      if (ErrorAnswer.is(data)) {
        const reason = ERROR_CODE.test(data.error) ? data.error : 'unrecognised_error';
        throw new OAuthExchangeError(`GitHub refused the code exchange (${reason})`, reason);
      }
      throw new OAuthExchangeError('GitHub\'s token endpoint answered neither a token nor an error', 'malformed_answer');
    },

    async identity(accessToken) {
      const deadline = AbortSignal.timeout(timeoutMs);
      const octokit = new Octokit({ baseUrl: apiUrl, userAgent: USER_AGENT, log: quiet, auth: accessToken, request: { signal: deadline } });
      let user: unknown;
      let emails: unknown;
      try {
        [{ data: user }, emails] = await Promise.all([
          octokit.rest.users.getAuthenticated(),
          octokit.paginate(octokit.rest.users.listEmailsForAuthenticatedUser, { per_page: 100 }),
        ]);
      } catch (error) {
        const failure = failureOf(error, deadline);
        if (failure.kind === 'timeout') throw new OAuthIdentityError(`GitHub did not say who signed in within ${timeoutMs} ms`);
        if (failure.kind === 'unreachable') throw new OAuthIdentityError(`GitHub could not be reached to say who signed in (${failure.detail})`);
        if (failure.status === 401) throw new OAuthIdentityError('GitHub refused the access token (401)', 401);
        throw new OAuthIdentityError(`GitHub could not say who signed in (status ${failure.status})`, failure.status);
      }
      // Checked with `is`, not a reporter: a reporter would quote the values, e-mails among them.
      if (!User.is(user) || !Emails.is(emails)) throw new OAuthIdentityError('GitHub\'s answer about the signed-in user was malformed');
      const verifiedEmails = [...new Set(emails.filter((e) => e.verified).map((e) => e.email.trim().toLowerCase()).filter((e) => e !== ''))];
      return { id: user.id, login: user.login, verifiedEmails };
    },
  };
}
