/**
 * What the platform asks GitHub about people an operator names by login: their numeric ids, which
 * is how they are matched from then on. Repositories are asked through their provider
 * (domain/repositories/provider.ts). adapters/github implements both over the REST API.
 */
export interface GithubUser {
  id: number;
  login: string;
}

export interface GithubDirectory {
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
