import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { allProjections } from '../projections/index.js';
import { rebuild } from '../projections/rebuild.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runCli } from './support/cli.js';
import { allReadable } from './support/projections.js';
import { startFakeGithub, type FakeGithub } from './support/fake-github.js';

let db: TestDatabase;
useTestDatabase((created) => (db = created));
let github: FakeGithub;
before(async () => {
  github = await startFakeGithub();
  github.addUser({ id: 101, login: 'ada' });
  github.addUser({ id: 102, login: 'grace' });
});
after(() => github.close());

const emailKey = randomBytes(32).toString('base64');
const tokenKeys = `k2:${randomBytes(32).toString('base64')},k1:${randomBytes(32).toString('base64')}`;
const token = `ghp_${randomBytes(18).toString('hex')}`;
const env = () => ({ ...db.env, CODEXK8S_GITHUB_API_URL: github.url, CODEXK8S_EMAIL_HASH_KEY: `e1:${emailKey}`, CODEXK8S_TOKEN_ENCRYPTION_KEYS: tokenKeys, REPO_TOKEN: token });
const cli = (...args: string[]) => runCli(args, env());

describe('setup commands', () => {
  it('users allow: once, then a conflict; the e-mail is never stored', async () => {
    const first = await cli('users', 'allow', 'Ada@Example.com', '--github-login', 'ada', '--platform-role', 'admin', '--json');
    assert.equal(first.code, 0, first.stderr);
    assert.match(JSON.parse(first.stdout).user_id, /^[0-9a-f-]{36}$/);
    const again = await cli('users', 'allow', 'ada@example.com');
    assert.equal(again.code, 1);
    assert.equal(again.stderr.trim(), 'codex-k8s: that user is allowed already'); // the e-mail's own user, decided on its stream
    const login = await cli('users', 'allow', 'other@example.com', '--github-login', 'ADA');
    assert.equal(login.stderr.trim(), 'codex-k8s: a user with that GitHub account is allowed already');
    const unknown = await cli('users', 'allow', 'other@example.com', '--github-login', 'nobody-here');
    assert.equal(unknown.stderr.trim(), 'codex-k8s: GitHub has no user nobody-here');
    const { rows } = await db.pools.primary.query("SELECT payload FROM flow_events WHERE event_type = 'UserAllowed'");
    assert.deepEqual(rows.map((r) => [r.payload.githubUserId, r.payload.githubLogin]), [[101, 'ada']], 'kept by GitHub\'s numeric id');
    const leaked = await db.pools.primary.query("SELECT count(*)::int AS n FROM flow_events WHERE payload::text ILIKE '%example.com%' OR stream_id ILIKE '%example.com%'");
    assert.equal(leaked.rows[0].n, 0);
  });

  it('refuses bad input with one line naming the problem', async () => {
    const cases: [string[], RegExp][] = [
      [['users', 'allow', 'not-an-email'], /not an e-mail address/],
      [['users', 'allow', `${'a'.repeat(5000)}@example.com`], /not an e-mail address/],
      [['users', 'allow', 'x@example.com', '--platform-role', 'god'], /--platform-role must be owner or admin/],
      [['projects', 'create', 'Bad Key'], /a project key is 2-63 characters/],
      [['projects', 'add-member', 'nope', 'ada@example.com', '--role', 'admin'], /project nope not found/],
      [['projects', 'add-member', 'nope', 'ada@example.com', '--role', 'owner'], /--role must be read, read_write or admin/],
      [['projects', 'add-repo', 'nope', 'gitlab', 'a/b'], /the provider is github/],
      [['projects', 'set-slots', 'nope', 'many'], /slots are a whole number from 1 to 100, or default/],
      [['projects', 'set-slots', 'nope', '3'], /project nope not found/],
      [['projects', 'add-repo', 'nope', 'github', 'a/b/c'], /the repository is <owner>\/<name>/],
      // Control characters, refused by the commands themselves, as they are at the API's edge.
      [['projects', 'create', 'ctrl', '--name', 'a\u0001b'], /a project name is 1-200 characters, none of them control characters/],
      [['users', 'allow', 'a\u001bb@example.com'], /not an e-mail address/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      assert.equal(result.code, 1, args.join(' ').slice(0, 60));
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    }
    const unset = await runCli(['users', 'allow', 'x@example.com'], db.env);
    assert.match(unset.stderr, /CODEXK8S_EMAIL_HASH_KEY is not set/);
  });

  it('projects create, add-member, add-repo: duplicates are conflicts, tokens are encrypted', async () => {
    assert.equal((await cli('projects', 'create', 'alpha', '--name', 'Alpha')).code, 0);
    assert.equal((await cli('projects', 'create', 'beta')).code, 0);
    const dup = await cli('projects', 'create', 'alpha');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /project alpha exists already/);

    const slots = await cli('projects', 'set-slots', 'alpha', '3', '--json');
    assert.equal(JSON.parse(slots.stdout).changed, true);
    assert.equal(JSON.parse((await cli('projects', 'set-slots', 'alpha', '3', '--json')).stdout).changed, false, 'the same again changes nothing');
    assert.match((await cli('projects', 'set-slots', 'alpha', '0')).stderr, /slots are a whole number from 1 to 100/);
    const unknownUser = await cli('projects', 'add-member', 'alpha', 'nobody@example.com', '--role', 'read');
    assert.match(unknownUser.stderr, /not allowed on the platform yet/);
    const added = await cli('projects', 'add-member', 'alpha', 'ada@example.com', '--role', 'read', '--json');
    assert.equal(JSON.parse(added.stdout).changed, true);
    const same = await cli('projects', 'add-member', 'alpha', 'ada@example.com', '--role', 'read', '--json');
    assert.equal(JSON.parse(same.stdout).changed, false, 'the same role again changes nothing');
    const promoted = await cli('projects', 'add-member', 'alpha', 'ada@example.com', '--role', 'read_write', '--json');
    assert.equal(JSON.parse(promoted.stdout).changed, true);

    // Private repositories, shown only to their token; GitHub answers 404 to anyone else.
    github.addRepository({ id: 5001, owner: 'octo', name: 'hello', token });
    github.addRepository({ id: 5002, owner: 'octo', name: 'other', token });
    const unseen = await cli('projects', 'add-repo', 'alpha', 'github', 'octo/hello');
    assert.equal(unseen.stderr.trim(), 'codex-k8s: GitHub does not show octo/hello without a token');
    const wrongToken = await runCli(['projects', 'add-repo', 'alpha', 'github', 'octo/hello', '--token-env', 'OTHER'], { ...env(), OTHER: 'ghp_not_it' });
    assert.equal(wrongToken.stderr.trim(), 'codex-k8s: GitHub does not show octo/hello to this token');
    const repo = await cli('projects', 'add-repo', 'alpha', 'github', 'octo/hello', '--token-env', 'REPO_TOKEN', '--json');
    assert.equal(repo.code, 0, repo.stderr);
    assert.deepEqual([JSON.parse(repo.stdout).has_token, JSON.parse(repo.stdout).github_repository_id], [true, 5001]);
    assert.ok(github.requests.some((r) => r.authorization?.endsWith(token)), 'GitHub was asked with the repository\'s own token');
    const taken = await cli('projects', 'add-repo', 'beta', 'github', 'Octo/Hello', '--token-env', 'REPO_TOKEN');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /octo\/hello is connected to a project already/);
    // Renamed on GitHub: the same repository (same id) under a new name is still the one connected.
    github.renameRepository(5001, 'octo', 'hello-renamed');
    const renamed = await cli('projects', 'add-repo', 'beta', 'github', 'octo/hello-renamed', '--token-env', 'REPO_TOKEN');
    assert.match(renamed.stderr, /octo\/hello-renamed is connected to a project already/);
    github.renameRepository(5001, 'octo', 'hello');
    const viaStdin = await runCli(['projects', 'add-repo', 'beta', 'github', 'octo/other', '--token-stdin'], env(), `${token}\n`);
    assert.equal(viaStdin.code, 0, viaStdin.stderr);

    // No token in plaintext anywhere: not in the log, not in answers, not in the read models.
    for (const r of [repo, taken, viaStdin]) assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token));
    const inLog = await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events WHERE payload::text LIKE $1', [`%${token}%`]);
    assert.equal(inLog.rows[0].n, 0);
    const store = createEventStore(db.pools.primary);
    await allReadable(db.pools.primary, store);
    for (const p of allProjections) await rebuild(p, { pool: db.ownerPool, store });
    const { rows } = await db.pools.primary.query("SELECT r.owner, r.name, r.has_token, r.token_key_id, p.key FROM repositories r JOIN projects p ON p.id = r.project_id ORDER BY r.name");
    assert.deepEqual(rows, [
      { owner: 'octo', name: 'hello', has_token: true, token_key_id: 'k2', key: 'alpha' },
      { owner: 'octo', name: 'other', has_token: true, token_key_id: 'k2', key: 'beta' },
    ]);
    const members = await db.pools.primary.query('SELECT m.role, u.github_login, u.platform_role FROM project_members m JOIN users u ON u.id = m.user_id');
    assert.deepEqual(members.rows, [{ role: 'read_write', github_login: 'ada', platform_role: 'admin' }]);
    const dumps = await db.pools.primary.query('SELECT (SELECT string_agg(t::text, \'\') FROM repositories t) || (SELECT string_agg(t::text, \'\') FROM users t) AS all');
    assert.ok(!dumps.rows[0].all.includes(token) && !dumps.rows[0].all.includes('example.com'));
  });
});
