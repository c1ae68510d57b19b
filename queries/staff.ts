import type { GlobalPosition } from '../ports/position.js';
import type { RecordedEvent } from '../ports/event-store.js';
import type { DomainEvent } from '../domain/events.js';
import { LOG, type ReplicaReads } from '../adapters/postgres/replica-reads.js';
import { eventReads } from '../adapters/postgres/event-reads.js';
import { streamOf } from '../domain/shared/streams.js';
import { pageOf, type Page } from '../adapters/http/api/pagination.js';

/**
 * The staff API's reads, on the replicas, each waiting for its projections to reach the position
 * the client read its own write at. Lists page by keyset (an index range, never an OFFSET).
 * Who may see what was decided before (on the streams); `visibleTo` narrows a list to the
 * projects someone is a member of, null meaning all (platform admins).
 */
export interface ReadAt {
  minPosition?: GlobalPosition;
}
export interface PageRequest {
  limit: number;
  after?: string[];
}

// Keyset timestamps keep PostgreSQL's microseconds: a millisecond key would skip or repeat rows.
const keyTime = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
/** An instant as the API answers it, made by the database: parsing rows' dates to format them again cost a fifth of a page's time. */
const isoText = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export interface UserView { id: string; github_login: string | null; github_user_id: number | null; platform_role: string | null; learning_mode: boolean | null; created_at: string }
interface UserRow { id: string; github_login: string | null; github_user_id: string | null; platform_role: string | null; learning_mode: boolean | null; created_at: Date; key_time: string }
const userView = (r: UserRow): UserView => ({
  id: r.id, github_login: r.github_login, github_user_id: r.github_user_id === null ? null : Number(r.github_user_id), platform_role: r.platform_role, learning_mode: r.learning_mode,
  created_at: r.created_at.toISOString(),
});

export interface ProjectView { id: string; key: string; name: string; learning_mode: boolean | null; slots: number | null; created_at: string; updated_at: string }
interface ProjectRow { id: string; key: string; name: string; learning_mode: boolean | null; slots: number | null; created_at: Date; updated_at: Date; key_time: string }
const projectView = (r: ProjectRow): ProjectView => ({
  id: r.id, key: r.key, name: r.name, learning_mode: r.learning_mode, slots: r.slots, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString(),
});

export interface MemberView { user_id: string; github_login: string | null; role: string; learning_mode: boolean | null; created_at: string }
interface MemberRow { user_id: string; github_login: string | null; role: string; learning_mode: boolean | null; created_at: Date; key_time: string }
const memberView = (r: MemberRow): MemberView => ({ user_id: r.user_id, github_login: r.github_login, role: r.role, learning_mode: r.learning_mode, created_at: r.created_at.toISOString() });

/** has_token and the key id, never the token (nor its ciphertext). */
export interface RepositoryView {
  id: string; project_id: string; provider: string; owner: string; name: string; github_repository_id: number | null; services_yaml_path: string;
  has_token: boolean; token_key_id: string | null; created_at: string;
}
interface RepositoryRow extends Omit<RepositoryView, 'created_at' | 'github_repository_id'> { github_repository_id: string | null; created_at: Date; key_time: string }
const repositoryView = (r: RepositoryRow): RepositoryView => ({
  id: r.id, project_id: r.project_id, provider: r.provider, owner: r.owner, name: r.name, github_repository_id: r.github_repository_id === null ? null : Number(r.github_repository_id),
  services_yaml_path: r.services_yaml_path, has_token: r.has_token, token_key_id: r.token_key_id, created_at: r.created_at.toISOString(),
});

export interface RunView {
  id: string; correlation_id: string; project_id: string; agent: string; status: string; learning_mode: boolean;
  repository: string | null; subject: { kind: string; number: number } | null; slot: number | null; namespace: string | null; job: string | null; reason: string | null;
  created_at: string; scheduled_at: string | null; started_at: string | null; finished_at: string | null;
}
interface RunRow {
  id: string; correlation_id: string; project_id: string; agent: string; status: string; learning_mode: boolean; run_payload: { repository?: string; subject?: { kind: string; number: number } };
  slot: number | null; namespace: string | null; job: string | null; reason: string | null;
  created_at: string; scheduled_at: string | null; started_at: string | null; finished_at: string | null; key_time: string;
}
const runView = (r: RunRow): RunView => ({
  id: r.id, correlation_id: r.correlation_id, project_id: r.project_id, agent: r.agent, status: r.status, learning_mode: r.learning_mode,
  repository: r.run_payload.repository ?? null, subject: r.run_payload.subject ?? null, slot: r.slot, namespace: r.namespace, job: r.job, reason: r.reason,
  created_at: r.created_at, scheduled_at: r.scheduled_at, started_at: r.started_at, finished_at: r.finished_at,
});
const runColumns = `id::text, correlation_id, project_id::text, agent, status, learning_mode, run_payload, slot, namespace, job, reason,
  ${isoText('created_at')} AS created_at, ${isoText('scheduled_at')} AS scheduled_at, ${isoText('started_at')} AS started_at,
  ${isoText('finished_at')} AS finished_at, ${keyTime('created_at')} AS key_time`;

export interface EventView { id: string; stream_position: number; type: string; data: unknown; actor: { type: string; id: string }; correlation_id: string; created_at: string }
const eventView = (e: RecordedEvent<DomainEvent>): EventView => ({
  id: e.id, stream_position: e.streamPosition, type: e.type, data: e.data, actor: e.actor, correlation_id: e.correlationId, created_at: e.createdAt.toISOString(),
});

const ascending = <R extends { key_time: string; id?: string; user_id?: string }>(idOf: (r: R) => string) => (r: R) => [r.key_time, idOf(r)];

export interface RunsFilter { visibleTo: string | null; projectId?: string; status?: string; agent?: string }

/** The statement a page of runs is read with, and the read models it waits for (bench:api also runs it alone, through pgbench). */
export function runsPageStatement(filter: RunsFilter, page: PageRequest): { text: string; values: (string | number | null)[]; projections: string[] } {
  // A deleted project's runs stay in agent_runs (its history) but are no one's to list: a
  // project filter is authorised on the project's stream, and memberships end with the project;
  // an unfiltered list of all projects keeps to those that exist.
  const allProjects = !filter.projectId && filter.visibleTo === null;
  const existing = allProjects ? 'AND project_id IN (SELECT id FROM projects)' : '';
  // Waits (X-Codex-Min-Position) only for the read models the query reads.
  const members = !filter.projectId && filter.visibleTo !== null;
  return {
    text: `SELECT ${runColumns} FROM agent_runs
            WHERE ($1::uuid IS NULL OR project_id = $1)
              AND ($2::uuid IS NULL OR project_id IN (SELECT project_id FROM project_members WHERE user_id = $2)) ${existing}
              AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR agent = $4)
              AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::uuid))
            ORDER BY agent_runs.created_at DESC, agent_runs.id DESC LIMIT $7`, // qualified: the bare name is the text column of the SELECT
    values: [filter.projectId ?? null, filter.projectId ? null : filter.visibleTo, filter.status ?? null, filter.agent ?? null, page.after?.[0] ?? null, page.after?.[1] ?? null, page.limit + 1],
    projections: ['agent_runs', ...(members ? ['project_members'] : []), ...(allProjects ? ['projects'] : [])],
  };
}

export function staffQueries(reads: ReplicaReads) {
  const read = <T>(projections: readonly string[], at: ReadAt, work: (db: Parameters<Parameters<ReplicaReads['read']>[0]>[0]) => Promise<T>) =>
    reads.read(work, { projections, ...(at.minPosition ? { minPosition: at.minPosition } : {}) });

  return {
    users: (page: PageRequest, at: ReadAt): Promise<Page<UserView>> =>
      read(['users'], at, async (db) => {
        const { rows } = await db.query<UserRow>(
          `SELECT id::text, github_login, github_user_id::text, platform_role, learning_mode, created_at, ${keyTime('created_at')} AS key_time FROM users
            WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1::timestamptz, $2::uuid)) ORDER BY created_at, id LIMIT $3`,
          [page.after?.[0] ?? null, page.after?.[1] ?? null, page.limit + 1],
        );
        return pageOf(rows, page.limit, userView, ascending((r) => r.id));
      }),

    projects: (visibleTo: string | null, page: PageRequest, at: ReadAt): Promise<Page<ProjectView>> =>
      read(['projects', 'project_members'], at, async (db) => {
        const { rows } = await db.query<ProjectRow>(
          `SELECT p.id::text, p.key, p.name, p.learning_mode, p.slots, p.created_at, p.updated_at, ${keyTime('p.created_at')} AS key_time FROM projects p
            WHERE ($1::uuid IS NULL OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = $1))
              AND ($2::timestamptz IS NULL OR (p.created_at, p.id) > ($2::timestamptz, $3::uuid))
            ORDER BY p.created_at, p.id LIMIT $4`,
          [visibleTo, page.after?.[0] ?? null, page.after?.[1] ?? null, page.limit + 1],
        );
        return pageOf(rows, page.limit, projectView, ascending((r) => r.id));
      }),

    project: (id: string, at: ReadAt): Promise<ProjectView | undefined> =>
      read(['projects'], at, async (db) => {
        const { rows } = await db.query<ProjectRow>(`SELECT id::text, key, name, learning_mode, slots, created_at, updated_at, '' AS key_time FROM projects WHERE id = $1`, [id]);
        return rows[0] && projectView(rows[0]);
      }),

    members: (projectId: string, page: PageRequest, at: ReadAt): Promise<Page<MemberView>> =>
      read(['project_members', 'users'], at, async (db) => {
        const { rows } = await db.query<MemberRow>(
          `SELECT m.user_id::text, u.github_login, m.role, m.learning_mode, m.created_at, ${keyTime('m.created_at')} AS key_time
             FROM project_members m LEFT JOIN users u ON u.id = m.user_id
            WHERE m.project_id = $1 AND ($2::timestamptz IS NULL OR (m.created_at, m.user_id) > ($2::timestamptz, $3::uuid))
            ORDER BY m.created_at, m.user_id LIMIT $4`,
          [projectId, page.after?.[0] ?? null, page.after?.[1] ?? null, page.limit + 1],
        );
        return pageOf(rows, page.limit, memberView, ascending((r) => r.user_id));
      }),

    repositories: (projectId: string, page: PageRequest, at: ReadAt): Promise<Page<RepositoryView>> =>
      read(['repositories'], at, async (db) => {
        const { rows } = await db.query<RepositoryRow>(
          `SELECT id::text, project_id::text, provider, owner, name, github_repository_id::text, services_yaml_path, has_token, token_key_id, created_at,
                  ${keyTime('created_at')} AS key_time
             FROM repositories WHERE project_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
            ORDER BY created_at, id LIMIT $4`,
          [projectId, page.after?.[0] ?? null, page.after?.[1] ?? null, page.limit + 1],
        );
        return pageOf(rows, page.limit, repositoryView, ascending((r) => r.id));
      }),

    /** Runs newest first, of one project or of every project `visibleTo` is a member of. */
    runs: (filter: RunsFilter, page: PageRequest, at: ReadAt): Promise<Page<RunView>> => {
      const statement = runsPageStatement(filter, page);
      return read(statement.projections, at, async (db) => {
        const { rows } = await db.query<RunRow>(statement.text, statement.values);
        return pageOf(rows, page.limit, runView, (r) => [r.key_time, r.id]);
      });
    },

    /** A stream of the log as it is on a replica, oldest first: a run's, or a delivery's. */
    stream: (stream: string, page: { limit: number; after: number }, at: ReadAt): Promise<Page<EventView>> =>
      read([LOG], at, async (db) => {
        const events = await eventReads(db).readStream(stream, { after: page.after, limit: page.limit + 1 });
        return pageOf(events, page.limit, eventView, (e) => [String(e.streamPosition)]);
      }),

    run: (id: string, at: ReadAt): Promise<RunView | undefined> =>
      read(['agent_runs'], at, async (db) => {
        const { rows } = await db.query<RunRow>(`SELECT ${runColumns} FROM agent_runs WHERE id = $1`, [id]);
        return rows[0] && runView(rows[0]);
      }),
  };
}

export type StaffQueries = ReturnType<typeof staffQueries>;
