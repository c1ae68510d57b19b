import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { postgresFor } from '../adapters/postgres/distribution.js';

// Given a machine's /etc/os-release, then the PostgreSQL `db up` takes and where pgvector comes from.
const releases: [string, string, ReturnType<typeof postgresFor>][] = [
  ['Debian 12 (this machine, CI)', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n',
    { release: 'debian 12', major: '15', pgvectorPackage: null }],
  ['Debian 13', 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_ID="13"\nID=debian\n', { release: 'debian 13', major: '17', pgvectorPackage: 'postgresql-17-pgvector' }],
  ['Ubuntu 24.04 (the seed\'s server OS)', 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
    { release: 'ubuntu 24.04', major: '16', pgvectorPackage: 'postgresql-16-pgvector' }],
  ['an unknown release', 'ID=fedora\nVERSION_ID="40"\n', undefined],
];

describe('the distribution\'s PostgreSQL', () => {
  for (const [name, osRelease, expected] of releases) it(name, () => assert.deepEqual(postgresFor(osRelease), expected));
});
