import { isEmail, isPrintable, isSubjectNumber, Uuid } from '../../../domain/shared/codec.js';
import { randomUUID } from 'node:crypto';
import * as t from 'io-ts';
import type { Context } from 'koa';
import type { EventMeta, EventStore } from '../../../ports/event-store.js';
import type { GlobalPosition } from '../../../ports/position.js';
import { readFolded } from '../../../commands/remembered-states.js';
import type { ProjectSettings, SetupCommands } from '../../../commands/setup.js';
import type { staffRunCommands } from '../../../commands/staff-runs.js';
import { authorize } from '../../../domain/access/authorize.js';
import type { Action } from '../../../domain/access/permissions.js';
import { projectDecider, type Project } from '../../../domain/projects/project.js';
import { ProjectRole } from '../../../domain/projects/events.js';
import { DomainError } from '../../../domain/shared/errors.js';
import { streamOf } from '../../../domain/shared/streams.js';
import type { TriggerConfig } from '../../../domain/webhooks/trigger-policy.js';
import { userDecider, type User } from '../../../domain/users/user.js';
import { runDecider, type Run } from '../../../domain/runs/run.js';
import type { StaffQueries } from '../../../queries/staff.js';
import { answerWithPosition, minPositionOf } from '../consistency.js';
import { notFound } from '../errors.js';
import type { StaffState } from '../auth/authenticate.js';
import { jsonBody, PageLimit, queryInput, strictObject, uuidParam } from './input.js';
import { decodeCursor } from './pagination.js';
import { route, type StaffRoute } from './routes.js';
import type { DeliveryDecided } from '../../../domain/webhooks/events.js';

export interface StaffApiDeps {
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  setup: SetupCommands;
  runs: ReturnType<typeof staffRunCommands>;
  queries: StaffQueries;
  encryptToken: (token: string, repositoryId: string) => string;
  triggers: TriggerConfig;
}

const Text = (max: number) => t.refinement(t.string, (s) => s.length > 0 && s.length <= max && isPrintable(s), `text of 1-${max} characters, none of them control characters`);
const Nullable = <C extends t.Mixed>(c: C) => t.union([c, t.null]);
const Slots = t.refinement(t.number, (n) => Number.isInteger(n) && n >= 1 && n <= 100, 'a whole number from 1 to 100');
// A token goes into an HTTP header, which carries visible ASCII only (GitHub's tokens are).
const Token = t.refinement(t.string, (s) => /^[\x21-\x7e]{1,4096}$/.test(s), 'a token of 1-4096 visible ASCII characters');
const Email = t.refinement(t.string, isEmail, 'an e-mail address');
const PlatformRoleInput = t.union([t.literal('owner'), t.literal('admin'), t.null]);
const Status = t.keyof({ pending: null, scheduled: null, running: null, succeeded: null, failed: null, canceled: null });
const CorrelationId = t.refinement(t.string, (s) => /^[A-Za-z0-9._:-]{1,100}$/.test(s), 'an id of 1-100 letters, digits, ".", "_", ":" and "-"');
const SubjectNumber = t.refinement(t.number, isSubjectNumber, 'a whole number from 1 to 2147483647');

const paging = { limit: PageLimit, cursor: t.string };
const PageQuery = strictObject('page', {}, paging);
const RunsQuery = strictObject('runs query', {}, { ...paging, project_id: Uuid, status: Status, agent: Text(40) });
const AgentsQuery = strictObject('agents query', {}, {});
const AllowUser = strictObject('user', { email: Email }, { platform_role: PlatformRoleInput, github_login: Text(39) });
const UpsertProject = strictObject('project', { key: Text(63) }, { name: Text(200), learning_mode: Nullable(t.boolean), slots: Nullable(Slots) });
const PatchProject = strictObject('project settings', {}, { name: Text(200), learning_mode: Nullable(t.boolean), slots: Nullable(Slots) });
const AddMember = strictObject('member', { role: ProjectRole }, { user_id: Uuid, email: Email });
const SetRole = strictObject('member role', { role: ProjectRole }, {});
const LearningMode = strictObject('learning mode', { learning_mode: Nullable(t.boolean) }, {});
const ConnectRepository = strictObject('repository', { provider: t.literal('github'), owner: Text(100), name: Text(100) }, { token: Token, services_yaml_path: Text(255) });
const StartRun = strictObject('run', {
  project_id: Uuid, repository_id: Uuid, kind: t.keyof({ issue: null, pull_request: null }), number: SubjectNumber, agent: Text(40), correlation_id: CorrelationId,
}, {});

/**
 * An upsert (find, then update or create) raced by the same upsert from another client: the create
 * that lost finds the winner's on a second pass and updates it (200), as if it had come second.
 * A conflict on the second pass is a real one (another user claims the GitHub account, …).
 */
async function upsert(attempt: () => Promise<void>): Promise<void> {
  try {
    await attempt();
  } catch (error) {
    if (!(error instanceof DomainError && error.code === 'conflict')) throw error;
    await attempt();
  }
}

const staffOf = (ctx: Context) => (ctx.state as StaffState).user;
const by = (ctx: Context) => ({ userId: staffOf(ctx).userId });
const at = (ctx: Context): { minPosition?: GlobalPosition } => {
  const minPosition = minPositionOf(ctx);
  return minPosition ? { minPosition } : {};
};
const pageRequest = (query: { limit?: number; cursor?: string }, shape: readonly ('string' | 'time' | 'uuid')[]) => {
  const after = decodeCursor(query.cursor, shape);
  return { limit: query.limit ?? 50, ...(after ? { after } : {}) };
};
/** A project's settings as a body gives them (snake case), leaving out those it does not name. */
const settingsOf = (input: { name?: string; learning_mode?: boolean | null; slots?: number | null }): ProjectSettings => ({
  ...(input.name !== undefined ? { name: input.name } : {}),
  ...(input.learning_mode !== undefined ? { learningMode: input.learning_mode } : {}),
  ...(input.slots !== undefined ? { slots: input.slots } : {}),
});

const answered = (ctx: Context, status: number, body: Record<string, unknown>, written: { position?: GlobalPosition | undefined }) =>
  answerWithPosition(ctx, status, body, written.position);
const noContent = (ctx: Context, written: { position?: GlobalPosition | undefined }) => {
  answerWithPosition(ctx, 204, {}, written.position);
  ctx.body = null;
};

export function staffApi(deps: StaffApiDeps): StaffRoute[] {
  const meta = (ctx: Context, correlationId?: string): EventMeta => ({
    correlationId: correlationId ?? `api-${randomUUID()}`,
    actor: { type: 'human', id: staffOf(ctx).userId },
  });

  /**
   * The matrix on the current streams, for reads: who asks (their user stream, read by
   * `authenticate` for this very request), and the project's stream (404 when they may not see it),
   * read with the user's when the request names the project in its path or query.
   */
  const access = async (ctx: Context, action: Action, projectId?: string) => {
    const read = (ctx.state as StaffState).project;
    const project = !projectId ? undefined
      : read?.id === projectId ? read.state
      : ((await readFolded(deps.store, [{ stream: streamOf.project(projectId), fold: projectDecider }]))[0]!.state as Project);
    return authorize(action, staffOf(ctx), project);
  };
  /** A page of one of a project's lists, for those who may read the project. */
  const projectList = <T>(list: (projectId: string, page: ReturnType<typeof pageRequest>, at: { minPosition?: GlobalPosition }) => Promise<T>) => async (ctx: Context) => {
    const id = projectIdParam(ctx);
    await access(ctx, 'project.read', id);
    ctx.body = await list(id, pageRequest(queryInput(ctx, PageQuery), ['time', 'uuid']), at(ctx));
  };
  /** A run's project comes from its stream, so a run nobody may see is as absent as one that does not exist. */
  const runAccess = async (ctx: Context, runId: string, action: Action) => {
    const [run] = await readFolded(deps.store, [{ stream: streamOf.run(runId), fold: runDecider }]);
    const state = run!.state as Run;
    if (state.status === 'none') throw notFound('run');
    await access(ctx, action, state.projectId).catch((error: unknown) => {
      throw error instanceof DomainError && error.code === 'not_found' ? notFound('run') : error;
    });
    return state;
  };
  const projectIdParam = (ctx: Context) => uuidParam(ctx, 'projectId', 'project');

  return [
    route({
      method: 'get', path: '/me', action: 'me.read', summary: 'who I am', statuses: [200],
      async handle(ctx) {
        const { user } = await access(ctx, 'me.read');
        ctx.body = { id: user.userId, platform_role: user.platformRole, learning_mode: user.learningMode, github: user.github };
      },
    }),
    route({
      method: 'get', path: '/users', action: 'users.read', summary: 'the allow-list', query: PageQuery, statuses: [200, 403],
      async handle(ctx) {
        await access(ctx, 'users.read');
        ctx.body = await deps.queries.users(pageRequest(queryInput(ctx, PageQuery), ['time', 'uuid']), at(ctx));
      },
    }),
    route({
      method: 'post', path: '/users', action: 'users.manage', summary: 'allow an e-mail, or set the platform role of the user it allows', body: AllowUser, statuses: [200, 201, 403, 409, 412, 502],
      async handle(ctx) {
        const input = await jsonBody(ctx, AllowUser);
        // Before anything is looked up (the e-mail's user, the login on GitHub): no answer tells a
        // caller without the right whether an e-mail is allowed or a login exists.
        await access(ctx, 'users.manage');
        await upsert(async () => {
          // Someone the e-mail allows already: the request sets their platform role, if it names one
          // (a repeated allow without it changes nothing). Anyone else (new, or removed) is allowed.
          const existing = await deps.setup.userIdOf(input.email).catch((error: unknown) => {
            if (error instanceof DomainError && error.code === 'failed_precondition') return undefined;
            throw error;
          });
          const [user] = existing ? await readFolded(deps.store, [{ stream: streamOf.user(existing), fold: userDecider }]) : [];
          if (existing && (user!.state as User).status === 'allowed') {
            const written = input.platform_role === undefined ? {} : await deps.setup.setPlatformRole(existing, input.platform_role, meta(ctx), by(ctx));
            answered(ctx, 200, { id: existing }, written);
            return;
          }
          const allowed = await deps.setup.allowUser({ email: input.email, githubLogin: input.github_login ?? null, platformRole: input.platform_role ?? null }, meta(ctx), by(ctx));
          answered(ctx, 201, { id: allowed.userId }, allowed);
        });
      },
    }),
    route({
      method: 'delete', path: '/users/:userId', action: 'users.manage', summary: 'take a user off the allow-list', statuses: [204, 403, 404],
      async handle(ctx) {
        noContent(ctx, await deps.setup.removeUser(uuidParam(ctx, 'userId', 'user'), meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'get', path: '/projects', action: 'projects.list', summary: 'the projects I may see', query: PageQuery, statuses: [200],
      async handle(ctx) {
        const { user } = await access(ctx, 'projects.list');
        const admin = user.platformRole !== null;
        ctx.body = await deps.queries.projects(admin ? null : user.userId, pageRequest(queryInput(ctx, PageQuery), ['time', 'uuid']), at(ctx));
      },
    }),
    route({
      method: 'post', path: '/projects', action: 'projects.create', summary: 'create a project, or update the one with that key', body: UpsertProject, statuses: [200, 201, 403, 404, 409],
      async handle(ctx) {
        const input = await jsonBody(ctx, UpsertProject);
        // Before the key is looked up: whether a key exists is no answer for those who may not create.
        await access(ctx, 'projects.create');
        const settings = settingsOf(input);
        await upsert(async () => {
          const existing = await deps.setup.projectIdOf(input.key).catch((error: unknown) => {
            if (error instanceof DomainError && error.code === 'not_found') return undefined;
            throw error;
          });
          if (existing) {
            answered(ctx, 200, { id: existing }, await deps.setup.updateProject(existing, settings, meta(ctx), by(ctx)));
            return;
          }
          const created = await deps.setup.createProject({ ...settings, key: input.key, name: input.name ?? input.key }, meta(ctx), by(ctx));
          answered(ctx, 201, { id: created.projectId }, created);
        });
      },
    }),
    route({
      method: 'get', path: '/projects/:projectId', action: 'project.read', summary: 'a project', statuses: [200, 404],
      async handle(ctx) {
        const id = projectIdParam(ctx);
        const { member } = await access(ctx, 'project.read', id);
        const view = await deps.queries.project(id, at(ctx));
        if (!view) throw notFound('project'); // not on the replica yet: the client can pass X-Codex-Min-Position
        ctx.body = { ...view, my_role: member?.role ?? null };
      },
    }),
    route({
      method: 'patch', path: '/projects/:projectId', action: 'project.update', summary: 'change a project\'s name, learning-mode default or slots', body: PatchProject, statuses: [200, 403, 404],
      async handle(ctx) {
        const id = projectIdParam(ctx);
        const input = await jsonBody(ctx, PatchProject);
        answered(ctx, 200, { id }, await deps.setup.updateProject(id, settingsOf(input), meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'delete', path: '/projects/:projectId', action: 'project.delete', summary: 'delete a project', statuses: [204, 403, 404],
      async handle(ctx) {
        noContent(ctx, await deps.setup.deleteProject(projectIdParam(ctx), meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'get', path: '/projects/:projectId/members', action: 'project.read', summary: 'a project\'s members', query: PageQuery, statuses: [200, 404],
      handle: projectList(deps.queries.members),
    }),
    route({
      method: 'post', path: '/projects/:projectId/members', action: 'members.manage', summary: 'add a member (by user id or e-mail), or change their role', body: AddMember, statuses: [200, 403, 404, 412],
      async handle(ctx) {
        const id = projectIdParam(ctx);
        const input = await jsonBody(ctx, AddMember);
        if ((input.user_id === undefined) === (input.email === undefined)) throw new DomainError('invalid_argument', 'body: give user_id or email, one of them');
        const who = input.user_id !== undefined ? { userId: input.user_id.toLowerCase() } : { email: input.email! };
        answered(ctx, 200, { project_id: id }, await deps.setup.addMember({ projectId: id, ...who, role: input.role }, meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'put', path: '/projects/:projectId/members/:userId', action: 'members.manage', summary: 'set a member\'s role (adding them)', body: SetRole, statuses: [200, 403, 404, 412],
      async handle(ctx) {
        const id = projectIdParam(ctx);
        const userId = uuidParam(ctx, 'userId', 'user');
        const input = await jsonBody(ctx, SetRole);
        answered(ctx, 200, { project_id: id, user_id: userId }, await deps.setup.addMember({ projectId: id, userId, role: input.role }, meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'delete', path: '/projects/:projectId/members/:userId', action: 'members.manage', summary: 'remove a member', statuses: [204, 403, 404],
      async handle(ctx) {
        noContent(ctx, await deps.setup.removeMember(projectIdParam(ctx), uuidParam(ctx, 'userId', 'user'), meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'put', path: '/projects/:projectId/members/:userId/learning-mode', action: 'members.manage',
      summary: 'a member\'s learning-mode override: true, false or null (their own needs only project.read)', body: LearningMode, statuses: [200, 403, 404],
      async handle(ctx) {
        const id = projectIdParam(ctx);
        const userId = uuidParam(ctx, 'userId', 'user');
        const input = await jsonBody(ctx, LearningMode);
        answered(ctx, 200, { project_id: id, user_id: userId, learning_mode: input.learning_mode }, await deps.setup.setMemberLearningMode(id, userId, input.learning_mode, meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'get', path: '/projects/:projectId/repositories', action: 'project.read', summary: 'a project\'s repositories (has_token and the key id, never the token)', query: PageQuery, statuses: [200, 404],
      handle: projectList(deps.queries.repositories),
    }),
    route({
      method: 'post', path: '/projects/:projectId/repositories', action: 'repositories.manage', summary: 'connect a repository (checked on GitHub with its token)', body: ConnectRepository, statuses: [201, 403, 404, 409, 412, 502],
      async handle(ctx) {
        const id = projectIdParam(ctx);
        const input = await jsonBody(ctx, ConnectRepository);
        const connected = await deps.setup.connectRepository(
          { projectId: id, provider: 'github', owner: input.owner, name: input.name, token: input.token ?? null, ...(input.services_yaml_path !== undefined ? { servicesYamlPath: input.services_yaml_path } : {}) },
          deps.encryptToken, meta(ctx), by(ctx),
        );
        answered(ctx, 201, { id: connected.repositoryId, github_repository_id: connected.githubRepositoryId }, connected);
      },
    }),
    route({
      method: 'delete', path: '/projects/:projectId/repositories/:repositoryId', action: 'repositories.manage', summary: 'disconnect a repository', statuses: [204, 403, 404],
      async handle(ctx) {
        noContent(ctx, await deps.setup.disconnectRepository(projectIdParam(ctx), uuidParam(ctx, 'repositoryId', 'repository'), meta(ctx), by(ctx)));
      },
    }),
    route({
      method: 'get', path: '/agents', action: 'agents.read', summary: 'the agents of the roster and the labels that start them', query: AgentsQuery, statuses: [200],
      async handle(ctx) {
        await access(ctx, 'agents.read');
        queryInput(ctx, AgentsQuery);
        ctx.body = { items: Object.entries(deps.triggers).map(([label, trigger]) => ({ agent: trigger.agent, label, on: trigger.on, mode: trigger.mode })), next_cursor: null };
      },
    }),
    route({
      method: 'post', path: '/agent-runs', action: 'runs.start', summary: 'start a run for an issue or PR of a connected repository (idempotent by correlation_id)', body: StartRun, statuses: [200, 201, 403, 404, 409, 412],
      async handle(ctx) {
        const input = await jsonBody(ctx, StartRun);
        const started = await deps.runs.start(staffOf(ctx).userId, {
          projectId: input.project_id.toLowerCase(), repositoryId: input.repository_id.toLowerCase(), subject: { kind: input.kind, number: input.number }, agent: input.agent, correlationId: input.correlation_id,
        // The log's correlation id is the run's (agent_runs keeps it unique), so it is the key within its project.
        }, meta(ctx, `${input.project_id.toLowerCase()}/${input.correlation_id}`));
        answerWithPosition(ctx, started.created ? 201 : 200, { id: started.runId, created: started.created }, started.append?.position);
      },
    }),
    route({
      method: 'get', path: '/agent-runs', action: 'project.read', summary: 'runs, newest first (filters: project_id, status, agent)', query: RunsQuery, statuses: [200, 404],
      async handle(ctx) {
        const query = queryInput(ctx, RunsQuery);
        const projectId = query.project_id?.toLowerCase();
        const { user } = projectId ? await access(ctx, 'project.read', projectId) : await access(ctx, 'projects.list');
        ctx.body = await deps.queries.runs(
          { visibleTo: user.platformRole !== null ? null : user.userId, ...(projectId ? { projectId } : {}), ...(query.status ? { status: query.status } : {}), ...(query.agent ? { agent: query.agent } : {}) },
          pageRequest(query, ['time', 'uuid']), at(ctx),
        );
      },
    }),
    route({
      method: 'get', path: '/agent-runs/:runId', action: 'project.read', summary: 'a run', statuses: [200, 404],
      async handle(ctx) {
        const runId = uuidParam(ctx, 'runId', 'run');
        await runAccess(ctx, runId, 'project.read');
        const view = await deps.queries.run(runId, at(ctx));
        if (!view) throw notFound('run');
        ctx.body = view;
      },
    }),
    route({
      method: 'post', path: '/agent-runs/:runId/cancel', action: 'runs.cancel', summary: 'cancel a run (a finished run stays as it ended)', statuses: [200, 403, 404],
      async handle(ctx) {
        const runId = uuidParam(ctx, 'runId', 'run');
        await runAccess(ctx, runId, 'project.read');
        const canceled = await deps.runs.cancel(staffOf(ctx).userId, runId, meta(ctx));
        answerWithPosition(ctx, 200, { id: runId, status: canceled.status }, canceled.append?.position);
      },
    }),
    route({
      method: 'get', path: '/agent-runs/:runId/events', action: 'project.read', summary: 'a run\'s events, oldest first', query: PageQuery, statuses: [200, 404],
      async handle(ctx) {
        const runId = uuidParam(ctx, 'runId', 'run');
        await runAccess(ctx, runId, 'project.read');
        const query = queryInput(ctx, PageQuery);
        const after = decodeCursor(query.cursor, ['string']);
        if (after && !/^\d{1,9}$/.test(after[0]!)) throw new DomainError('invalid_argument', 'cursor is not one this list gave');
        ctx.body = await deps.queries.stream(streamOf.run(runId), { limit: query.limit ?? 50, after: after ? Number(after[0]) : 0 }, at(ctx));
      },
    }),
    route({
      method: 'get', path: '/deliveries/:guid', action: 'deliveries.read', summary: 'a webhook delivery\'s decision and its reason', statuses: [200, 403, 404],
      async handle(ctx) {
        await access(ctx, 'deliveries.read');
        const guid = ctx.params.guid ?? '';
        if (!/^[A-Za-z0-9-]{1,100}$/.test(guid)) throw notFound('delivery');
        const page = await deps.queries.stream(streamOf.delivery(guid), { limit: 10, after: 0 }, at(ctx));
        const decided = page.items.find((e) => e.type === 'DeliveryDecided');
        if (!decided) throw notFound('delivery');
        const d = decided.data as DeliveryDecided;
        ctx.body = {
          guid: d.guid, event: d.event, action: d.action, repository: d.repository, repository_id: d.repositoryId ?? null, number: d.number, label: d.label,
          sender: d.sender, sender_id: d.senderId ?? null, body_sha256: d.bodySha256, decision: d.decision, reason: d.reason, run_ids: d.runIds,
          received_at: d.receivedAt, decided_at: decided.created_at,
        };
      },
    }),
  ];
}
