import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { createEventStore, type PostgresEventStore } from '../adapters/postgres/event-store.js';
import { projectRoot } from '../adapters/paths.js';
import { agentRuns } from '../projections/read-models/agent-runs.js';
import { rebuild, rebuildHolder } from '../projections/rebuild.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { runCli } from './support/cli.js';
import { allReadable, appendRuns, contentHash } from './support/projections.js';

let db: TestDatabase;
let store: PostgresEventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

/** What a later migration may name or rely on: index and constraint names, and grants, of a table. */
async function shapeOf(table: string) {
  const indexes = await db.ownerPool.query('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1', [table]);
  const constraints = await db.ownerPool.query('SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass ORDER BY 1', [table]);
  const grants = await db.ownerPool.query('SELECT grantee, privilege_type FROM information_schema.role_table_grants WHERE table_name = $1 ORDER BY 1, 2', [table]);
  return { indexes: indexes.rows.map((r) => r.indexname), constraints: constraints.rows.map((r) => r.conname), grants: grants.rows.map((r) => `${r.grantee}:${r.privilege_type}`) };
}

const status = async () => {
  const result = await runCli(['projections', 'status', '--json'], db.env);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { projections: { name: string; state: string; rebuiltBy: string | null }[] }).projections.find((p) => p.name === 'agent_runs')!;
};

describe('rebuild safety', () => {
  it('keeps the live tables\' index and constraint names and grants', async () => {
    await appendRuns(store, randomUUID(), 20);
    await db.ownerPool.query('DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $r$codexk8s_test_reader$r$) THEN CREATE ROLE codexk8s_test_reader NOLOGIN; END IF; END $$');
    await db.ownerPool.query('GRANT SELECT ON agent_runs, project_run_counts TO codexk8s_test_reader');
    const before = { runs: await shapeOf('agent_runs'), counts: await shapeOf('project_run_counts') };
    assert.ok(before.runs.indexes.includes('agent_runs_pkey') && before.runs.grants.includes('codexk8s_test_reader:SELECT'));
    await rebuild(agentRuns, { pool: db.ownerPool, store });
    assert.deepEqual({ runs: await shapeOf('agent_runs'), counts: await shapeOf('project_run_counts') }, before);
    // The platform's role still writes the new table.
    await db.pools.primary.query('UPDATE agent_runs SET updated_at = updated_at WHERE false');
  });

  it('a second rebuild of the same projection fails at once, naming the holder', async () => {
    const holder = new pg.Client({ connectionString: db.ownerUrl, application_name: 'codex-k8s rebuild elsewhere:4242' });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtextextended('codexk8s.rebuild.' || 'agent_runs', 0))`);
      assert.equal(await rebuildHolder(db.pools.primary, 'agent_runs'), 'elsewhere:4242');
      const started = Date.now();
      await assert.rejects(rebuild(agentRuns, { pool: db.ownerPool, store }), /agent_runs is being rebuilt already by elsewhere:4242/);
      assert.ok(Date.now() - started < 2000, 'at once');
      assert.deepEqual([(await status()).state, (await status()).rebuiltBy], ['rebuilding', 'elsewhere:4242']);
    } finally {
      await holder.end();
    }
    assert.equal(await rebuildHolder(db.pools.primary, 'agent_runs'), null);
  });

  it('the swap waits for a long reader without making other readers queue behind it, then completes', async () => {
    const reader = new pg.Client({ connectionString: db.primaryUrl });
    await reader.connect();
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM agent_runs'); // holds ACCESS SHARE until it ends
    const rebuilding = rebuild(agentRuns, { pool: db.ownerPool, store });
    let done = false;
    void rebuilding.then(() => (done = true), () => (done = true));
    try {
      const slowest: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        await db.pools.primary.query('SELECT count(*) FROM agent_runs');
        slowest.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(done, false, 'the swap waits for the long reader');
      assert.ok(Math.max(...slowest) < 1000, `other readers answered within the swap's lock timeout (slowest ${Math.round(Math.max(...slowest))} ms)`);
    } finally {
      await reader.query('COMMIT');
      await reader.end();
    }
    const result = await rebuilding;
    assert.ok(result.events > 0);
  });

  it('a rebuild interrupted with SIGINT drops its shadows and releases its lock', async () => {
    await appendRuns(store, randomUUID(), 1500);
    const before = await contentHash(db.pools.primary, 'agent_runs', 't.id');
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), 'projections', 'rebuild', 'agent_runs', '--yes', '--batch-size', '5'], {
      env: { ...process.env, ...db.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; i < 400 && !(await rebuildHolder(db.pools.primary, 'agent_runs')); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(await rebuildHolder(db.pools.primary, 'agent_runs'), 'the rebuild is under way');
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGINT');
      assert.equal(await exited, 1, stderr);
    } finally {
      child.kill('SIGKILL');
    }
    assert.match(stderr, /interrupted; the live model is untouched/);
    assert.equal((await db.pools.primary.query("SELECT 1 FROM pg_tables WHERE tablename LIKE '%\\_\\_rebuild'")).rowCount, 0, 'no shadow left');
    assert.equal(await rebuildHolder(db.pools.primary, 'agent_runs'), null);
    assert.notEqual((await status()).state, 'rebuilding');
    assert.equal(await contentHash(db.pools.primary, 'agent_runs', 't.id'), before);
  });

  it('a rebuild killed midway leaves no "rebuilding" behind, and the next one succeeds', async () => {
    await appendRuns(store, randomUUID(), 1500);
    await allReadable(db.pools.primary, store);
    await rebuild(agentRuns, { pool: db.ownerPool, store }); // the live model has every event; no runner is running
    const before = await contentHash(db.pools.primary, 'agent_runs', 't.id');
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), 'projections', 'rebuild', 'agent_runs', '--yes', '--batch-size', '5'], {
      env: { ...process.env, ...db.env },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; i < 400 && !(await rebuildHolder(db.pools.primary, 'agent_runs')); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(await rebuildHolder(db.pools.primary, 'agent_runs'), 'the rebuild is under way');
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    for (let i = 0; i < 200 && (await rebuildHolder(db.pools.primary, 'agent_runs')); i++) await new Promise((r) => setTimeout(r, 10));
    const shadows = await db.pools.primary.query("SELECT 1 FROM pg_tables WHERE tablename = 'agent_runs__rebuild'");
    assert.equal(shadows.rowCount, 1, 'the killed rebuild could not clean up its shadow');
    assert.notEqual((await status()).state, 'rebuilding');
    assert.equal(await contentHash(db.pools.primary, 'agent_runs', 't.id'), before, 'the live model is untouched');
    const again = await runCli(['projections', 'rebuild', 'agent_runs', '--yes'], db.env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await contentHash(db.pools.primary, 'agent_runs', 't.id'), before);
    assert.equal((await db.pools.primary.query("SELECT 1 FROM pg_tables WHERE tablename LIKE '%\\_\\_rebuild'")).rowCount, 0);
  });
});
