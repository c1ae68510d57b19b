import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { SignJWT, UnsecuredJWT } from 'jose';
import { createTestDatabase, type TestDatabase } from './support/cluster.js';
import { operator, startStaffApi, type StaffApi } from './support/staff-api.js';
import type { FakeFailure } from './support/fake-github.js';
import { actions, can, isProjectAction, principals, type Action, type Principal } from '../domain/access/permissions.js';
import { documentedStatuses } from '../adapters/http/api/openapi.js';
import { ISSUER, AUDIENCE, InvalidTokenError, staffTokens } from '../adapters/http/auth/tokens.js';
import { streamOf } from '../domain/shared/streams.js';
import { routesAsMarkdown, type StaffRoute } from '../adapters/http/api/routes.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../adapters/paths.js';

let db: TestDatabase;
let api: StaffApi;
before(async () => {
  db = await createTestDatabase();
  api = await startStaffApi(db);
});
after(async () => {
  await api?.close();
  await db?.drop();
});

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const unique = () => randomUUID().slice(0, 8);
let githubIds = 5_000_000;

/** Everything one request of the matrix test needs, fresh, so a delete or a cancel affects nothing else. */
async function fixture() {
  const people = {
    owner: await api.person(`owner-${unique()}@example.com`, 'owner'),
    admin: await api.person(`admin-${unique()}@example.com`, 'admin'),
    projectAdmin: await api.person(`padmin-${unique()}@example.com`),
    readWrite: await api.person(`rw-${unique()}@example.com`),
    reader: await api.person(`reader-${unique()}@example.com`),
    outsider: await api.person(`outsider-${unique()}@example.com`),
  };
  const target = await api.person(`target-${unique()}@example.com`);
  const member = await api.person(`member-${unique()}@example.com`);
  const { projectId } = await api.setup.createProject({ key: `p-${unique()}`, name: 'Fixture' }, operator());
  for (const [who, role] of [[people.projectAdmin, 'admin'], [people.readWrite, 'read_write'], [people.reader, 'read'], [member, 'read']] as const) {
    await api.setup.addMember({ projectId, userId: who.userId, role }, operator());
  }
  const githubId = ++githubIds;
  api.github.addRepository({ id: githubId, owner: 'octo', name: `repo-${githubId}` });
  const repository = await api.setup.connectRepository({ projectId, provider: 'github', owner: 'octo', name: `repo-${githubId}`, token: null }, () => 'unused', operator());
  const started = await request(api.app).post('/api/v1/agent-runs').set(bearer(people.owner.token))
    .send({ project_id: projectId, repository_id: repository.repositoryId, kind: 'issue', number: 7, agent: 'dev', correlation_id: `fixture-${unique()}` });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const guid = randomUUID();
  const delivered = await api.store.append([{
    stream: streamOf.delivery(guid), expected: 'no_stream',
    events: [{ type: 'DeliveryDecided', data: { guid, event: 'issues', action: 'labeled', repository: 'octo/x', number: 7, label: 'run:dev', sender: 'someone', bodySha256: 'x', decision: 'ignored', reason: 'repository_not_connected', runIds: [], receivedAt: new Date().toISOString() } }],
  }], operator());
  return { people, target, member, projectId, repositoryId: repository.repositoryId, runId: started.body.id as string, guid, position: delivered.position.toString() };
}
type Fixture = Awaited<ReturnType<typeof fixture>>;

/** The request each endpoint gets in the matrix test: a valid one, so only the role decides. */
function requestFor(route: StaffRoute, f: Fixture): { path: string; body?: object; query?: Record<string, string> } {
  const path = route.path
    .replace(':projectId', f.projectId).replace(':runId', f.runId).replace(':repositoryId', f.repositoryId).replace(':guid', f.guid)
    .replace(':userId', route.path.startsWith('/users') ? f.target.userId : f.member.userId);
  const bodies: Record<string, object> = {
    'post /users': { email: `new-${unique()}@example.com` },
    'post /projects': { key: `n-${unique()}`, name: 'New' },
    'patch /projects/:projectId': { name: 'Renamed' },
    'post /projects/:projectId/members': { user_id: f.target.userId, role: 'read' },
    'put /projects/:projectId/members/:userId': { role: 'read_write' },
    'put /projects/:projectId/members/:userId/learning-mode': { learning_mode: true },
    'post /projects/:projectId/repositories': (() => {
      const id = ++githubIds;
      api.github.addRepository({ id, owner: 'octo', name: `repo-${id}` });
      return { provider: 'github', owner: 'octo', name: `repo-${id}` };
    })(),
    'post /agent-runs': { project_id: f.projectId, repository_id: f.repositoryId, kind: 'issue', number: 8, agent: 'dev', correlation_id: `m-${unique()}` },
  };
  const key = `${route.method} ${route.path}`;
  return { path, ...(bodies[key] ? { body: bodies[key] } : {}), ...(key === 'get /agent-runs' ? { query: { project_id: f.projectId } } : {}) };
}

// Every principal of the matrix, as the fixture person who is one (a new kind of principal fails here).
const personOf: Record<string, keyof Fixture['people']> = {
  owner: 'owner', admin: 'admin', 'project admin': 'projectAdmin', read_write: 'readWrite', read: 'reader', 'signed in, no role': 'outsider',
};
const roles: [keyof Fixture['people'], Principal][] = principals.map(([name, who]) => {
  assert.ok(personOf[name], `no fixture person is a "${name}"`);
  return [personOf[name]!, who];
});

/** What the matrix says a role gets from an endpoint: success, 403, or 404 for a project it may not see. */
const expected = (who: Principal, action: Action): 'allowed' | 403 | 404 =>
  can(who, action) ? 'allowed' : isProjectAction(action) && !can(who, 'project.read') ? 404 : 403;

/** Statuses seen per operation, checked against the OpenAPI document at the end. */
const seen = new Map<string, Set<number>>();
const saw = (route: Pick<StaffRoute, 'method' | 'path'>, status: number) => {
  const key = `${route.method} ${route.path}`;
  if (!seen.has(key)) seen.set(key, new Set());
  seen.get(key)!.add(status);
};

describe('every endpoint against every role of the matrix', () => {
  it('has an action of the matrix for every endpoint, and every action is used', () => {
    const used = new Set(api.routes.map((r) => r.action));
    assert.deepEqual(actions.filter((a) => !used.has(a) && a !== 'users.manage_owners' && a !== 'members.own_learning_mode'), []);
  });

  it('answers each role as the matrix says (generated from the matrix: 6 roles × every endpoint)', async () => {
    let checked = 0;
    for (const route of api.routes) {
      for (const [name, who] of roles) {
        const f = await fixture();
        const { path, body, query } = requestFor(route, f);
        let call = request(api.app)[route.method](`/api/v1${path}`).set(bearer(f.people[name].token)).set('X-Codex-Min-Position', f.position);
        if (query) call = call.query(query);
        const res = body ? await call.send(body) : await call;
        saw(route, res.status);
        const want = expected(who, route.action);
        const label = `${route.method.toUpperCase()} ${route.path} as ${name}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`;
        if (want === 'allowed') {
          assert.ok(res.status >= 200 && res.status < 300, label);
        } else {
          assert.equal(res.status, want, label);
          assert.equal(res.body.error.code, want === 403 ? 'forbidden' : 'not_found', label);
        }
        checked++;
      }
    }
    assert.equal(checked, api.routes.length * roles.length);
  });

  it('lets a member set their own learning mode, but not someone else\'s', async () => {
    const f = await fixture();
    const own = await request(api.app).put(`/api/v1/projects/${f.projectId}/members/${f.people.reader.userId}/learning-mode`).set(bearer(f.people.reader.token)).send({ learning_mode: false });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const other = await request(api.app).put(`/api/v1/projects/${f.projectId}/members/${f.member.userId}/learning-mode`).set(bearer(f.people.reader.token)).send({ learning_mode: false });
    assert.equal(other.status, 403);
  });

  it('lets only an owner make an owner', async () => {
    const f = await fixture();
    const byAdmin = await request(api.app).post('/api/v1/users').set(bearer(f.people.admin.token)).send({ email: `o-${unique()}@example.com`, platform_role: 'owner' });
    assert.equal(byAdmin.status, 403);
    const byOwner = await request(api.app).post('/api/v1/users').set(bearer(f.people.owner.token)).send({ email: `o-${unique()}@example.com`, platform_role: 'owner' });
    assert.equal(byOwner.status, 201);
    const demoteOwner = await request(api.app).post('/api/v1/users').set(bearer(f.people.admin.token)).send({ email: f.people.owner.email, platform_role: null });
    assert.equal(demoteOwner.status, 403, 'an admin cannot unmake an owner');
  });

  it('allowing an allowed e-mail again without a platform role keeps the role it has', async () => {
    const f = await fixture();
    const again = await request(api.app).post('/api/v1/users').set(bearer(f.people.owner.token)).send({ email: f.people.admin.email });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    const me = await request(api.app).get('/api/v1/me').set(bearer(f.people.admin.token));
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.platform_role, 'admin');
  });

  it('says nothing about an e-mail to a caller who may not manage users', async () => {
    const f = await fixture();
    for (const email of [f.people.admin.email, `nobody-${unique()}@example.com`]) {
      const res = await request(api.app).post('/api/v1/users').set(bearer(f.people.reader.token)).send({ email, github_login: 'octocat' });
      assert.equal(res.status, 403, JSON.stringify(res.body));
    }
  });
});

describe('staff tokens', () => {
  const forged = async (f: { key?: Uint8Array; kid?: string; alg?: string; iss?: string; aud?: string; exp?: number; sub: string; allowance?: unknown }) =>
    new SignJWT('allowance' in f ? (f.allowance === undefined ? {} : { allowance: f.allowance }) : { allowance: 1 }).setProtectedHeader({ alg: f.alg ?? 'HS256', kid: f.kid ?? 'test1' }).setSubject(f.sub).setIssuer(f.iss ?? ISSUER).setAudience(f.aud ?? AUDIENCE)
      .setIssuedAt().setExpirationTime(f.exp ?? Math.floor(Date.now() / 1000) + 600).sign(f.key ?? api.config.jwtKeys.current.key);

  it('a token that passed is refused once it expires, and a tampered copy of it never passes', async () => {
    let clock = Date.parse('2026-11-28T12:00:00Z');
    const tokens = staffTokens(api.config.jwtKeys, { ttlSeconds: 60, now: () => clock });
    const subject = { userId: randomUUID(), allowance: 1 };
    const { token } = await tokens.issue(subject);
    assert.deepEqual(await tokens.verify(token), subject);
    clock += 59_000;
    assert.deepEqual(await tokens.verify(token), subject, 'within its lifetime, again');
    const [header, payload, signature] = token.split('.') as [string, string, string];
    await assert.rejects(tokens.verify(`${header}.${payload}.${signature.slice(0, -4)}AAAA`), InvalidTokenError);
    clock += 1_000;
    await assert.rejects(tokens.verify(token), (e: Error) => e instanceof InvalidTokenError && e.message === 'expired');
    await assert.rejects(tokens.verify(token), (e: Error) => e instanceof InvalidTokenError && e.message === 'expired', 'and stays refused');
  });

  it('refuses expired, tampered, unsigned, wrong-algorithm, unknown-kid, wrong-issuer and wrong-audience tokens with 401', async () => {
    const { userId, token } = await api.person(`tok-${unique()}@example.com`);
    const me = (t: string) => request(api.app).get('/api/v1/me').set(bearer(t));
    assert.equal((await me(token)).status, 200, 'the genuine token passes');
    assert.equal((await me(await forged({ sub: userId }))).status, 200, 'a token made the same way passes: the forgeries below differ in one thing');
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const otherPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: randomUUID() })).toString('base64url');
    const bad: [string, string][] = [
      ['expired', await forged({ sub: userId, exp: Math.floor(Date.now() / 1000) - 10 })],
      ['tampered payload', `${header}.${otherPayload}.${signature}`],
      ['tampered signature', `${header}.${payload}.${signature.slice(0, -4)}AAAA`],
      ['unsigned (alg none)', new UnsecuredJWT({ sub: userId, iss: ISSUER, aud: AUDIENCE }).setIssuedAt().setExpirationTime('10m').encode()],
      ['wrong algorithm (HS512)', await forged({ sub: userId, alg: 'HS512' })],
      ['unknown kid', await forged({ sub: userId, kid: 'nobody' })],
      ['another key under our kid', await forged({ sub: userId, key: new Uint8Array(32).fill(7) })],
      ['wrong issuer', await forged({ sub: userId, iss: 'someone-else' })],
      ['wrong audience', await forged({ sub: userId, aud: 'another-api' })],
      ['an allowance that is no count', await forged({ sub: userId, allowance: '1' })],
      ['another allowance (a token from before a removal)', await forged({ sub: userId, allowance: 2 })],
      ['garbage', 'not.a.jwt'],
    ];
    const legacy = await forged({ sub: userId, allowance: undefined });
    assert.equal((await me(legacy)).status, 200, 'a token from before allowances were kept counts as issued under the first');
    for (const [what, forgedToken] of bad) {
      const res = await me(forgedToken);
      assert.equal(res.status, 401, what);
      assert.equal(res.body.error.code, 'unauthorized', what);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="codex-k8s"', what);
    }
    for (const header of [undefined, 'Basic abc', `Bearer ${'x'.repeat(5000)}`, 'Bearer', `bearer ${token} extra`]) {
      const res = header === undefined ? await request(api.app).get('/api/v1/me') : await request(api.app).get('/api/v1/me').set('Authorization', header);
      assert.equal(res.status, 401, String(header).slice(0, 30));
    }
  });

  it('a user taken off the allow-list, or demoted, is treated so at the next request, not at expiry', async () => {
    const admin = await api.person(`adm-${unique()}@example.com`, 'admin');
    const someone = await api.person(`gone-${unique()}@example.com`);
    const { projectId } = await api.setup.createProject({ key: `d-${unique()}`, name: 'D' }, operator());
    await api.setup.addMember({ projectId, userId: someone.userId, role: 'admin' }, operator());
    const patch = () => request(api.app).patch(`/api/v1/projects/${projectId}`).set(bearer(someone.token)).send({ name: `n-${unique()}` });
    assert.equal((await patch()).status, 200);
    const demoted = await request(api.app).put(`/api/v1/projects/${projectId}/members/${someone.userId}`).set(bearer(admin.token)).send({ role: 'read' });
    assert.equal(demoted.status, 200);
    assert.equal((await patch()).status, 403, 'demoted: the next request is refused');
    const removed = await request(api.app).delete(`/api/v1/users/${someone.userId}`).set(bearer(admin.token));
    assert.equal(removed.status, 204);
    const after = await request(api.app).get('/api/v1/me').set(bearer(someone.token));
    assert.equal(after.status, 401, 'removed: the same unexpired token no longer works');
    const again = await request(api.app).post('/api/v1/users').set(bearer(admin.token)).send({ email: someone.email });
    assert.equal(again.status, 201);
    assert.equal(again.body.id, someone.userId, 'allowed again, the same user comes back');
    assert.equal((await request(api.app).get('/api/v1/me').set(bearer(someone.token))).status, 401, 'a token from before the removal stays refused');
    const legacy = await forged({ sub: someone.userId, allowance: undefined });
    assert.equal((await request(api.app).get('/api/v1/me').set(bearer(legacy))).status, 401, 'and so does one from before allowances were kept');
  });

  it('a user allowed again starts afresh: no token, membership or role from before the removal counts', async () => {
    const admin = await api.person(`adm-${unique()}@example.com`, 'admin');
    const someone = await api.person(`back-${unique()}@example.com`);
    const { projectId } = await api.setup.createProject({ key: `r-${unique()}`, name: 'R' }, operator());
    await api.setup.addMember({ projectId, userId: someone.userId, role: 'admin' }, operator());
    const removed = await request(api.app).delete(`/api/v1/users/${someone.userId}`).set(bearer(admin.token));
    const again = await request(api.app).post('/api/v1/users').set(bearer(admin.token)).send({ email: someone.email });
    assert.deepEqual([removed.status, again.status], [204, 201]);
    const old = await request(api.app).get(`/api/v1/projects/${projectId}`).set(bearer(someone.token));
    assert.equal(old.status, 401, 'the token issued before the removal');
    const token = await api.tokenFor(someone.userId);
    const seen = { 'X-Codex-Min-Position': again.headers['x-codex-position']! };
    assert.equal((await request(api.app).get(`/api/v1/projects/${projectId}`).set(bearer(token))).status, 404, 'the old membership does not count');
    assert.equal((await request(api.app).patch(`/api/v1/projects/${projectId}`).set(bearer(token)).send({ name: 'taken over' })).status, 404);
    const mine = await request(api.app).get('/api/v1/projects').set(bearer(token)).set(seen);
    assert.deepEqual(mine.body.items, [], 'nor is the project listed');
    const members = await request(api.app).get(`/api/v1/projects/${projectId}/members`).set(bearer(admin.token)).set(seen);
    assert.equal(members.body.items.some((m: { user_id: string }) => m.user_id === someone.userId), false, 'nor listed as a member');
    const readd = await request(api.app).put(`/api/v1/projects/${projectId}/members/${someone.userId}`).set(bearer(admin.token)).send({ role: 'read' });
    assert.equal(readd.status, 200, JSON.stringify(readd.body));
    const now = { 'X-Codex-Min-Position': readd.headers['x-codex-position']! };
    assert.equal((await request(api.app).get(`/api/v1/projects/${projectId}`).set(bearer(token))).body.my_role, 'read', 'added again, with the role given now');
    assert.equal((await request(api.app).patch(`/api/v1/projects/${projectId}`).set(bearer(token)).send({ name: 'taken over' })).status, 403);
    const listed = await request(api.app).get(`/api/v1/projects/${projectId}/members`).set(bearer(admin.token)).set(now);
    assert.deepEqual(listed.body.items.filter((m: { user_id: string }) => m.user_id === someone.userId).map((m: { role: string }) => m.role), ['read']);
  });
});

describe('commands and queries', () => {
  it('a query reads its own write from the replica through X-Codex-Min-Position', async () => {
    const owner = await api.person(`ryw-${unique()}@example.com`, 'owner');
    for (let i = 0; i < 5; i++) {
      const created = await request(api.app).post('/api/v1/projects').set(bearer(owner.token)).send({ key: `ryw-${unique()}`, name: 'Read your writes', slots: 3 });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.ok(created.headers['x-codex-position']!);
      const read = await request(api.app).get(`/api/v1/projects/${created.body.id}`).set(bearer(owner.token)).set('X-Codex-Min-Position', created.headers['x-codex-position']!);
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.equal(read.body.slots, 3);
      // Created with its settings in one append: never a project without them.
      const { rows } = await db.pools.primary.query<{ event_type: string; tx_id: string }>(
        'SELECT event_type, tx_id::text FROM flow_events WHERE stream_id = $1 ORDER BY stream_position', [`project-${created.body.id}`]);
      assert.deepEqual(rows.map((r) => r.event_type), ['ProjectCreated', 'ProjectSlotsSet']);
      assert.equal(new Set(rows.map((r) => r.tx_id)).size, 1);
    }
  });

  it('the same upsert sent at once from several clients creates once and answers the others 200, not 409', async () => {
    const owner = await api.person(`race-${unique()}@example.com`, 'owner');
    const key = `race-${unique()}`;
    const email = `raced-${unique()}@example.com`;
    const at = (path: string, body: object) => Promise.all(Array.from({ length: 6 }, () => request(api.app).post(path).set(bearer(owner.token)).send(body)));
    for (const [what, answers] of [['POST /projects', await at('/api/v1/projects', { key, name: 'Raced' })], ['POST /users', await at('/api/v1/users', { email })]] as const) {
      assert.deepEqual(answers.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 201], `${what}: ${answers.map((r) => JSON.stringify(r.body)).join(' ')}`);
      assert.equal(new Set(answers.map((r) => r.body.id)).size, 1, `${what}: one id`);
    }
  });

  it('POST /projects upserts by key: created once, then its settings change', async () => {
    const owner = await api.person(`ups-${unique()}@example.com`, 'owner');
    const key = `ups-${unique()}`;
    const first = await request(api.app).post('/api/v1/projects').set(bearer(owner.token)).send({ key, name: 'One' });
    const second = await request(api.app).post('/api/v1/projects').set(bearer(owner.token)).send({ key, name: 'Two', learning_mode: true });
    assert.equal(first.status, 201);
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    const read = await request(api.app).get(`/api/v1/projects/${first.body.id}`).set(bearer(owner.token)).set('X-Codex-Min-Position', second.headers['x-codex-position']!);
    assert.equal(read.body.name, 'Two');
    assert.equal(read.body.learning_mode, true);
  });

  it('pages lists by an opaque cursor: no item twice, none skipped', async () => {
    const owner = await api.person(`page-${unique()}@example.com`, 'owner');
    const member = await api.person(`pm-${unique()}@example.com`);
    let position = '';
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await request(api.app).post('/api/v1/projects').set(bearer(owner.token)).send({ key: `pg-${unique()}`, name: `P${i}` });
      ids.push(created.body.id);
      const added = await request(api.app).post(`/api/v1/projects/${created.body.id}/members`).set(bearer(owner.token)).send({ user_id: member.userId, role: 'read' });
      assert.equal(added.status, 200, JSON.stringify(added.body));
      position = added.headers['x-codex-position']!;
    }
    const got: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await request(api.app).get('/api/v1/projects').query({ limit: '2', ...(cursor ? { cursor } : {}) }).set(bearer(member.token)).set('X-Codex-Min-Position', position);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      got.push(...res.body.items.map((p: { id: string }) => p.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    assert.deepEqual(got, ids, 'a member sees exactly their projects, in order, each once');
    assert.equal(pages, 3);
  });

  it('starts a run by hand once per correlation_id, lists it, shows its events, and cancels it', async () => {
    const f = await fixture();
    const body = { project_id: f.projectId, repository_id: f.repositoryId, kind: 'issue', number: 42, agent: 'dev', correlation_id: `once-${unique()}` };
    const first = await request(api.app).post('/api/v1/agent-runs').set(bearer(f.people.readWrite.token)).send(body);
    const again = await request(api.app).post('/api/v1/agent-runs').set(bearer(f.people.readWrite.token)).send(body);
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    const reused = await request(api.app).post('/api/v1/agent-runs').set(bearer(f.people.readWrite.token)).send({ ...body, number: 43 });
    assert.equal(reused.status, 409, 'a correlation_id names one run');
    const listed = await request(api.app).get('/api/v1/agent-runs').query({ project_id: f.projectId, status: 'pending' })
      .set(bearer(f.people.reader.token)).set('X-Codex-Min-Position', first.headers['x-codex-position']!);
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.ok(listed.body.items.some((r: { id: string; subject: { number: number } }) => r.id === first.body.id && r.subject.number === 42));
    const canceled = await request(api.app).post(`/api/v1/agent-runs/${first.body.id}/cancel`).set(bearer(f.people.readWrite.token));
    assert.equal(canceled.status, 200);
    assert.equal(canceled.body.status, 'canceled');
    const twice = await request(api.app).post(`/api/v1/agent-runs/${first.body.id}/cancel`).set(bearer(f.people.readWrite.token));
    assert.equal(twice.status, 200, 'canceling a finished run is a no-op');
    const events = await request(api.app).get(`/api/v1/agent-runs/${first.body.id}/events`).set(bearer(f.people.reader.token)).set('X-Codex-Min-Position', canceled.headers['x-codex-position']!);
    assert.deepEqual(events.body.items.map((e: { type: string }) => e.type), ['RunRequested', 'RunCanceled']);
    assert.equal(events.body.items[0].actor.id, f.people.readWrite.userId, 'the run names who started it');
  });
});

describe('deliveries', () => {
  it('GET /deliveries/{guid} answers the decision in the API\'s snake_case, as every other answer', async () => {
    const f = await fixture();
    const res = await request(api.app).get(`/api/v1/deliveries/${f.guid}`).set(bearer(f.people.admin.token)).set('X-Codex-Min-Position', f.position);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).filter((k) => !/^[a-z0-9_]+$/.test(k)), [], 'no camelCase keys');
    assert.deepEqual(
      { guid: res.body.guid, decision: res.body.decision, reason: res.body.reason, run_ids: res.body.run_ids, body_sha256: res.body.body_sha256, number: res.body.number },
      { guid: f.guid, decision: 'ignored', reason: 'repository_not_connected', run_ids: [], body_sha256: 'x', number: 7 },
    );
    assert.match(res.body.received_at, /^\d{4}-\d{2}-\d{2}T/);
  });
});

describe('deleted projects', () => {
  it('a deleted project\'s runs leave the lists, as the runs themselves answer 404', async () => {
    const f = await fixture();
    const owner = f.people.owner.token;
    const deleted = await request(api.app).delete(`/api/v1/projects/${f.projectId}`).set(bearer(owner));
    assert.equal(deleted.status, 204);
    const seen = { 'X-Codex-Min-Position': deleted.headers['x-codex-position']! };
    assert.equal((await request(api.app).get(`/api/v1/agent-runs/${f.runId}`).set(bearer(owner)).set(seen)).status, 404);
    for (const who of [owner, f.people.admin.token, f.people.reader.token]) {
      const listed = await request(api.app).get('/api/v1/agent-runs').query({ limit: '200' }).set(bearer(who)).set(seen);
      assert.equal(listed.status, 200);
      assert.equal(listed.body.items.some((r: { id: string }) => r.id === f.runId), false, 'not listed either');
    }
  });
});

describe('correlation ids', () => {
  it('are scoped to a project: the same correlation_id in another project starts another run, and says nothing of the first', async () => {
    const [one, two] = [await fixture(), await fixture()];
    const key = `shared-${unique()}`;
    const start = (f: Fixture) => request(api.app).post('/api/v1/agent-runs').set(bearer(f.people.readWrite.token))
      .send({ project_id: f.projectId, repository_id: f.repositoryId, kind: 'issue', number: 9, agent: 'dev', correlation_id: key });
    const first = await start(one);
    const other = await start(two);
    assert.deepEqual([first.status, other.status], [201, 201], JSON.stringify(other.body));
    assert.notEqual(first.body.id, other.body.id);
    const again = await start(one);
    assert.deepEqual([again.status, again.body.id], [200, first.body.id], 'the same start in the same project is the same run');
    for (const [f, started] of [[one, first], [two, other]] as const) {
      const shown = await request(api.app).get(`/api/v1/agent-runs/${started.body.id}`).set(bearer(f.people.reader.token)).set('X-Codex-Min-Position', other.headers['x-codex-position']!);
      assert.equal(shown.status, 200, `both runs reach the read model: ${JSON.stringify(shown.body)}`);
    }
  });
});

describe('bad input gets a clear error and changes nothing', () => {
  it('refuses malformed, oversized, unknown-field, wrongly typed and duplicate input', async () => {
    const owner = await api.person(`bad-${unique()}@example.com`, 'owner');
    const post = (body: string, type = 'application/json') => request(api.app).post('/api/v1/projects').set(bearer(owner.token)).set('Content-Type', type).send(body);
    const cases: [string, request.Response, number, RegExp][] = [
      ['malformed JSON', await post('{"key": '), 400, /not JSON/],
      ['not an object', await post('[1,2]'), 400, /must be a JSON object/],
      ['oversized', await post(JSON.stringify({ key: 'big', name: 'x'.repeat(20_000) })), 413, /larger than/],
      ['not JSON at all', await post('key=x', 'application/x-www-form-urlencoded'), 415, /application\/json/],
      ['an unknown field', await post(JSON.stringify({ key: 'unk', nmae: 'typo' })), 400, /unknown field "nmae"/],
      ['a wrong type', await post(JSON.stringify({ key: 'typed', slots: 'three' })), 400, /slots must be/],
      ['a bad key', await post(JSON.stringify({ key: 'Not A Key' })), 400, /project key/],
    ];
    for (const [what, res, status, message] of cases) {
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, message, what);
    }
    const secret = `ghp_${randomUUID().replace(/-/g, '')}`;
    const f = await fixture();
    const leaky = await request(api.app).post(`/api/v1/projects/${f.projectId}/repositories`).set(bearer(owner.token)).send({ provider: 'github', owner: 'octo', name: 5, token: secret });
    assert.equal(leaky.status, 400);
    assert.doesNotMatch(JSON.stringify(leaky.body), new RegExp(secret), 'an invalid body is never echoed');
    const cursor = await request(api.app).get('/api/v1/projects').query({ cursor: 'bm90IGEgY3Vyc29y' }).set(bearer(owner.token));
    assert.equal(cursor.status, 400);
    const limit = await request(api.app).get('/api/v1/projects').query({ limit: '100000' }).set(bearer(owner.token));
    assert.equal(limit.status, 400);
    const twice = await request(api.app).get('/api/v1/projects?limit=1&limit=2').set(bearer(owner.token));
    assert.equal(twice.status, 400);
    assert.equal((await request(api.app).get('/api/v1/projects/not-a-uuid').set(bearer(owner.token))).status, 404);
    assert.equal((await request(api.app).get('/api/v1/nothing-here').set(bearer(owner.token))).body.error.code, 'not_found');
    const id = ++githubIds;
    api.github.addRepository({ id, owner: 'octo', name: `dup-${id}` });
    const connect = () => request(api.app).post(`/api/v1/projects/${f.projectId}/repositories`).set(bearer(owner.token)).send({ provider: 'github', owner: 'octo', name: `dup-${id}` });
    assert.equal((await connect()).status, 201);
    const duplicate = await connect();
    assert.equal(duplicate.status, 409, JSON.stringify(duplicate.body));
    const missing = await request(api.app).post(`/api/v1/projects/${f.projectId}/repositories`).set(bearer(owner.token)).send({ provider: 'github', owner: 'octo', name: 'no-such-repo' });
    assert.equal(missing.status, 412);
  });

  it('refuses what the database could not take with 400, never 500: numbers past 32 bits, impossible dates in cursors, control characters', async () => {
    const owner = await api.person(`db-${unique()}@example.com`, 'owner');
    const f = await fixture();
    const cur = (key: unknown[]) => Buffer.from(JSON.stringify(key)).toString('base64url');
    const answers: [string, request.Response][] = [
      // Accepted, it made a run the read model could not hold: listed nowhere, 404 for good.
      ['an issue number past 2^31-1', await request(api.app).post('/api/v1/agent-runs').set(bearer(owner.token))
        .send({ project_id: f.projectId, repository_id: f.repositoryId, kind: 'issue', number: 2_147_483_648, agent: 'dev', correlation_id: `big-${unique()}` })],
      ...(await Promise.all(['2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '0000-01-01T00:00:00Z', '2026-01-01T24:00:00Z'].map(async (time) =>
        [`a cursor at ${time}`, await request(api.app).get('/api/v1/projects').query({ cursor: cur([time, randomUUID()]) }).set(bearer(owner.token))] as [string, request.Response]))),
      ['a runs cursor at 02-30', await request(api.app).get('/api/v1/agent-runs').query({ cursor: cur(['2026-02-30T00:00:00Z', randomUUID()]) }).set(bearer(owner.token))],
      ['NUL in a name', await request(api.app).patch(`/api/v1/projects/${f.projectId}`).set(bearer(owner.token)).send({ name: 'a\u0000b' })],
      ['NUL in a new project', await request(api.app).post('/api/v1/projects').set(bearer(owner.token)).send({ key: `nul-${unique()}`.slice(0, 40), name: 'x\u0000' })],
      ['NUL in a filter', await request(api.app).get('/api/v1/agent-runs?agent=a%00b').set(bearer(owner.token))],
      ['NUL in an e-mail', await request(api.app).post('/api/v1/users').set(bearer(owner.token)).send({ email: 'a\u0000b@example.com' })],
      ['markup in an e-mail', await request(api.app).post('/api/v1/users').set(bearer(owner.token)).send({ email: '<script>@example.com' })],
    ];
    for (const [what, res] of answers) assert.deepEqual([res.status, res.body.error?.code], [400, 'invalid_argument'], `${what}: ${JSON.stringify(res.body)}`);
    const fine = await request(api.app).get('/api/v1/projects').query({ cursor: cur(['2024-02-29T23:59:59.999999Z', randomUUID()]) }).set(bearer(owner.token));
    assert.equal(fine.status, 200, 'a leap day is a date');
  });

  it('says what GitHub did when it could not be asked (412 refused, 502 failed, 503 rate limited), never 500, and connects nothing', async () => {
    const f = await fixture();
    const owner = f.people.owner.token;
    const id = ++githubIds;
    api.github.addRepository({ id, owner: 'octo', name: `flaky-${id}` });
    const connect = (token?: string) => request(api.app).post(`/api/v1/projects/${f.projectId}/repositories`).set(bearer(owner))
      .send({ provider: 'github', owner: 'octo', name: `flaky-${id}`, ...(token ? { token } : {}) });
    const allow = () => request(api.app).post('/api/v1/users').set(bearer(owner)).send({ email: `gh-${unique()}@example.com`, github_login: 'someone' });
    const cases: [string, FakeFailure[], () => Promise<request.Response>, number][] = [
      ['refused credentials', ['unauthorized'], () => connect('ghp_refused'), 412],
      ['a token without the permission', ['forbidden'], () => connect('ghp_forbidden'), 412],
      ['GitHub failing every retry', ['bad_gateway', 'bad_gateway', 'bad_gateway', 'bad_gateway'], () => connect(), 502],
      ['a dropped connection, every retry', ['dropped', 'dropped', 'dropped', 'dropped'], () => connect(), 502],
      ['a rate limit that holds', ['rate_limit', 'rate_limit', 'rate_limit'], () => connect(), 503],
      ['a login looked up while GitHub fails', ['bad_gateway', 'bad_gateway', 'bad_gateway', 'bad_gateway'], allow, 502],
    ];
    for (const [what, failures, call, status] of cases) {
      api.github.failNext(...failures);
      const res = await call();
      saw({ method: 'post', path: what.startsWith('a login') ? '/users' : '/projects/:projectId/repositories' }, res.status);
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, /GitHub/, what);
      assert.doesNotMatch(res.body.error.message, /ghp_/, `${what}: no token in the answer`);
      if (status === 503) assert.match(res.headers['retry-after'] ?? '', /^\d+$/);
    }
    const unknownLogin = await request(api.app).post('/api/v1/users').set(bearer(owner)).send({ email: `gh-${unique()}@example.com`, github_login: 'nobody-there' });
    assert.deepEqual([unknownLogin.status, unknownLogin.body.error.code], [412, 'failed_precondition'], 'a login GitHub does not know is a precondition, like a repository it does not show');
    saw({ method: 'post', path: '/users' }, unknownLogin.status);
    // A token no HTTP header can carry is refused before GitHub is asked.
    const asked = api.github.requests.length;
    const unsendable = await connect('ghp_\u00e9\u0442\u043e\u043a\u0435\u043d');
    assert.deepEqual([unsendable.status, api.github.requests.length], [400, asked], JSON.stringify(unsendable.body));
    const listed = await request(api.app).get(`/api/v1/projects/${f.projectId}/repositories`).set(bearer(owner));
    assert.equal(listed.body.items.some((r: { name: string }) => r.name === `flaky-${id}`), false, 'nothing was connected');
    assert.equal((await connect()).status, 201, 'and once GitHub answers, it connects');
  });

  it('an endpoint that takes no body refuses one (malformed, oversized, with fields, another type) and changes nothing; none or {} is fine', async () => {
    const f = await fixture();
    const owner = f.people.owner.token;
    const cancel = { method: 'post', path: '/agent-runs/:runId/cancel' } as const;
    const removeMember = { method: 'delete', path: '/projects/:projectId/members/:userId' } as const;
    const send = (route: typeof cancel | typeof removeMember, body?: string, type = 'application/json') => {
      const path = `/api/v1${route.path.replace(':runId', f.runId).replace(':projectId', f.projectId).replace(':userId', f.member.userId)}`;
      const req = request(api.app)[route.method](path).set(bearer(owner));
      return body === undefined ? req : req.set('Content-Type', type).send(body);
    };
    const cases: [string, typeof cancel | typeof removeMember, string, string | undefined, number][] = [
      ['malformed JSON', cancel, '{"reason": ', undefined, 400],
      ['a field', cancel, JSON.stringify({ reason: 'because' }), undefined, 400],
      ['oversized', cancel, JSON.stringify({ pad: 'x'.repeat(20_000) }), undefined, 413],
      ['not JSON', removeMember, 'member=x', 'application/x-www-form-urlencoded', 415],
      ['an array', removeMember, '[]', undefined, 400],
    ];
    for (const [what, route, body, type, status] of cases) {
      const res = await send(route, body, type);
      saw(route, res.status);
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      assert.ok(res.body.error?.message, what);
    }
    // After the fixture's last write (read-your-writes: the replica may lag).
    const run = await request(api.app).get(`/api/v1/agent-runs/${f.runId}/events`).set(bearer(owner)).set('X-Codex-Min-Position', f.position);
    assert.deepEqual(run.body.items.map((e: { type: string }) => e.type), ['RunRequested'], 'the run was not canceled');
    const members = await request(api.app).get(`/api/v1/projects/${f.projectId}/members`).set(bearer(owner)).set('X-Codex-Min-Position', f.position);
    assert.ok(members.body.items.some((m: { user_id: string }) => m.user_id === f.member.userId), 'the member was not removed');
    assert.equal((await send(cancel, '{}')).status, 200, 'an empty object is no content');
    assert.equal((await send(removeMember)).status, 204, 'nor is no body at all');
  });

  it('refuses query parameters an endpoint does not take and a malformed X-Codex-Min-Position everywhere; paths are case-sensitive, the auth scheme is not', async () => {
    const f = await fixture();
    const owner = f.people.owner.token;
    const get = (path: string) => request(api.app).get(path).set(bearer(owner));
    const refused: [string, request.Response, number][] = [
      ['an unknown query parameter', await get('/api/v1/me?verbose=1'), 400],
      ['a query on a single project', await get(`/api/v1/projects/${f.projectId}?fields=all`), 400],
      ['a malformed position on /me', await get('/api/v1/me').set('X-Codex-Min-Position', 'soon'), 400],
      ['a malformed position on /agents', await get('/api/v1/agents').set('X-Codex-Min-Position', '-1'), 400],
      ['a path in other case', await get('/API/V1/ME'), 404],
      ['a path in other case, below', await get(`/api/v1/Projects/${f.projectId}`), 404],
    ];
    for (const [what, res, status] of refused) {
      if (status === 400) saw({ method: 'get', path: what.includes('single') ? '/projects/:projectId' : what.endsWith('/agents') ? '/agents' : '/me' }, res.status);
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    }
    const lower = await request(api.app).get('/api/v1/me').set('Authorization', `bearer ${owner}`);
    assert.equal(lower.status, 200, 'the scheme is case-insensitive (RFC 9110)');
  });

  it('POST /projects says the same to someone who may not create projects whether the key exists or not', async () => {
    const f = await fixture();
    const key = (await request(api.app).get(`/api/v1/projects/${f.projectId}`).set(bearer(f.people.owner.token))).body.key as string;
    const outsider = f.people.outsider.token;
    const existing = await request(api.app).post('/api/v1/projects').set(bearer(outsider)).send({ key });
    const absent = await request(api.app).post('/api/v1/projects').set(bearer(outsider)).send({ key: `absent-${unique()}`.slice(0, 40) });
    assert.deepEqual([existing.status, existing.body], [absent.status, absent.body]);
    assert.equal(existing.status, 403);
  });

  it('a method a path does not take is 405 with Allow (OPTIONS lists them), an unknown path 404, both in the error model', async () => {
    const { token } = await api.person(`methods-${unique()}@example.com`);
    const put = await request(api.app).put('/api/v1/me').set(bearer(token)).send({});
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'HEAD, GET');
    assert.equal(put.body.error.code, 'invalid_argument');
    assert.match(put.body.error.message, /PUT is not allowed here; allowed: HEAD, GET/);
    const patch = await request(api.app).patch('/api/v1/projects').send({});
    assert.deepEqual([patch.status, patch.headers.allow], [405, 'HEAD, GET, POST'], 'the same without a token: which methods a path takes is no secret');
    const options = await request(api.app).options('/api/v1/projects/00000000-0000-0000-0000-000000000000/members');
    assert.deepEqual([options.status, options.headers.allow], [200, 'HEAD, GET, POST']);
    const unknown = await request(api.app).get('/api/v1/no-such-thing').set(bearer(token));
    assert.deepEqual([unknown.status, unknown.body], [404, { error: { code: 'not_found', message: 'no such endpoint' } }]);
  });

  it('answers 429 with Retry-After past a user\'s request budget', async () => {
    const limited = await startStaffApi(db, { env: { CODEXK8S_API_RATE_LIMIT: '5' } });
    try {
      const { token } = await limited.person(`rl-${unique()}@example.com`);
      const statuses: number[] = [];
      let retryAfter: string | undefined;
      for (let i = 0; i < 7; i++) {
        const res = await request(limited.app).get('/api/v1/me').set(bearer(token));
        statuses.push(res.status);
        retryAfter ??= res.headers['retry-after'];
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
      assert.match(retryAfter ?? '', /^\d+$/);
    } finally {
      await limited.close();
    }
  });
});

describe('the OpenAPI document', () => {
  it('is served, 3.1, and holds every mounted route and method', async () => {
    const res = await request(api.app).get('/api/v1/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    const mounted = api.mounted.flatMap((l) => (typeof l.path === 'string' ? [{ path: l.path, methods: l.methods }] : []))
      .filter((l) => l.path.startsWith('/api/v1/') && !l.path.endsWith('/webhooks/github') && !l.path.endsWith('/openapi.json'));
    assert.ok(mounted.length >= api.routes.length);
    for (const layer of mounted) {
      const path = layer.path.replace('/api/v1', '').replace(/:(\w+)/g, '{$1}');
      for (const method of layer.methods.filter((m) => m !== 'HEAD')) {
        assert.ok(res.body.paths[path]?.[method.toLowerCase()], `${method} ${path} is in the document`);
      }
    }
  });

  it('is the endpoint table the README prints', () => {
    assert.ok(readFileSync(join(projectRoot, 'README.md'), 'utf8').includes(routesAsMarkdown(api.routes)), 'README.md holds the output of routesAsMarkdown()');
  });

  it('documents every status the endpoints answered in these tests', () => {
    assert.ok(seen.size > 0, 'the matrix test ran first');
    for (const route of api.routes) {
      const documented = documentedStatuses(route);
      for (const status of seen.get(`${route.method} ${route.path}`) ?? []) assert.ok(documented.includes(status), `${route.method} ${route.path} answered ${status}`);
    }
  });
});
