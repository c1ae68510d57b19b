import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import type { GithubDirectory } from '../../ports/github.js';
import type { RepositoryProvider } from '../../domain/repositories/provider.js';
import { REDACTED, scrubText } from '../log.js';

/**
 * GitHub's REST API could not answer (other than "not found"); the message holds no token. `kind`
 * says whose move it is: `refused` (the credentials, which the caller can change), `rate_limited`
 * (try again later) or `unavailable` (GitHub failed or could not be reached, also when asked again).
 */
export class GithubError extends Error {
  override readonly name = 'GithubError';
  constructor(
    readonly kind: 'refused' | 'rate_limited' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

// Octokit logs each failed request to the console; our errors say what went wrong, without the request.
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

// An operator's command waits out a short rate limit rather than fail; a long one (an exhausted
// hourly quota) fails at once with a clear error rather than hang for most of an hour.
const RATE_LIMIT_RETRIES = 2;
const RATE_LIMIT_LONGEST_WAIT_S = 60;
const waitOut = (retryAfterSeconds: number, _options: unknown, _octokit: unknown, retryCount: number) =>
  retryCount < RATE_LIMIT_RETRIES && retryAfterSeconds <= RATE_LIMIT_LONGEST_WAIT_S;

// Rate limits are the throttling plugin's alone (it honours retry-after and x-ratelimit-reset); the
// retry plugin, with its own backoff, takes only what a retry can mend: 5xx and lost connections.
const GithubClient = Octokit.plugin(throttling, retry);
const notRetried = [400, 401, 403, 404, 410, 422, 429, 451];

interface RequestFailure {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | number | undefined> };
}

const isRateLimit = (error: RequestFailure) => {
  const headers = error.response?.headers ?? {};
  return (error.status === 403 || error.status === 429) && (String(headers['x-ratelimit-remaining']) === '0' || headers['retry-after'] !== undefined || /rate limit/i.test(error.message ?? ''));
};

/**
 * GitHub over its REST API (`@octokit/rest`) at `apiUrl` (CODEXK8S_GITHUB_API_URL): the repository
 * provider (a repository is asked for with its own token, so finding it proves the token can read
 * it) and the directory of users.
 */
export function githubDirectory(apiUrl: string, options: { retryBaseMs?: number } = {}): GithubDirectory & RepositoryProvider {
  const client = (token: string | null) =>
    new GithubClient({
      baseUrl: apiUrl.replace(/\/+$/, ''), userAgent: 'codex-k8s', log: quiet, ...(token ? { auth: token } : {}),
      throttle: { onRateLimit: waitOut, onSecondaryRateLimit: waitOut },
      // Waits of 1, 4 and 9 times the base (1 s) before the three retries of a 5xx or a lost connection.
      retry: { doNotRetry: notRetried, ...(options.retryBaseMs !== undefined ? { retryAfterBaseValue: options.retryBaseMs } : {}) },
    });

  async function ask<T>(what: string, token: string | null, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (caught) {
      const error = caught as RequestFailure;
      const status = error.status;
      // 404 is also GitHub's answer for a private repository the token cannot see.
      if (status === 404) return undefined;
      if (status === 401) throw new GithubError('refused', `GitHub refused the token while looking up ${what} (401: bad or expired credentials)`);
      if (isRateLimit(error)) throw new GithubError('rate_limited', `GitHub's rate limit held while looking up ${what}, also after ${RATE_LIMIT_RETRIES} waits; try again later`);
      if (status === 403) throw new GithubError('refused', `GitHub refused to show ${what} (403: permissions)`);
      if (error.response && typeof status === 'number') throw new GithubError('unavailable', `GitHub could not answer about ${what} (status ${status}${status >= 500 ? ', also when asked again' : ''})`);
      // No answer at all (DNS, connection): the cause says why; a token in it would be an accident, so it is cut out.
      const reason = scrubText(token ? String(error.message).split(token).join(REDACTED) : String(error.message));
      throw new GithubError('unavailable', `GitHub could not be asked about ${what}: ${reason}`);
    }
  }

  return {
    kind: 'github',
    async find(owner, name, token) {
      const found = await ask(`${owner}/${name}`, token, () => client(token).rest.repos.get({ owner, repo: name }));
      return found && { id: found.data.id, owner: found.data.owner.login, name: found.data.name };
    },
    async user(login) {
      const found = await ask(`user ${login}`, null, () => client(null).rest.users.getByUsername({ username: login }));
      return found && { id: found.data.id, login: found.data.login };
    },
  };
}
