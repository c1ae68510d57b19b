/**
 * PostgreSQL as the machine's distribution ships it: its major version (what the `postgresql`
 * package depends on there) and pgvector's package where the distribution has one: Debian 12
 * `postgresql` → `postgresql-15`, no pgvector package (built from trixie's source); Debian 13 → 17
 * with `postgresql-17-pgvector`; Ubuntu 24.04 → 16 with `postgresql-16-pgvector` (universe). The
 * Debian rows are checked against Debian's apt metadata by a test; Ubuntu's archive cannot be reached
 * from where this was written, so its row is what Ubuntu 24.04 ships, not a reading.
 */
export interface PostgresChoice {
  release: string;
  major: string;
  /** The distribution's pgvector package, or null: build it from Debian trixie's source package. */
  pgvectorPackage: string | null;
}

const known: Record<string, Omit<PostgresChoice, 'release'>> = {
  'debian 12': { major: '15', pgvectorPackage: null },
  'debian 13': { major: '17', pgvectorPackage: 'postgresql-17-pgvector' },
  'ubuntu 24.04': { major: '16', pgvectorPackage: 'postgresql-16-pgvector' },
};

/** The choice for an /etc/os-release text; undefined for a release this table does not know. */
export function postgresFor(osRelease: string): PostgresChoice | undefined {
  const field = (name: string) => new RegExp(`^${name}=("?)([^"\\n]*)\\1$`, 'm').exec(osRelease)?.[2] ?? '';
  const release = `${field('ID')} ${field('VERSION_ID')}`;
  const choice = known[release];
  return choice && { release, ...choice };
}

export const knownReleases = Object.keys(known);
