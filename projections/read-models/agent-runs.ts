import { projection, type ProjectedEvent } from '../projection.js';

/** A run's columns as this batch leaves them; undefined: not touched by the batch. */
interface RunChange {
  id: string;
  created: boolean;
  /** The run stream's version the change reaches: an older change never overwrites a newer one. */
  version: number;
  correlation_id?: string;
  project_id?: string;
  agent?: string;
  status?: string;
  run_payload?: unknown;
  learning_mode?: boolean;
  slot?: number;
  namespace?: string;
  job?: string;
  reason?: string;
  created_at?: string;
  scheduled_at?: string;
  started_at?: string;
  finished_at?: string;
  updated_at: string;
}

const TERMINAL = ['succeeded', 'failed', 'canceled'];
/** What a run's end says; once ended, no later event changes it. */
const END_FIELDS = new Set<string>(['status', 'reason', 'finished_at']);

/**
 * Folds a batch in memory: one change per run, in commit order, so the SQL is one statement per kind.
 * Like the Run decider's evolve, a run's end is final: an event after it (a cancel that raced the
 * end, recorded before cancels were decided on the run's stream) only fills in what is missing.
 */
function changesOf(events: ProjectedEvent[]): RunChange[] {
  const runs = new Map<string, RunChange>();
  const set = (run: RunChange, fields: Partial<RunChange>) => {
    if (!TERMINAL.includes(run.status ?? '')) return Object.assign(run, fields);
    const filled = run as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(fields)) if (!END_FIELDS.has(k) && filled[k] === undefined) filled[k] = v;
    return run;
  };
  const touch = (id: string, e: ProjectedEvent) => {
    let run = runs.get(id);
    if (!run) runs.set(id, (run = { id, created: false, version: 0, updated_at: e.createdAt.toISOString() }));
    run.updated_at = e.createdAt.toISOString();
    run.version = Math.max(run.version, e.streamPosition);
    return run;
  };
  for (const e of events) {
    switch (e.type) {
      case 'RunRequested': {
        const run = touch(e.data.runId, e);
        Object.assign(run, {
          created: true,
          correlation_id: e.correlationId,
          project_id: e.data.projectId,
          agent: e.data.agent,
          status: 'pending',
          run_payload: { repository: e.data.repository, subject: e.data.subject, agent: e.data.agent },
          learning_mode: e.data.learningMode,
          created_at: e.data.requestedAt,
        });
        break;
      }
      case 'RunScheduled':
        set(touch(e.data.runId, e), { status: 'scheduled', slot: e.data.slot, scheduled_at: e.data.scheduledAt });
        break;
      case 'RunNamespacePrepared':
        set(touch(e.data.runId, e), { namespace: e.data.namespace });
        break;
      case 'JobStarted':
        set(touch(e.data.runId, e), { status: 'running', namespace: e.data.namespace, job: e.data.job, started_at: e.data.startedAt });
        break;
      case 'RunSucceeded':
        set(touch(e.data.runId, e), { status: 'succeeded', finished_at: e.data.finishedAt });
        break;
      case 'RunFailed':
      case 'RunCanceled':
        set(touch(e.data.runId, e), {
          status: e.type === 'RunFailed' ? 'failed' : 'canceled',
          reason: e.data.reason,
          finished_at: e.data.finishedAt,
        });
        break;
      default:
        break;
    }
  }
  return [...runs.values()];
}

const recordset = `jsonb_to_recordset($1) AS c(id uuid, version bigint, correlation_id text, project_id uuid, agent text, status text,
  run_payload jsonb, learning_mode boolean, slot int, namespace text, job text, reason text, created_at timestamptz,
  scheduled_at timestamptz, started_at timestamptz, finished_at timestamptz, updated_at timestamptz)`;

const ended = `r.status IN (${TERMINAL.map((t) => `'${t}'`).join(', ')})`;
/** The change comes after what the row reflects, and the run has not ended: it overwrites. */
const ahead = `(c.version >= r.version AND NOT ${ended})`;
const newer = (column: string) => `CASE WHEN ${ahead} THEN COALESCE(c.${column}, r.${column}) ELSE COALESCE(r.${column}, c.${column}) END`;
const endField = (column: string) => `CASE WHEN ${ended} THEN r.${column} ELSE ${newer(column)} END`;

/**
 * agent_runs, and project_run_counts beside it (runs per project and status). Set-based: a batch is
 * one INSERT for new runs, one UPDATE for the rest and one upsert of the count deltas.
 */
export const agentRuns = projection({
  name: 'agent_runs',
  tables: ['agent_runs', 'project_run_counts'],
  handles: ['RunRequested', 'RunScheduled', 'RunNamespacePrepared', 'JobStarted', 'RunSucceeded', 'RunFailed', 'RunCanceled'],
  onFailure: 'dead-letter',
  async apply(events, { tx, table }) {
    const changes = changesOf(events);
    const created = changes.filter((c) => c.created);
    const updated = changes.filter((c) => !c.created);
    const deltas = new Map<string, number>();
    const count = (project: string, status: string, d: number) => {
      const key = `${project}\u0000${status}`;
      deltas.set(key, (deltas.get(key) ?? 0) + d);
    };
    if (created.length > 0) {
      await tx.query(
        `INSERT INTO ${table('agent_runs')} (id, version, correlation_id, project_id, agent, status, run_payload, learning_mode, slot,
                namespace, job, reason, created_at, scheduled_at, started_at, finished_at, updated_at)
         SELECT id, version, correlation_id, project_id, agent, status, run_payload, learning_mode, slot, namespace, job, reason,
                created_at, scheduled_at, started_at, finished_at, updated_at FROM ${recordset}`,
        [JSON.stringify(created)],
      );
      for (const c of created) count(c.project_id!, c.status!, 1);
    }
    if (updated.length > 0) {
      const { rows } = await tx.query<{ project_id: string; old_status: string; status: string }>(
        // Monotonic: a change newer than the row overwrites what it says; an older one (a parked
        // event retried late) only fills in what the row lacks, so a run never moves back. An ended
        // run keeps its status, reason and end time whatever comes (the same rule as changesOf).
        `UPDATE ${table('agent_runs')} r
            SET status = CASE WHEN ${ahead} THEN COALESCE(c.status, r.status) ELSE r.status END,
                slot = ${newer('slot')}, namespace = ${newer('namespace')}, job = ${newer('job')}, reason = ${endField('reason')},
                scheduled_at = ${newer('scheduled_at')}, started_at = ${newer('started_at')}, finished_at = ${endField('finished_at')},
                updated_at = GREATEST(r.updated_at, c.updated_at), version = GREATEST(r.version, c.version)
           FROM ${recordset}, ${table('agent_runs')} prev
          WHERE r.id = c.id AND prev.id = c.id
      RETURNING r.project_id::text, prev.status AS old_status, r.status`,
        [JSON.stringify(updated)],
      );
      if (rows.length !== updated.length) throw new Error(`${updated.length - rows.length} event(s) for a run that was never requested`);
      for (const r of rows) {
        if (r.old_status === r.status) continue;
        count(r.project_id, r.old_status, -1);
        count(r.project_id, r.status, 1);
      }
    }
    const nonZero = [...deltas].filter(([, d]) => d !== 0).map(([key, d]) => {
      const [project_id, status] = key.split('\u0000');
      return { project_id, status, d };
    });
    if (nonZero.length > 0) {
      await tx.query(
        `INSERT INTO ${table('project_run_counts')} (project_id, status, runs)
         SELECT project_id, status, d FROM jsonb_to_recordset($1) AS x(project_id uuid, status text, d bigint)
         ON CONFLICT (project_id, status) DO UPDATE SET runs = ${table('project_run_counts')}.runs + EXCLUDED.runs`,
        [JSON.stringify(nonZero)],
      );
      // A status no run is in any more has no row, whichever batches the runs passed through it in.
      await tx.query(
        `DELETE FROM ${table('project_run_counts')} c USING jsonb_to_recordset($1) AS x(project_id uuid, status text)
          WHERE c.project_id = x.project_id AND c.status = x.status AND c.runs = 0`,
        [JSON.stringify(nonZero)],
      );
    }
  },
});
