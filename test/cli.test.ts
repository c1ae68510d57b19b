import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createEventStore } from '../adapters/postgres/event-store.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runCli } from './support/cli.js';
import { runRequested, systemMeta } from './support/events.js';

let db: TestDatabase;
useTestDatabase((created) => (db = created));

describe('codex-k8s db', () => {
  it('status shows the primary and the streaming replica', async () => {
    const result = await runCli(['db', 'status', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const servers = JSON.parse(result.stdout) as { role: string; running: boolean; inRecovery: boolean; replication?: { state: string }[]; receiving?: { status: string } }[];
    const primary = servers.find((s) => s.role === 'primary')!;
    const replica = servers.find((s) => s.role === 'replica')!;
    assert.equal(primary.running, true);
    assert.equal(primary.inRecovery, false);
    assert.equal(primary.replication?.[0]?.state, 'streaming');
    assert.equal(replica.running, true);
    assert.equal(replica.inRecovery, true);
    assert.equal(replica.receiving?.status, 'streaming');

    const text = await runCli(['db', 'status']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^primary\s+\d+\s+yes\s+primary\s+streaming/m);
    assert.match(text.stdout, /^replica\s+\d+\s+yes\s+standby\s+streaming/m);
  });

  it('up is idempotent and prints the settings to eval', async () => {
    const result = await runCli(['db', 'up']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^export CODEXK8S_DATABASE_URL=postgres:\/\/codexk8s@127\.0\.0\.1:\d+\/codexk8s$/m);
    assert.match(result.stdout, /^export CODEXK8S_DATABASE_OWNER_URL=postgres:\/\/codexk8s_owner@127\.0\.0\.1:\d+\/codexk8s$/m);
    assert.match(result.stdout, /^export CODEXK8S_DATABASE_REPLICA_URLS=postgres:\/\/codexk8s@127\.0\.0\.1:\d+\/codexk8s$/m);
    assert.doesNotMatch(result.stderr, /initialising|pg_basebackup|installing/, 'nothing to do when already up');
  });
});

describe('codex-k8s migrate', () => {
  it('runs as the owner when CODEXK8S_DATABASE_OWNER_URL is set; with only the platform\'s URL it cannot change the schema', async () => {
    const asPlatform = await runCli(['migrate'], { ...db.env, CODEXK8S_DATABASE_OWNER_URL: undefined });
    assert.equal(asPlatform.code, 1);
    assert.match(asPlatform.stderr, /^codex-k8s: migration failed: .*(owner|permission denied)/);
    const asOwner = await runCli(['migrate', '--json'], db.env);
    assert.equal(asOwner.code, 0, asOwner.stderr);
  });

  it('is safe to run twice, also at the same time', async () => {
    const [a, b] = await Promise.all([runCli(['migrate', '--json'], db.env), runCli(['migrate', '--json'], db.env)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(JSON.parse(a.stdout), { applied: [] });
    assert.deepEqual(JSON.parse(b.stdout), { applied: [] });
  });

  it('names the missing or malformed setting', async () => {
    const missing = await runCli(['migrate']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim(), 'codex-k8s: CODEXK8S_DATABASE_URL is not set');
    const malformed = await runCli(['migrate'], { CODEXK8S_DATABASE_URL: 'mysql://x' });
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /CODEXK8S_DATABASE_URL must be a postgres:\/\/ URL/);
    const badReplica = await runCli(['migrate'], { ...db.env, CODEXK8S_DATABASE_REPLICA_URLS: 'not a url' });
    assert.match(badReplica.stderr, /CODEXK8S_DATABASE_REPLICA_URLS is not a URL/);
  });

  it('fails with one line, no password, when the database cannot be reached', async () => {
    const result = await runCli(['migrate'], { CODEXK8S_DATABASE_URL: 'postgres://someone:hunter2secret@127.0.0.1:1/nowhere' });
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /migration failed/);
    assert.doesNotMatch(result.stderr, /hunter2secret/);
  });
});

describe('commands against a database that cannot be reached (found by a review: serve and events tail printed an unexpected error and never exited)', () => {
  for (const args of [['serve', '--role', 'worker'], ['events', 'tail', '--from', 'start'], ['migrate']]) {
    it(`${args.join(' ')}: one line naming the address, no password, exit 1`, async () => {
      const result = await runCli(args, { CODEXK8S_DATABASE_URL: 'postgres://someone:hunter2secret@127.0.0.1:1/nowhere', CODEXK8S_GITHUB_WEBHOOK_SECRET: 'x' });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /127\.0\.0\.1:1/);
      assert.doesNotMatch(result.stderr, /hunter2secret|unexpected/);
    });
  }
});

describe('codex-k8s serve --only', () => {
  it('refuses an empty list (found by a review: it started with no projection at all)', async () => {
    for (const only of [',', '', ' , ']) {
      const result = await runCli(['serve', '--only', only], db.env);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /--only/);
    }
  });
});

describe('codex-k8s events tail', () => {
  it('prints the log from the start, filtered by stream', async () => {
    const store = createEventStore(db.pools.primary);
    const stream = `run-${randomUUID()}`;
    await store.append([{ stream: `run-${randomUUID()}`, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    await store.append([{ stream, expected: 'no_stream', events: [runRequested(), runRequested()] }], systemMeta());
    const result = await runCli(['events', 'tail', '--from', 'start', '--stream', stream, '--limit', '2', '--json'], db.env);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { stream: string; streamPosition: number; type: string });
    assert.deepEqual(lines.map((l) => [l.stream, l.streamPosition, l.type]), [[stream, 1, 'RunRequested'], [stream, 2, 'RunRequested']]);
  });

  it('follows new events as they are appended', async () => {
    const store = createEventStore(db.pools.primary);
    const stream = `run-${randomUUID()}`;
    // From a position read before the append: a tail that starts late (a slow machine) still sees it.
    const head = await store.headPosition();
    const tail = runCli(['events', 'tail', '--from', head.toString(), '--stream', stream, '--limit', '1'], db.env);
    await new Promise((r) => setTimeout(r, 500)); // usually appended while the tail already waits
    await store.append([{ stream, expected: 'no_stream', events: [runRequested()] }], systemMeta());
    const result = await tail;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^\\d+:\\d+:\\d+  \\S+  ${stream}@1  RunRequested  \\{`));
  });

  it('refuses malformed and oversized positions and limits with one line', async () => {
    for (const args of [['--from', 'yesterday'], ['--from', '9'.repeat(5000)], ['--limit', '0'], ['--limit', 'many'], ['--limit', '1.5']]) {
      const result = await runCli(['events', 'tail', ...args], db.env);
      assert.equal(result.code, 1, `${args.join(' ').slice(0, 40)}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split('\n').length, 1);
      assert.ok(result.stderr.length < 300);
    }
  });

  it('rejects an unknown command or option', async () => {
    const unknown = await runCli(['events', 'rewind']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown command/);
    const option = await runCli(['db', 'status', '--yaml']);
    assert.notEqual(option.code, 0);
    assert.match(option.stderr, /unknown option/);
  });
});
