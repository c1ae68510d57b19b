import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createEventStore, type EventStore } from '../adapters/postgres/event-store.js';
import { projectRoot } from '../adapters/paths.js';
import { readCheckpoint } from '../projections/checkpoints.js';
import { useTestDatabase, type TestDatabase } from './support/cluster.js';
import { appendRuns, caughtUp } from './support/projections.js';

let db: TestDatabase;
let store: EventStore;
useTestDatabase((created) => {
  db = created;
  store = createEventStore(db.pools.primary);
});

function serveWorker(): ChildProcess {
  return spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), 'serve', '--role', 'worker', '--only', 'agent_runs'], {
    // Port 0: the kernel's choice (on 8080 it failed beside a running `npm start`).
    env: { ...process.env, ...db.env, CODEXK8S_HTTP_PORT: '0', CODEXK8S_PROJECTION_BATCH_SIZE: '60', CODEXK8S_LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('a worker killed in the middle of a batch', () => {
  it('replays after restart without counting anything twice', async () => {
    const projectId = randomUUID();
    const runs = 1500;
    await appendRuns(store, projectId, runs);
    const first = serveWorker();
    // Kill it (SIGKILL: no cleanup) once it has applied some batches but not all. Waited for by the
    // clock: on a busy machine serve took longer to start than 2,000 looks did (CI, once).
    const deadline = Date.now() + 60_000;
    while (((await readCheckpoint(db.pools.primary, 'agent_runs'))?.eventsApplied ?? 0) < 600) {
      if (Date.now() > deadline) assert.fail('the worker applied fewer than 600 events in 60 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    first.kill('SIGKILL');
    await exited(first);
    const atKill = (await readCheckpoint(db.pools.primary, 'agent_runs'))!;
    assert.ok(atKill.eventsApplied > 0 && atKill.eventsApplied < runs * 3, `killed midway (${atKill.eventsApplied} of ${runs * 3} applied)`);
    const partial = await db.pools.primary.query<{ n: string }>('SELECT count(*)::text AS n FROM agent_runs WHERE project_id = $1', [projectId]);
    assert.ok(Number(partial.rows[0]!.n) < runs, 'the model was left part-way');

    const second = serveWorker();
    try {
      await caughtUp(db.pools.primary, store, 'agent_runs', 60_000);
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }
    const { rows } = await db.pools.primary.query<{ status: string; runs: string }>('SELECT status, runs::text FROM project_run_counts WHERE project_id = $1', [projectId]);
    const diagnosis = async () => {
      const q = async (sql: string) => JSON.stringify((await db.pools.primary.query(sql)).rows);
      return [
        `checkpoint ${JSON.stringify(await readCheckpoint(db.pools.primary, 'agent_runs'))}`,
        `at kill ${JSON.stringify(atKill)}`,
        `head ${await q('SELECT f.epoch, f.tx_id::text AS tx, f.position::text AS pos FROM flow_events f ORDER BY f.epoch DESC, f.tx_id DESC, f.position DESC LIMIT 1')}`,
        `dead letters ${await q('SELECT count(*), min(error) FROM projection_dead_letters')}`,
        `missing ${await q("SELECT min(f.tx_id)::text AS min_tx, max(f.tx_id)::text AS max_tx, min(f.position) AS min_pos, max(f.position) AS max_pos, count(*) FROM flow_events f WHERE f.event_type = 'RunRequested' AND NOT EXISTS (SELECT 1 FROM agent_runs r WHERE r.id = (f.payload->>'runId')::uuid)")}`,
        `present ${await q("SELECT min(f.tx_id)::text AS min_tx, max(f.tx_id)::text AS max_tx, min(f.position) AS min_pos, max(f.position) AS max_pos, count(*) FROM flow_events f WHERE f.event_type = 'RunRequested' AND EXISTS (SELECT 1 FROM agent_runs r WHERE r.id = (f.payload->>'runId')::uuid)")}`,
      ].join('\n');
    };
    if (Number(rows[0]?.runs) !== runs) assert.fail(`runs counted ${JSON.stringify(rows)} of ${runs}:\n${await diagnosis()}`);
    assert.deepEqual(rows.map((r) => [r.status, Number(r.runs)]), [['failed', runs]]);
    const total = await db.pools.primary.query<{ n: string }>('SELECT count(*)::text AS n FROM agent_runs WHERE project_id = $1', [projectId]);
    assert.equal(Number(total.rows[0]!.n), runs);
    const checkpoint = (await readCheckpoint(db.pools.primary, 'agent_runs'))!;
    assert.equal(checkpoint.eventsApplied, runs * 3, 'each event applied exactly once');
    assert.equal(checkpoint.holder, null, 'the stopped worker let go of its lease');
  });
});
