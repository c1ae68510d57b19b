import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresFor } from '../adapters/postgres/distribution.js';
import { debianApt } from '../adapters/postgres/local-cluster.js';

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

// The Debian rows against Debian's own apt metadata (through a throwaway source list, as the test
// setup fetches kubectl): what `postgresql` depends on in each release, and whether the release has
// the pgvector package for that major.
describe('the Debian rows against Debian\'s apt metadata', () => {
  const suites: [string, 'bookworm' | 'trixie'][] = [['debian 12', 'bookworm'], ['debian 13', 'trixie']];
  for (const [release, suite] of suites) {
    it(`${release} (${suite})`, () => {
      const row = postgresFor(`ID=debian\nVERSION_ID="${release.split(' ')[1]}"\n`)!;
      const work = mkdtempSync(join(tmpdir(), `codexk8s-apt-${suite}-`));
      try {
        const apt = [...debianApt(work, 'deb', suite), '-o', `Dir::Cache=${work}`];
        const run = (tool: string, args: string[]) => spawnSync(tool, [...apt, ...args], { encoding: 'utf8', timeout: 180_000 });
        const update = run('apt-get', ['update', '-q']);
        assert.equal(update.status, 0, update.stderr);
        const depends = run('apt-cache', ['depends', 'postgresql']);
        assert.equal(depends.status, 0, depends.stderr);
        assert.match(depends.stdout, new RegExp(`Depends: postgresql-${row.major}\\n`));
        const pgvector = run('apt-cache', ['show', `postgresql-${row.major}-pgvector`]);
        if (row.pgvectorPackage) assert.match(pgvector.stdout, new RegExp(`^Package: ${row.pgvectorPackage}$`, 'm'));
        else assert.doesNotMatch(pgvector.stdout, /^Package:/m);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
});
