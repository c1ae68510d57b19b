/**
 * What the platform asks GitHub about the things an operator names, by name: their numeric ids,
 * which is how they are matched from then on. adapters/github implements it over the REST API.
 */
export interface GithubRepository {
  id: number;
  owner: string;
  name: string;
}

export interface GithubUser {
  id: number;
  login: string;
}

export interface GithubDirectory {
  /** The repository as `token` sees it (which proves the token can read it); undefined when it cannot be seen. */
  repository(owner: string, name: string, token: string | null): Promise<GithubRepository | undefined>;
  /** A user by login; undefined when there is none. */
  user(login: string): Promise<GithubUser | undefined>;
}

/**
 * GitHub's OAuth web flow with PKCE, for staff sign-in (adapters/github/oauth.ts). The access token
 * it hands back is used for `identity` during the callback only, and never kept.
 */
export interface GithubLogin {
  authorizeUrl(request: { state: string; codeChallenge: string; redirectUri: string }): string;
  exchangeCode(request: { code: string; codeVerifier: string; redirectUri: string }): Promise<string>;
  identity(accessToken: string): Promise<{ id: number; login: string; verifiedEmails: string[] }>;
}
