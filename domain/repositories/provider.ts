import * as t from 'io-ts';

/**
 * The hosts repositories are connected from, by kind, with the name people know each by. A kind is
 * all the domain knows of a host: talking to it is its adapter's business (adapters/github), so
 * another host is another adapter and another entry here, and no decision changes.
 */
export const providerNames = { github: 'GitHub' } as const;
export const RepositoryProviderKind = t.keyof(providerNames);
export type RepositoryProviderKind = t.TypeOf<typeof RepositoryProviderKind>;

/** A repository as its host knows it: the numeric id it is kept by (names change and get reused), and its current name. */
export interface ProviderRepository {
  id: number;
  owner: string;
  name: string;
}

export interface RepositoryProvider {
  readonly kind: RepositoryProviderKind;
  /**
   * The repository as `token` sees it (null: anonymously), so finding it proves the token can read
   * it; undefined when it does not exist or the token cannot see it (hosts answer both alike).
   */
  find(owner: string, name: string, token: string | null): Promise<ProviderRepository | undefined>;
}

/** The providers a process has, by kind: connecting a repository picks one by the kind asked for. */
export type RepositoryProviders = Readonly<Partial<Record<RepositoryProviderKind, RepositoryProvider>>>;
