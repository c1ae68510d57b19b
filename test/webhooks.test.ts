import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import request from 'supertest';
import examples from '@octokit/webhooks-examples' with { type: 'json' };
import { createEventStore, type EventStore } from '../adapters/postgres/event-store.js';
import { createApp } from '../adapters/http/server.js';
import { createMetrics } from '../adapters/http/metrics.js';
import { githubWebhook, ingressLimit } from '../adapters/http/webhook.js';
import fc from 'fast-check';
import { runCli } from './support/cli.js';
import { setupCommands } from '../commands/setup.js';
import { defaultTriggers } from '../domain/webhooks/trigger-policy.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { quietLog } from './support/projections.js';
import { rebuild } from '../projections/rebuild.js';
import { agentRuns } from '../projections/read-models/agent-runs.js';

let db: TestDatabase;
let store: EventStore;
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
    mount: (router) => router.post('/api/v1/webhooks/github', githubWebhook({ store, primary: db.pools.primary, triggers: defaultTriggers, learningModeDefault: true, secrets: [secret, oldSecret], metrics })),
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
const setup = () => setupCommands({ store, emailHashKey, now: () => new Date().toISOString() });

async function connectHelloWorld() {
  const commands = setup();
  const meta = setupMeta;
  await commands.allowUser({ email: 'codertocat@example.com', githubLogin: 'Codertocat', platformRole: null }, meta);
  await commands.createProject({ key: 'hello', name: 'Hello' }, meta);
  await commands.addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read_write' }, meta);
  await commands.connectRepository({ projectKey: 'hello', owner: 'Codertocat', name: 'Hello-World', token: null }, () => '', meta);
}

describe('POST /api/v1/webhooks/github', () => {
  it('answers every real example of every event, signed, with 2xx; none starts a run before the repository is connected', async () => {
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

  it('a run:dev label by a read_write member starts one run; a redelivery is a duplicate and writes nothing', async () => {
    await connectHelloWorld();
    const payload = labeledIssue();
    payload.label.name = 'run:dev';
    payload.issue.labels = [{ name: 'run:dev' }];
    const body = JSON.stringify(payload);
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
    const payload = labeledIssue();
    payload.label.name = 'run:dev';
    payload.issue.labels = [{ name: 'run:dev' }];
    payload.issue.updated_at = new Date().toISOString();
    const body = JSON.stringify(payload);
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
    const meta = setupMeta;
    const labelling = () => {
      const payload = labeledIssue();
      payload.label.name = 'run:dev';
      payload.issue.labels = [{ name: 'run:dev' }];
      payload.issue.updated_at = new Date(Date.now() + Math.random() * 1e10).toISOString();
      return JSON.stringify(payload);
    };
    assert.equal((await post('issues', labelling())).body.status, 'accepted'); // the project and user are remembered now
    await commands.addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read' }, meta);
    const guid = randomUUID();
    const refused = await post('issues', labelling(), { 'X-GitHub-Delivery': guid });
    assert.deepEqual([refused.status, refused.body.status, refused.body.reason], [202, 'ignored', 'sender_not_allowed']);
    assert.equal((await store.readStream(`delivery-${guid}`)).length, 1);
    await commands.addMember({ projectKey: 'hello', email: 'codertocat@example.com', role: 'read_write' }, meta);
    assert.equal((await post('issues', labelling())).body.status, 'accepted');
  });

  it('taking the trigger label off cancels the active runs of that issue', async () => {
    await rebuild(agentRuns, { pool: db.pools.primary, store }); // the model the policy reads active runs from
    const { rows } = await db.pools.primary.query<{ id: string }>("SELECT id::text FROM agent_runs WHERE status = 'pending'");
    assert.ok(rows.length >= 1);
    const payload = labeledIssue();
    payload.action = 'unlabeled';
    payload.label.name = 'run:dev';
    payload.issue.labels = [];
    const res = await post('issues', JSON.stringify(payload));
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'canceled');
    assert.deepEqual([...res.body.run_ids].sort(), rows.map((r) => r.id).sort());
    const events = await store.readStream(`run-${rows[0]!.id}`);
    assert.equal(events.at(-1)!.type, 'RunCanceled');
  });

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

  it('answers 429 with Retry-After over the ingress rate limit', async () => {
    const limited = createApp({
      primary: db.pools.primary,
      metrics: createMetrics(),
      log: quietLog,
      mount: (router) => router.post('/api/v1/webhooks/github', ingressLimit(3), githubWebhook({ store, primary: db.pools.primary, triggers: defaultTriggers, learningModeDefault: false, secrets: [secret], metrics })),
    }).callback();
    const body = JSON.stringify(labeledIssue());
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await request(limited).post('/api/v1/webhooks/github')
        .set({ 'Content-Type': 'application/json', 'X-GitHub-Event': 'issues', 'X-GitHub-Delivery': randomUUID(), 'X-Hub-Signature-256': sign(body) }).send(body);
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers['retry-after'];
        assert.equal(res.body.error.code, 'unavailable');
      }
    }
    assert.deepEqual(statuses, [202, 202, 202, 429, 429]);
    assert.match(retryAfter ?? '', /^\d+$/);
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
