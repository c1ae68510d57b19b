import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import request from 'supertest';
import examples from '@octokit/webhooks-examples' with { type: 'json' };
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { githubDirectory } from '../adapters/github/directory.js';
import { startFakeGithub, type FakeGithub } from './support/fake-github.js';
import { createApp } from '../adapters/http/server.js';
import { createMetrics } from '../adapters/http/metrics.js';
import { githubWebhook } from '../adapters/http/webhook.js';
import fc from 'fast-check';
import { runCli } from './support/cli.js';
import { setupCommands } from '../commands/setup.js';
import { defaultTriggers } from '../domain/webhooks/trigger-policy.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { quietLog } from './support/projections.js';
import { before, after } from 'node:test';

let db: TestDatabase;
let store: PostgresEventStore;
let github: FakeGithub;
let server: ReturnType<ReturnType<typeof createApp>['callback']>;
const secret = randomBytes(20).toString('hex');
const oldSecret = randomBytes(20).toString('hex');
const metrics = createMetrics();

useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
  server = createApp({
    primary: db.pools.primary,
    metrics,
    log: quietLog,
    mount: (router) => router.post('/api/v1/webhooks/github', githubWebhook({ store, triggers: defaultTriggers, learningModeDefault: true, secrets: [secret, oldSecret], metrics, limits: { verifiedPerSecond: 1_000_000, unverifiedPerSecondPerAddress: 1_000_000 } })),
  }).callback();
});

const sign = (body: string, key = secret) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
const post = (event: string, body: string, headers: Record<string, string> = {}) =>
  request(server)
    .post('/api/v1/webhooks/github')
    .set({ 'Content-Type': 'application/json', 'X-GitHub-Event': event, 'X-GitHub-Delivery': randomUUID(), 'X-Hub-Signature-256': sign(body), ...headers })
    .send(body);

type Example = { action?: string; [key: string]: unknown };
const all = examples as unknown as { name: string; examples: Example[] }[];
const labeledIssue = () => structuredClone(all.find((e) => e.name === 'issues')!.examples.find((e) => e.action === 'labeled')!) as Example & {
  label: { name: string }; issue: { number: number; labels: { name: string }[]; updated_at: string }; repository: { name: string; owner: { login: string } }; sender: { login: string };
};

const emailHashKey = randomBytes(32);
const setupMeta = { correlationId: 'test', actor: { type: 'system' as const, id: 'test' } };
const setup = () => {
  const directory = githubDirectory(github.url);
  return setupCommands({ store, github: directory, providers: { github: directory }, emailHashKey, now: () => new Date().toISOString() });
};

// The examples' repository and sender, by the numeric ids their payloads carry.
const HELLO_WORLD = 186853002;
const CODERTOCAT = 21031067;
before(async () => {
  github = await startFakeGithub();
  github.addRepository({ id: HELLO_WORLD, owner: 'Codertocat', name: 'Hello-World' });
  github.addUser({ id: CODERTOCAT, login: 'Codertocat' });
});
after(() => github.close());

async function connectHelloWorld() {
  const commands = setup();
  const meta = setupMeta;
  await commands.allowUser({ email: 'codertocat@example.com', githubLogin: 'Codertocat', platformRole: null }, meta);
  await commands.createProject({ key: 'hello', name: 'Hello' }, meta);
  await commands.addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read_write' }, meta);
  await commands.connectRepository({ projectKey: 'hello', provider: 'github', owner: 'Codertocat', name: 'Hello-World', token: null }, () => '', meta);
}

let issueNumber = 1000;
/** A labelling of a fresh issue (its own subject), with the given label added or removed. */
function labelling(label: string, action: 'labeled' | 'unlabeled' = 'labeled', number = ++issueNumber) {
  const payload = labeledIssue();
  payload.action = action;
  payload.label.name = label;
  payload.issue.number = number;
  payload.issue.labels = action === 'labeled' ? [{ name: label }] : [];
  payload.issue.updated_at = new Date(Date.now() + number * 1000).toISOString();
  return { payload, number, body: JSON.stringify(payload) };
}

describe('POST /api/v1/webhooks/github before any repository is connected', () => {
  it('answers every real example of every event, signed, with 2xx; none starts a run', async () => {
    let count = 0;
    for (const group of all) {
      for (const example of group.examples) {
        const res = await post(group.name, JSON.stringify(example));
        assert.ok(res.status === 202, `${group.name}.${example.action ?? ''}: ${res.status} ${JSON.stringify(res.body)}`);
        assert.equal(res.body.status, 'ignored');
        count++;
      }
    }
    assert.ok(count > 300, `${count} examples`);
  });
});

describe('POST /api/v1/webhooks/github with Codertocat/Hello-World connected', () => {
  before(connectHelloWorld);

  it('a run:dev label by a read_write member starts one run; a redelivery is a duplicate and writes nothing', async () => {
    const { body, number } = labelling('run:dev');
    const guid = randomUUID();
    const first = await post('issues', body, { 'X-GitHub-Delivery': guid });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.equal(first.body.status, 'accepted');
    assert.match(first.body.run_id, /^[0-9a-f-]{36}$/);
    assert.equal(first.headers['x-codex-position'], first.body.position);
    const before = (await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events')).rows[0].n;
    const again = await post('issues', body, { 'X-GitHub-Delivery': guid });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { status: 'duplicate' });
    // The same labelling through another hook (another GUID) starts no second run.
    const other = await post('issues', body);
    assert.deepEqual([other.status, other.body.status, other.body.reason], [202, 'ignored', 'duplicate_trigger']);
    const after = (await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events')).rows[0].n;
    assert.equal(after, before + 1, 'only the second delivery\'s own decision was added');
    const [run] = await store.readStream(`run-${first.body.run_id}`);
    assert.equal(run!.type, 'RunRequested');
    assert.equal((run!.data as { learningMode: boolean }).learningMode, true, 'the platform default');
    assert.match((run!.data as { issueBodySha256: string }).issueBodySha256, /^[0-9a-f]{64}$/, 'the body the agent may run on');
    const subject = await store.readStream(`subject-github.${HELLO_WORLD}.issue.${number}`);
    assert.deepEqual(subject.map((e) => [e.type, (e.data as { runId: string }).runId]), [['SubjectRunRequested', first.body.run_id]]);
  });

  it('with the repository connected and its sender a member, no example but a trigger label starts a run', async () => {
    const accepted: string[] = [];
    for (const group of all) {
      for (const example of group.examples) {
        const res = await post(group.name, JSON.stringify(example));
        assert.ok(res.status === 202, `${group.name}.${example.action ?? ''}: ${res.status}`);
        if (res.body.status === 'accepted') accepted.push(`${group.name}.${example.action}`);
      }
    }
    assert.deepEqual(accepted, []);
  });

  it('50 copies of one delivery at the same instant: one decision, 49 duplicates', async () => {
    const { body } = labelling('run:dev');
    const guid = randomUUID();
    const answers = await Promise.all(Array.from({ length: 50 }, () => post('issues', body, { 'X-GitHub-Delivery': guid })));
    const statuses = answers.map((a) => a.body.status).sort();
    assert.deepEqual(statuses.filter((s) => s !== 'duplicate'), ['accepted']);
    assert.equal(statuses.filter((s) => s === 'duplicate').length, 49);
    const events = await store.readStream(`delivery-${guid}`);
    assert.equal(events.length, 1);
  });

  it('a change to the sender\'s role after a decision is seen by the next delivery (remembered states are guarded)', async () => {
    const commands = setup();
    assert.equal((await post('issues', labelling('run:dev').body)).body.status, 'accepted'); // the project and user are remembered now
    await commands.addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read' }, setupMeta);
    try {
      const guid = randomUUID();
      const refused = await post('issues', labelling('run:dev').body, { 'X-GitHub-Delivery': guid });
      assert.deepEqual([refused.status, refused.body.status, refused.body.reason], [202, 'ignored', 'sender_not_allowed']);
      assert.equal((await store.readStream(`delivery-${guid}`)).length, 1);
    } finally {
      await commands.addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read_write' }, setupMeta);
    }
    assert.equal((await post('issues', labelling('run:dev').body)).body.status, 'accepted');
  });

  it('a demotion in flight and a delivery serialise: the delivery waits for the guard\'s lock and decides on the demoted role', async () => {
    assert.equal((await post('issues', labelling('run:dev').body)).body.status, 'accepted'); // project and user remembered
    const project = (await store.readStream(`repository-github.${HELLO_WORLD}`))[0]!.data as { owner: string };
    const user = (await store.readStream(`github_user-${CODERTOCAT}`))[0]!.data as { owner: string };
    const projectId = project.owner.replace('project-', '');
    const userId = user.owner.replace('user-', '');
    const waiting = async () => {
      for (;;) {
        const { rows } = await db.pools.primary.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
        if (rows[0].n > 0) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    let delivery: Promise<request.Response> | undefined;
    await store.transaction(async (tx) => {
      const version = (await store.readStream(project.owner)).length;
      await store.append([{ stream: project.owner, expected: version, events: [{ type: 'MemberRoleChanged', data: { projectId, userId, role: 'read' } }] }], setupMeta, tx);
      // The delivery starts while the demotion is written but not committed.
      delivery = post('issues', labelling('run:dev').body).then((r) => r);
      await Promise.race([waiting(), delivery]);
    });
    try {
      const answer = await delivery!;
      assert.deepEqual([answer.body.status, answer.body.reason], ['ignored', 'sender_not_allowed']);
    } finally {
      await setup().addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read_write' }, setupMeta);
    }
  });

  it('a label taken off right after it was added cancels its run, with no read model running (10 of 10)', async () => {
    for (let i = 0; i < 10; i++) {
      const added = labelling('run:dev');
      const started = await post('issues', added.body);
      assert.equal(started.body.status, 'accepted');
      const removed = labelling('run:dev', 'unlabeled', added.number);
      const res = await post('issues', removed.body);
      assert.deepEqual([res.status, res.body.status, res.body.run_ids], [202, 'canceled', [started.body.run_id]], `try ${i + 1}`);
      const events = await store.readStream(`run-${started.body.run_id}`);
      assert.deepEqual(events.map((e) => e.type), ['RunRequested', 'RunCanceled']);
      assert.deepEqual((events[1]!.data as { canceledBy: unknown }).canceledBy, { githubUserId: CODERTOCAT, login: 'Codertocat' }, 'the cancel records its sender');
    }
  });

  it('an issue number GitHub never gives (not a whole number from 1 to 2^31-1) starts nothing (found by a review: such runs launched, then their events were parked by the read model)', async () => {
    for (const bad of [-1, 0, 1.5, 3_000_000_000, 1e300]) {
      const { payload } = labelling('run:dev');
      payload.issue.number = bad;
      const res = await post('issues', JSON.stringify(payload));
      assert.deepEqual([res.status, res.body.status, res.body.reason], [202, 'ignored', 'not_a_trigger'], `issue number ${bad}`);
      assert.equal(res.body.run_ids ?? res.body.run_id, undefined, `no run for ${bad}`);
    }
  });

  it('a label put back in the second it was taken off starts a new run (found by a review: GitHub\'s times are whole seconds, so it named the canceled run)', async () => {
    const added = labelling('run:dev');
    const first = await post('issues', added.body);
    assert.equal(first.body.status, 'accepted');
    const removed = labelling('run:dev', 'unlabeled', added.number);
    removed.payload.issue.updated_at = added.payload.issue.updated_at;
    assert.equal((await post('issues', JSON.stringify(removed.payload))).body.status, 'canceled');
    const again = await post('issues', added.body);
    assert.deepEqual([again.status, again.body.status], [202, 'accepted'], JSON.stringify(again.body));
    assert.notEqual(again.body.run_id, first.body.run_id);
    // The same labelling through another hook is still one run.
    const copy = await post('issues', added.body);
    assert.deepEqual([copy.body.status, copy.body.reason], ['ignored', 'duplicate_trigger']);
    assert.deepEqual((await store.readStream(`run-${again.body.run_id}`)).map((e) => e.type), ['RunRequested']);
  });

  it('two hooks deliver every event: copies of a removal and of a later labelling start no second run (found by a review)', async () => {
    const first = labelling('run:dev');
    const removed = labelling('run:dev', 'unlabeled', first.number);
    removed.payload.issue.updated_at = new Date(Date.parse(first.payload.issue.updated_at) + 1000).toISOString();
    const again = labelling('run:dev', 'labeled', first.number);
    again.payload.issue.updated_at = new Date(Date.parse(first.payload.issue.updated_at) + 2000).toISOString();
    const [a1, b1] = [await post('issues', first.body), await post('issues', first.body)];
    assert.deepEqual([a1.body.status, b1.body.reason], ['accepted', 'duplicate_trigger']);
    assert.equal((await post('issues', JSON.stringify(removed.payload))).body.status, 'canceled');
    const a3 = await post('issues', JSON.stringify(again.payload));
    assert.equal(a3.body.status, 'accepted');
    const b2 = await post('issues', JSON.stringify(removed.payload)); // hook B's copy of the removal, late
    assert.deepEqual([b2.body.status, b2.body.reason], ['ignored', 'nothing_to_cancel'], JSON.stringify(b2.body));
    const b3 = await post('issues', JSON.stringify(again.payload)); // and of the labelling
    assert.deepEqual([b3.body.status, b3.body.reason], ['ignored', 'duplicate_trigger'], JSON.stringify(b3.body));
    assert.deepEqual((await store.readStream(`run-${a3.body.run_id}`)).map((e) => e.type), ['RunRequested']);
  });

  it('a label taken off whose removal arrives before its labelling (deliveries come in any order): the late labelling starts nothing (found by a review)', async () => {
    const added = labelling('run:dev');
    const removed = labelling('run:dev', 'unlabeled', added.number);
    removed.payload.issue.updated_at = new Date(Date.parse(added.payload.issue.updated_at) + 5000).toISOString();
    const early = await post('issues', JSON.stringify(removed.payload));
    assert.deepEqual([early.body.status, early.body.reason], ['ignored', 'nothing_to_cancel']);
    const late = await post('issues', added.body);
    assert.deepEqual([late.status, late.body.status, late.body.reason], [202, 'ignored', 'label_removed_since'], JSON.stringify(late.body));
  });

  it('a cancel of a finished run is a no-op: the outcome stands', async () => {
    const added = labelling('run:dev');
    const started = await post('issues', added.body);
    const stream = `run-${started.body.run_id}`;
    await store.append([{ stream, expected: 1, events: [{ type: 'RunSucceeded', data: { runId: started.body.run_id, finishedAt: new Date().toISOString() } }] }], setupMeta);
    const res = await post('issues', labelling('run:dev', 'unlabeled', added.number).body);
    assert.deepEqual([res.body.status, res.body.reason], ['ignored', 'nothing_to_cancel']);
    assert.deepEqual((await store.readStream(stream)).map((e) => e.type), ['RunRequested', 'RunSucceeded']);
  });

  it('closing the issue cancels every active run on it; another issue\'s runs are untouched', async () => {
    const first = labelling('run:dev');
    const run = (await post('issues', first.body)).body.run_id;
    const elsewhere = (await post('issues', labelling('run:dev').body)).body.run_id;
    const closed = labelling('run:dev', 'labeled', first.number);
    closed.payload.action = 'closed';
    const res = await post('issues', JSON.stringify(closed.payload));
    assert.deepEqual([res.body.status, res.body.run_ids], ['canceled', [run]]);
    assert.equal((await store.readStream(`run-${run}`)).at(-1)!.type, 'RunCanceled');
    assert.equal((await store.readStream(`run-${elsewhere}`)).at(-1)!.type, 'RunRequested');
  });

  it('removing run:dev:revise from a pull request cancels its revise run, and closing a PR cancels too', async () => {
    const pr = () => structuredClone(all.find((e) => e.name === 'pull_request')!.examples.find((e) => e.action === 'labeled')!) as Example & {
      label: { name: string }; pull_request: { number: number; labels: { name: string }[]; updated_at: string };
    };
    for (const ending of ['unlabeled', 'closed'] as const) {
      const number = ++issueNumber;
      const labeled = pr();
      labeled.label.name = 'run:dev:revise';
      labeled.pull_request.number = number;
      labeled.pull_request.labels = [{ name: 'run:dev:revise' }];
      labeled.pull_request.updated_at = new Date(Date.now() + number * 1000).toISOString();
      const started = await post('pull_request', JSON.stringify(labeled));
      assert.equal(started.body.status, 'accepted', JSON.stringify(started.body));
      const ended = structuredClone(labeled);
      ended.action = ending;
      if (ending === 'unlabeled') ended.pull_request.labels = [];
      const res = await post('pull_request', JSON.stringify(ended));
      assert.deepEqual([res.body.status, res.body.run_ids], ['canceled', [started.body.run_id]], ending);
    }
  });

  it('run:dev:revise on a pull request from a fork starts nothing, and says why (by the head repository\'s numeric id)', async () => {
    const labeled = structuredClone(all.find((e) => e.name === 'pull_request')!.examples.find((e) => e.action === 'labeled')!) as Example & {
      label: { name: string }; pull_request: { number: number; labels: { name: string }[]; updated_at: string; head: { repo: { id: number } | null } };
    };
    labeled.label.name = 'run:dev:revise';
    labeled.pull_request.number = ++issueNumber;
    labeled.pull_request.labels = [{ name: 'run:dev:revise' }];
    labeled.pull_request.updated_at = new Date().toISOString();
    labeled.pull_request.head.repo = { ...labeled.pull_request.head.repo!, id: 999_999_999 };
    const fromFork = await post('pull_request', JSON.stringify(labeled));
    assert.deepEqual([fromFork.body.status, fromFork.body.reason], ['ignored', 'pull_request_from_fork']);
    labeled.pull_request.head.repo = null; // the fork was deleted
    const gone = await post('pull_request', JSON.stringify(labeled));
    assert.deepEqual([gone.body.status, gone.body.reason], ['ignored', 'pull_request_from_fork']);
  });

  it('matches the repository by GitHub\'s numeric id: the same name with another id starts nothing; a renamed one still starts, under its new name', async () => {
    const impostor = labelling('run:dev');
    (impostor.payload.repository as unknown as { id: number }).id = 337911632; // an example's other Codertocat/Hello-World
    const refused = await post('issues', JSON.stringify(impostor.payload));
    assert.deepEqual([refused.body.status, refused.body.reason], ['ignored', 'repository_not_connected']);

    const renamed = labelling('run:dev');
    renamed.payload.repository.name = 'Hello-Universe';
    const started = await post('issues', JSON.stringify(renamed.payload));
    assert.equal(started.body.status, 'accepted');
    const { rows } = await db.pools.primary.query<{ payload: { owner: string; name: string } }>(
      "SELECT payload FROM flow_events WHERE event_type = 'RepositoryRenamed' ORDER BY position DESC LIMIT 1");
    assert.deepEqual([rows[0]?.payload.owner, rows[0]?.payload.name], ['Codertocat', 'Hello-Universe']);
    // Renamed back, so the other tests see the examples' name again.
    assert.equal((await post('issues', labelling('run:dev').body)).body.status, 'accepted');
  });

  it('matches the sender by GitHub\'s numeric id: a login taken over by another account has no rights', async () => {
    const taken = labelling('run:dev');
    (taken.payload.sender as unknown as { id: number }).id = 99999999;
    const res = await post('issues', JSON.stringify(taken.payload));
    assert.deepEqual([res.body.status, res.body.reason], ['ignored', 'sender_not_allowed']);
    const untyped = labelling('run:dev');
    delete (untyped.payload.sender as unknown as { type?: string }).type;
    assert.deepEqual((await post('issues', JSON.stringify(untyped.payload))).body.reason, 'sender_not_a_user');
  });
});

describe('the webhook ingress', () => {
  it('verifies with a previous secret during a rotation, and counts which one', async () => {
    const body = JSON.stringify(labeledIssue());
    const res = await post('issues', body, { 'X-Hub-Signature-256': sign(body, oldSecret) });
    assert.equal(res.status, 202);
    const text = await metrics.registry.getSingleMetricAsString('codexk8s_webhook_verified_by_secret_total');
    assert.match(text, /secret="1"\} [1-9]/);
  });

  it('refuses bad input and stores nothing of it', async () => {
    const body = JSON.stringify(labeledIssue());
    const before = (await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events')).rows[0].n;
    const cases: [string, () => request.Test, number, string][] = [
      ['no delivery header', () => post('issues', body, { 'X-GitHub-Delivery': '' }), 400, 'invalid_argument'],
      ['no event header', () => post('issues', body, { 'X-GitHub-Event': '' }), 400, 'invalid_argument'],
      ['no signature', () => post('issues', body, { 'X-Hub-Signature-256': '' }), 401, 'unauthorized'],
      ['a wrong signature', () => post('issues', body, { 'X-Hub-Signature-256': sign(body, 'not-the-secret') }), 401, 'unauthorized'],
      ['a sha1 signature', () => post('issues', body, { 'X-Hub-Signature-256': `sha1=${'a'.repeat(40)}` }), 401, 'unauthorized'],
      ['not JSON', () => post('issues', 'not json'), 400, 'invalid_argument'],
      ['an empty body', () => post('issues', ''), 400, 'invalid_argument'],
    ];
    for (const [name, send, status, code] of cases) {
      const res = await send();
      assert.equal(res.status, status, name);
      assert.equal(res.body.error.code, code, name);
      assert.ok(!JSON.stringify(res.body).includes(secret), name);
    }
    const after = (await db.pools.primary.query('SELECT count(*)::int AS n FROM flow_events')).rows[0].n;
    assert.equal(after, before);
  });

  it('refuses a body over 25 MiB with 413', async () => {
    const huge = Buffer.alloc(25 * 1024 * 1024 + 10, 'a').toString();
    const res = await post('issues', huge, { 'X-Hub-Signature-256': `sha256=${'0'.repeat(64)}` });
    assert.equal(res.status, 413);
  });

  const limitedApp = (verifiedPerSecond: number, unverifiedPerSecondPerAddress: number) => createApp({
    trustedProxyHops: 1, // the tests speak for several addresses through X-Forwarded-For
    primary: db.pools.primary,
    metrics: createMetrics(),
    log: quietLog,
    mount: (router) => router.post('/api/v1/webhooks/github', githubWebhook({ store, triggers: defaultTriggers, learningModeDefault: false, secrets: [secret], metrics, limits: { verifiedPerSecond, unverifiedPerSecondPerAddress } })),
  }).callback();
  const postTo = (app: ReturnType<typeof limitedApp>, body: string | Buffer, signature: string, from = '203.0.113.9') =>
    request(app).post('/api/v1/webhooks/github').set('X-Forwarded-For', from)
      .set({ 'Content-Type': 'application/json', 'X-GitHub-Event': 'issues', 'X-GitHub-Delivery': randomUUID(), 'X-Hub-Signature-256': signature }).send(body);

  it('answers 429 with Retry-After over the verified-delivery limit', async () => {
    const limited = limitedApp(3, 100);
    const body = JSON.stringify(labeledIssue());
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await postTo(limited, body, sign(body));
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers['retry-after'];
        assert.equal(res.body.error.code, 'unavailable');
      }
    }
    assert.deepEqual(statuses, [202, 202, 202, 429, 429]);
    assert.match(retryAfter ?? '', /^\d+$/);
  });

  it('a flood of unsigned and wrongly signed posts does not make a signed delivery get 429; the flood gets 429 on its own', async () => {
    const limited = limitedApp(5, 10);
    const body = JSON.stringify(labeledIssue());
    const flood: number[] = [];
    const attacker = '198.51.100.7';
    for (let i = 0; i < 60; i++) flood.push((await postTo(limited, body, i % 2 ? '' : sign(body, 'not-the-secret'), attacker)).status);
    assert.deepEqual(flood.slice(0, 10), [401, 401, 401, 401, 401, 401, 401, 401, 401, 401]);
    assert.ok(flood.slice(10).every((s) => s === 429), 'the flooding address is limited on its own');
    // GitHub's deliveries: the whole verified bucket (5) is still theirs, and a signed delivery from
    // the flooding address itself (behind a proxy every sender may share one) is not refused for it.
    const github = await Promise.all([...Array.from({ length: 4 }, () => postTo(limited, body, sign(body), '192.0.2.1')), postTo(limited, body, sign(body), attacker)]);
    assert.deepEqual(github.map((r) => r.status), [202, 202, 202, 202, 202], 'unverified requests never count against deliveries');
    // Only the entries the trusted proxy wrote are believed: a client cannot pick a fresh address.
    const spoofed = await postTo(limited, body, '', `10.0.0.${Math.floor(Math.random() * 200)}, ${attacker}`);
    assert.equal(spoofed.status, 429);
  });

  it('verifies the HMAC over the raw bytes, not over a decoded string', async () => {
    const raw = Buffer.concat([Buffer.from('{"zen":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]); // not UTF-8
    const overBytes = `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
    const overDecoded = sign(raw.toString('utf8')); // what a verifier of the decoded string would accept
    assert.notEqual(overBytes, overDecoded);
    // Sent as bytes (superagent would re-encode a Buffer it takes for JSON).
    const send = (signature: string) => request(server).post('/api/v1/webhooks/github')
      .set({ 'Content-Type': 'application/octet-stream', 'X-GitHub-Event': 'ping', 'X-GitHub-Delivery': randomUUID(), 'X-Hub-Signature-256': signature }).send(raw);
    assert.equal((await send(overDecoded)).status, 401, 'a signature over the decoded text does not verify');
    // Verified over its bytes; then refused for not being UTF-8 (not silently altered).
    const verified = await send(overBytes);
    assert.deepEqual([verified.status, verified.body.error.message], [400, 'the body is not UTF-8 JSON']);
    const utf8 = Buffer.from('{"zen":"é"}');
    const good = await request(server).post('/api/v1/webhooks/github')
      .set({ 'Content-Type': 'application/octet-stream', 'X-GitHub-Event': 'ping', 'X-GitHub-Delivery': randomUUID(), 'X-Hub-Signature-256': `sha256=${createHmac('sha256', secret).update(utf8).digest('hex')}` }).send(utf8);
    assert.equal(good.status, 202, JSON.stringify(good.body));
  });

  it('fuzz: random bodies and headers never get a 5xx', async () => {
    const headerValue = fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('issues', 'pull_request', randomUUID(), `sha256=${'0'.repeat(64)}`));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ maxLength: 2000 }), fc.json({ maxDepth: 4 }), fc.constant(JSON.stringify(labeledIssue()))),
        fc.record({ event: headerValue, guid: headerValue, signature: fc.oneof(headerValue, fc.constant('valid')) }),
        async (body, h) => {
          const headers: Record<string, string> = {};
          const clean = (v: string) => v.replace(/[^\x20-\x7e]/g, '');
          headers['X-GitHub-Event'] = clean(h.event);
          headers['X-GitHub-Delivery'] = clean(h.guid);
          headers['X-Hub-Signature-256'] = h.signature === 'valid' ? sign(body) : clean(h.signature);
          const res = await post('issues', body, headers);
          assert.ok(res.status < 500, `${res.status} ${JSON.stringify(res.body)}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('deliveries list and show explain each decision', async () => {
    const payload = labeledIssue();
    payload.label.name = 'run:dev';
    payload.issue.labels = [{ name: 'run:dev' }, { name: 'run:dev:revise' }];
    const guid = randomUUID();
    const res = await post('issues', JSON.stringify(payload), { 'X-GitHub-Delivery': guid });
    assert.equal(res.body.reason, 'conflicting_trigger_labels');
    const shown = await runCli(['deliveries', 'show', guid, '--json'], db.env);
    assert.equal(shown.code, 0, shown.stderr);
    const delivery = JSON.parse(shown.stdout);
    assert.deepEqual([delivery.decision, delivery.reason, delivery.repository, delivery.number, delivery.sender], ['ignored', 'conflicting_trigger_labels', 'Codertocat/Hello-World', 1, 'Codertocat']);
    assert.ok(!('signature' in delivery) && !shown.stdout.includes(secret));
    const listed = await runCli(['deliveries', 'list', '--limit', '5'], db.env);
    assert.match(listed.stdout, new RegExp(`${guid}\\s+issues\\.labeled\\s+Codertocat/Hello-World#1\\s+run:dev\\s+Codertocat\\s+ignored\\s+conflicting_trigger_labels`));
    const missing = await runCli(['deliveries', 'show', randomUUID()], db.env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no delivery/);
    const bad = await runCli(['deliveries', 'show', 'x'.repeat(500)], db.env);
    assert.match(bad.stderr, /not a delivery GUID/);
  });

  it('no secret, signature or e-mail reaches a stored event, though the examples carry e-mails', async () => {
    assert.ok(JSON.stringify(all).includes('@'), 'the examples have e-mail addresses to leak');
    for (const group of all) for (const example of group.examples) assert.equal((await post(group.name, JSON.stringify(example))).status, 202);
    const { rows } = await db.pools.primary.query<{ row: string }>('SELECT row_to_json(f)::text AS row FROM flow_events f');
    assert.ok(rows.length > 600);
    const log = rows.map((r) => r.row).join('\n');
    for (const secretValue of [secret, oldSecret]) assert.ok(!log.includes(secretValue));
    assert.doesNotMatch(log, /sha256=[0-9a-f]{64}/);
    assert.doesNotMatch(log, /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/);
  });

  it('serves health, readiness and metrics', async () => {
    assert.equal((await request(server).get('/healthz')).status, 200);
    assert.deepEqual((await request(server).get('/readyz')).body, { status: 'ready' });
    const m = await request(server).get('/metrics');
    assert.match(m.text, /codexk8s_webhook_deliveries_total\{event="issues",result="accepted"\}/);
    assert.match(m.text, /codexk8s_webhook_signature_failures_total\{reason="bad_signature"\}/);
  });
});
