import { ConcurrencyError, type AppendResult, type EventMeta, type EventStore } from '../ports/event-store.js';
import { authorize } from '../domain/access/authorize.js';
import { learningModeFor } from '../domain/access/permissions.js';
import { decideRun, initialRun, runDecider, type Run } from '../domain/runs/run.js';
import { decideSubject, initialSubject } from '../domain/runs/subject.js';
import { projectDecider, type Project } from '../domain/projects/project.js';
import { DomainError } from '../domain/shared/errors.js';
import { streamOf } from '../domain/shared/streams.js';
import { userDecider, type User } from '../domain/users/user.js';
import { manualRunIdOf } from '../domain/webhooks/run-identity.js';
import { handleCommand } from './handle-command.js';
import { readFolded } from './remembered-states.js';
import { endingWrites } from './runs.js';

export interface StaffRunDeps {
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  now: () => string;
  learningModeDefault: boolean;
  /** The agents of the roster (configuration): a run names one of them. */
  agents: ReadonlySet<string>;
}

export interface StartRun {
  projectId: string;
  repositoryId: string;
  subject: { kind: 'issue' | 'pull_request'; number: number };
  agent: string;
  /** The client's key for this start: the same key again is the same run, never a second one. */
  correlationId: string;
}

const userFold = (userId: string) => ({ stream: streamOf.user(userId), fold: userDecider });
const projectFold = (projectId: string) => ({ stream: streamOf.project(projectId), fold: projectDecider });
/** A staff member's cancel names their GitHub account when they have linked one. */
const actorOf = (user: Extract<User, { status: 'allowed' }>) => (user.github ? { githubUserId: user.github.id, login: user.github.login } : null);

/**
 * Runs started and canceled by staff, through the same Run decider, subject stream and slot release
 * as those of webhooks, authorised on the streams they decide on.
 */
export function staffRunCommands(deps: StaffRunDeps) {
  return {
    /** A manual start for an issue or PR of a connected repository; `created: false` when the key was used already for the same run. */
    async start(userId: string, input: StartRun, meta: EventMeta): Promise<{ runId: string; created: boolean; append?: AppendResult }> {
      if (!deps.agents.has(input.agent)) throw new DomainError('invalid_argument', `no agent ${input.agent.slice(0, 40)} in the roster`);
      const runId = manualRunIdOf(input.projectId, input.correlationId);
      try {
        const { append } = await handleCommand(deps, meta, async (load) => {
          const [user, project] = await load<[User, Project]>([userFold(userId), projectFold(input.projectId)]);
          const allowed = authorize('runs.start', user.state, project.state);
          const repository = allowed.project!.repositories.find((r) => r.id === input.repositoryId);
          if (!repository) throw new DomainError('not_found', 'repository not found');
          if (repository.githubRepositoryId === null) throw new DomainError('failed_precondition', 'connect the repository again: its GitHub id is not known');
          const learningMode = learningModeFor({
            member: allowed.member?.learningMode ?? null, user: allowed.user.learningMode, project: allowed.project!.learningMode, platformDefault: deps.learningModeDefault,
          });
          const requested = decideRun({
            type: 'RequestRun', runId, projectId: input.projectId, agent: input.agent, repository: `github/${repository.owner}/${repository.name}`,
            repositoryId: repository.id, subject: input.subject, learningMode, now: deps.now(),
          }, initialRun);
          const subject = streamOf.subject({ provider: 'github', repositoryId: repository.githubRepositoryId, ...input.subject });
          return {
            writes: [
              { stream: streamOf.run(runId), expected: 'no_stream', events: requested },
              { stream: subject, expected: 'any', events: decideSubject({ type: 'RecordRun', runId, label: 'manual', agent: input.agent }, initialSubject) },
            ],
            result: undefined,
          };
        });
        return { runId, created: true, ...(append ? { append } : {}) };
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || error.stream !== streamOf.run(runId)) throw error;
        // The key was used: the same start again is answered with its run, anything else is a conflict.
        const [first] = await deps.store.readStream(streamOf.run(runId), { limit: 1 });
        const same = first?.type === 'RunRequested' && first.data.projectId === input.projectId && first.data.repositoryId === input.repositoryId
          && first.data.agent === input.agent && first.data.subject.kind === input.subject.kind && first.data.subject.number === input.subject.number;
        if (!same) throw new DomainError('conflict', 'that correlation_id started another run');
        const [user, project] = await readFolded(deps.store, [userFold(userId), projectFold(input.projectId)]);
        authorize('project.read', user!.state as User, project!.state as Project);
        return { runId, created: false };
      }
    },

    /** Cancels a run (a no-op on a finished one), releasing its slot in the same append. */
    async cancel(userId: string, runId: string, meta: EventMeta): Promise<{ status: Run['status']; append?: AppendResult }> {
      const { result, append } = await handleCommand(deps, meta, async (load) => {
        const [run] = await load<[Run]>([{ stream: streamOf.run(runId), fold: runDecider }]);
        if (run.state.status === 'none') throw new DomainError('not_found', 'run not found');
        const [user, project] = await load<[User, Project]>([userFold(userId), projectFold(run.state.projectId)]);
        const allowed = authorize('runs.cancel', user.state, project.state);
        const writes = await endingWrites(load, run, { type: 'CancelRun', reason: 'canceled by staff', by: actorOf(allowed.user) }, deps.now());
        const events = writes[0]!.events;
        return { writes, result: events.length > 0 ? 'canceled' as const : run.state.status };
      });
      return { status: result, ...(append ? { append } : {}) };
    },
  };
}
