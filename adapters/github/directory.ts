import { Octokit } from '@octokit/rest';
import type { GithubDirectory } from '../../ports/github.js';

/** GitHub's REST API could not answer (other than "not found"); the message holds no token. */
export class GithubError extends Error {
  override readonly name = 'GithubError';
}

// Octokit logs each failed request to the console; our errors say what went wrong, without the request.
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

const statusOf = (error: unknown) => (error as { status?: unknown }).status;

/**
 * The GitHub directory over the REST API (`@octokit/rest`) at `apiUrl` (CODEXK8S_GITHUB_API_URL):
 * a repository is asked for with its own token, so finding it proves the token can read it.
 */
export function githubDirectory(apiUrl: string): GithubDirectory {
  const client = (token: string | null) =>
    new Octokit({ baseUrl: apiUrl.replace(/\/+$/, ''), userAgent: 'codex-k8s', log: quiet, ...(token ? { auth: token } : {}) });

  async function ask<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      const status = statusOf(error);
      // 404 is also GitHub's answer for a private repository the token cannot see.
      if (status === 404) return undefined;
      if (status === 401) throw new GithubError(`GitHub refused the token while looking up ${what} (401)`);
      if (status === 403) throw new GithubError(`GitHub refused to show ${what} (403: rate limit or permissions)`);
      throw new GithubError(`GitHub could not be asked about ${what}: ${typeof status === 'number' ? `status ${status}` : (error as Error).message}`);
    }
  }

  return {
    async repository(owner, name, token) {
      const found = await ask(`${owner}/${name}`, () => client(token).rest.repos.get({ owner, repo: name }));
      return found && { id: found.data.id, owner: found.data.owner.login, name: found.data.name };
    },
    async user(login) {
      const found = await ask(`user ${login}`, () => client(null).rest.users.getByUsername({ username: login }));
      return found && { id: found.data.id, login: found.data.login };
    },
  };
}
