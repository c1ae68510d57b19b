import type { GlobalPosition } from '../ports/position.js';
import type { ReplicaReads } from '../adapters/postgres/replica-reads.js';

export interface RunView {
  id: string;
  correlationId: string;
  projectId: string;
  agent: string;
  status: string;
  learningMode: boolean;
  payload: unknown;
  reason: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const columns = `id::text, correlation_id, project_id::text, agent, status, learning_mode, run_payload, reason,
  created_at, started_at, finished_at`;

interface Row {
  id: string;
  correlation_id: string;
  project_id: string;
  agent: string;
  status: string;
  learning_mode: boolean;
  run_payload: unknown;
  reason: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const toView = (r: Row): RunView => ({
  id: r.id,
  correlationId: r.correlation_id,
  projectId: r.project_id,
  agent: r.agent,
  status: r.status,
  learningMode: r.learning_mode,
  payload: r.run_payload,
  reason: r.reason,
  createdAt: r.created_at.toISOString(),
  startedAt: r.started_at?.toISOString() ?? null,
  finishedAt: r.finished_at?.toISOString() ?? null,
});

/** Queries over agent_runs, on the replicas. */
export function runQueries(reads: ReplicaReads) {
  const projections = ['agent_runs'] as const;
  return {
    async byId(id: string, minPosition?: GlobalPosition): Promise<RunView | undefined> {
      return reads.read(async (db) => {
        const { rows } = await db.query<Row>(`SELECT ${columns} FROM agent_runs WHERE id = $1`, [id]);
        return rows[0] && toView(rows[0]);
      }, { projections, ...(minPosition ? { minPosition } : {}) });
    },
    /** A project's runs, newest first, optionally of one status (served by agent_runs_by_project_status). */
    async ofProject(projectId: string, options: { status?: string; limit?: number; minPosition?: GlobalPosition } = {}): Promise<RunView[]> {
      return reads.read(async (db) => {
        const { rows } = await db.query<Row>(
          `SELECT ${columns} FROM agent_runs WHERE project_id = $1 AND ($2::text IS NULL OR status = $2)
            ORDER BY created_at DESC LIMIT $3`,
          [projectId, options.status ?? null, Math.min(options.limit ?? 50, 500)],
        );
        return rows.map(toView);
      }, { projections, ...(options.minPosition ? { minPosition: options.minPosition } : {}) });
    },
  };
}
