import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from './support/cluster.js';
import { operator, startStaffApi, type StaffApi } from './support/staff-api.js';
import { githubOAuth } from '../adapters/github/oauth.js';
import { findBinDir } from '../adapters/postgres/local-cluster.js';
import { runCli } from './support/cli.js';
import { staffSecrets } from './support/secrets.js';

const clientId = `Iv1.${randomBytes(8).toString('hex')}`;
const clientSecret = `secret-${randomBytes(20).toString('hex')}`;
const publicUrl = 'http://staff.example.test';

let db: TestDatabase;
let api: StaffApi;
before(async () => {
  db = await createTestDatabase();
  api = await startStaffApi(db, {
    env: { CODEXK8S_GITHUB_OAUTH_CLIENT_ID: clientId, CODEXK8S_GITHUB_OAUTH_CLIENT_SECRET: clientSecret, CODEXK8S_PUBLIC_URL: publicUrl },
    githubLogin: (url) => githubOAuth({ oauthUrl: url, apiUrl: url, clientId, clientSecret }),
  });
  api.github.oauthApp({ clientId, clientSecret });
});
after(async () => {
  await api?.close();
  await db?.drop();
});

/** Everything a secret-free dump and log must not hold: filled as the tests use them. */
const secrets = new Set<string>([clientSecret, staffSecrets.CODEXK8S_JWT_KEYS.split(':')[1]!, staffSecrets.CODEXK8S_EMAIL_HASH_KEY.split(':')[1]!]);
let githubIds = 9_000_000;
const person = (email: string, verified = true) => ({ id: ++githubIds, login: `person${githubIds}`, emails: [{ email, verified, primary: true }] });

/** Starts a login: the redirect to GitHub's authorize page. */
async function startLogin(): Promise<URL> {
  const res = await request(api.app).get('/api/v1/auth/github/login');
  assert.equal(res.status, 302);
  return new URL(res.headers.location!);
}
const callback = (url: string) => {
  const parsed = new URL(url);
  return request(api.app).get(`${parsed.pathname}${parsed.search}`);
};
const flowEvents = async () => Number((await db.pools.primary.query<{ n: string }>('SELECT count(*) AS n FROM flow_events')).rows[0]!.n);

describe('GitHub sign-in with PKCE, no self-signup', () => {
  it('redirects to GitHub with the client id, the callback, a state and an S256 challenge', async () => {
    const authorize = await startLogin();
    assert.equal(authorize.origin, api.github.url);
    assert.equal(authorize.pathname, '/login/oauth/authorize');
    assert.equal(authorize.searchParams.get('client_id'), clientId);
    assert.equal(authorize.searchParams.get('redirect_uri'), `${publicUrl}/api/v1/auth/github/callback`);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.match(authorize.searchParams.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(authorize.searchParams.get('state'));
    assert.notEqual((await startLogin()).searchParams.get('state'), authorize.searchParams.get('state'), 'a state per login');
  });

  it('lets in an allowed person, links their GitHub account at the first login, and answers a working token', async () => {
    const email = `Allowed.${randomUUID().slice(0, 8)}@Example.com`;
    const { userId } = await api.setup.allowUser({ email: email.toLowerCase(), githubLogin: null, platformRole: 'admin' }, operator());
    const github = person(email);
    const answer = await callback(api.github.approve((await startLogin()).toString(), github));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.token_type, 'Bearer');
    assert.ok(Date.parse(answer.body.expires_at) > Date.now() + 14 * 60_000 && Date.parse(answer.body.expires_at) <= Date.now() + 15 * 60_000 + 1000, 'lives 15 minutes');
    assert.deepEqual(answer.body.user, { id: userId, platform_role: 'admin', github: { id: github.id, login: github.login } });
    secrets.add(answer.body.token);
    const me = await request(api.app).get('/api/v1/me').set('Authorization', `Bearer ${answer.body.token}`);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body.github, { id: github.id, login: github.login });
    const second = await callback(api.github.approve((await startLogin()).toString(), { ...github, login: `${github.login}-renamed` }));
    assert.equal(second.status, 200, 'the same account again, under a new login');
    assert.equal(second.body.user.github.login, `${github.login}-renamed`);
    secrets.add(second.body.token);
    const other = await callback(api.github.approve((await startLogin()).toString(), { ...person(email) }));
    assert.equal(other.status, 403, 'another GitHub account with the same e-mail is not that user');
  });

  it('a linked account lets in its own user, whatever order its e-mails come in', async () => {
    const [a, b] = ['a', 'b'].map((x) => `${x}-${randomUUID().slice(0, 8)}@example.com`) as [string, string];
    await api.setup.allowUser({ email: a, githubLogin: null, platformRole: null }, operator());
    const { userId } = await api.setup.allowUser({ email: b, githubLogin: null, platformRole: null }, operator());
    const github = person(b);
    assert.equal((await callback(api.github.approve((await startLogin()).toString(), github))).status, 200);
    // The account now also shows A's e-mail, listed first: it is still B's account, and B gets in.
    const both = { ...github, emails: [{ email: a, verified: true, primary: true }, { email: b, verified: true }] };
    const again = await callback(api.github.approve((await startLogin()).toString(), both));
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.user.id, userId);
    secrets.add(again.body.token);
  });

  it('refuses an unknown or unverified e-mail with 403 and creates nothing', async () => {
    const unknown = `stranger-${randomUUID().slice(0, 8)}@example.com`;
    const allowedButUnverified = `unverified-${randomUUID().slice(0, 8)}@example.com`;
    await api.setup.allowUser({ email: allowedButUnverified, githubLogin: null, platformRole: null }, operator());
    for (const github of [person(unknown), person(allowedButUnverified, false)]) {
      const authorize = (await startLogin()).toString();
      const before = await flowEvents();
      const res = await callback(api.github.approve(authorize, github));
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'forbidden');
      assert.equal(await flowEvents(), before + 1, 'only the state\'s single use is recorded');
      const types = (await db.pools.primary.query<{ event_type: string }>('SELECT event_type FROM flow_events ORDER BY epoch DESC, tx_id DESC, position DESC LIMIT 1')).rows;
      assert.deepEqual(types.map((r) => r.event_type), ['OAuthStateRedeemed']);
    }
  });

  it('refuses a forged state, a replayed state and a wrong verifier', async () => {
    const email = `flow-${randomUUID().slice(0, 8)}@example.com`;
    await api.setup.allowUser({ email, githubLogin: null, platformRole: null }, operator());
    const github = person(email);

    const forgedAuthorize = await startLogin();
    const [h, p] = forgedAuthorize.searchParams.get('state')!.split('.');
    forgedAuthorize.searchParams.set('state', `${h}.${p}.${randomBytes(32).toString('base64url')}`);
    const forged = await callback(api.github.approve(forgedAuthorize.toString(), github));
    assert.equal(forged.status, 400);
    assert.match(forged.body.error.message, /state is not valid/);

    const made = await callback(api.github.approve((await startLogin()).toString(), github));
    assert.equal(made.status, 200);
    secrets.add(made.body.token);
    const replayedUrl = api.github.approve((await startLogin()).toString(), github);
    assert.equal((await callback(replayedUrl)).status, 200);
    const replayed = await callback(replayedUrl);
    assert.equal(replayed.status, 400);
    assert.match(replayed.body.error.message, /used already/);

    // A code obtained for one login's challenge, brought back with another login's state: the verifiers differ.
    const codeOfA = new URL(api.github.approve((await startLogin()).toString(), github)).searchParams.get('code')!;
    const stateOfB = (await startLogin()).searchParams.get('state')!;
    const crossed = await request(api.app).get('/api/v1/auth/github/callback').query({ code: codeOfA, state: stateOfB });
    assert.equal(crossed.status, 401);
    assert.equal(crossed.body.error.code, 'unauthorized');

    const declined = await request(api.app).get('/api/v1/auth/github/callback').query({ error: 'access_denied', state: stateOfB });
    assert.equal(declined.status, 403);
    const missing = await request(api.app).get('/api/v1/auth/github/callback');
    assert.equal(missing.status, 400);
    const extra = await request(api.app).get('/api/v1/auth/github/callback').query({ code: 'x', state: 'y', admin: 'true' });
    assert.equal(extra.status, 400);
  });
});

describe('auth token (break-glass and automation)', () => {
  const env = () => ({ ...db.env, ...staffSecrets });

  it('prints a token for an allowed user that the API takes, with --ttl', async () => {
    const email = `cli-${randomUUID().slice(0, 8)}@example.com`;
    const { userId } = await api.setup.allowUser({ email, githubLogin: null, platformRole: null }, operator());
    const printed = await runCli(['auth', 'token', email, '--ttl', '5m', '--json'], env());
    assert.equal(printed.code, 0, printed.stderr);
    const answer = JSON.parse(printed.stdout) as { token: string; expires_at: string; user_id: string };
    secrets.add(answer.token);
    assert.equal(answer.user_id, userId);
    assert.ok(Date.parse(answer.expires_at) <= Date.now() + 5 * 60_000 + 1000);
    assert.equal((await request(api.app).get('/api/v1/me').set('Authorization', `Bearer ${answer.token}`)).status, 200);
    const plain = await runCli(['auth', 'token', email], env());
    assert.match(plain.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    secrets.add(plain.stdout.trim());
  });

  it('refuses an unknown e-mail, a bad ttl, missing keys and unknown options with one line', async () => {
    const cases: [string[], Record<string, string | undefined>, RegExp][] = [
      [['auth', 'token', 'nobody@example.com'], env(), /no allowed user has that e-mail/],
      [['auth', 'token', 'not-an-email'], env(), /not an e-mail address/],
      [['auth', 'token', 'a@example.com', '--ttl', 'forever'], env(), /--ttl must be a duration/],
      [['auth', 'token', 'a@example.com', '--ttl', '48h'], env(), /--ttl must be between/],
      [['auth', 'token', 'a@example.com'], { ...env(), CODEXK8S_JWT_KEYS: undefined }, /CODEXK8S_JWT_KEYS is not set/],
      [['auth', 'token', 'a@example.com', '--yes'], env(), /unknown option/],
    ];
    for (const [args, environment, message] of cases) {
      const result = await runCli(args, environment);
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.equal(result.stdout, '');
    }
  });
});

describe('no token, secret or e-mail leaves a trace', () => {
  it('the database dump and the captured logs hold none of those used here', async () => {
    const emails = (await db.pools.primary.query<{ n: string }>('SELECT count(*) AS n FROM users')).rows[0]!.n;
    assert.ok(Number(emails) > 0);
    // The access tokens GitHub handed out during these logins, as the fake saw them used.
    for (const r of api.github.requests) if (r.authorization) secrets.add(r.authorization.replace(/^(bearer|token) /i, ''));
    for (const r of api.github.requests) if (r.body.code) secrets.add(r.body.code);
    const addresses = api.github.requests.length > 0 ? ['@example.com', '@Example.com'] : [];
    const dump = execFileSync(join(findBinDir()!, 'pg_dump'), ['--data-only', db.ownerUrl], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    assert.ok(dump.includes('OAuthStateRedeemed'), 'the dump is of this database');
    const logs = api.logLines.join('');
    for (const secret of [...secrets].filter((s) => s.length >= 8)) {
      assert.ok(!dump.includes(secret), `the dump holds a secret (${secret.slice(0, 6)}…)`);
      assert.ok(!logs.includes(secret), `the logs hold a secret (${secret.slice(0, 6)}…)`);
    }
    for (const address of addresses) {
      assert.ok(!dump.toLowerCase().includes(address.toLowerCase()), 'the dump holds an e-mail address');
      assert.ok(!logs.toLowerCase().includes(address.toLowerCase()), 'the logs hold an e-mail address');
    }
  });
});
