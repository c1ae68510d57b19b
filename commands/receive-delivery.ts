import type pg from 'pg';
import { ConcurrencyError, type EventStore, type StreamAppend } from '../adapters/postgres/event-store.js';
import type { GlobalPosition } from '../adapters/postgres/position.js';
import type { DomainEvent } from '../domain/events.js';
import { evolveProject, initialProject, type Project } from '../domain/projects/project.js';
import { runIdOf } from '../domain/webhooks/run-identity.js';
import { evolveUser, initialUser, type User } from '../domain/users/user.js';
import { guardOf, type RememberedStates } from './remembered-states.js';
import { ownerOf } from './reservations.js';
import { decideTrigger, type DeliveryContext, type DeliveryFacts, type TriggerConfig } from '../domain/webhooks/trigger-policy.js';

export interface Delivery {
  guid: string;
  event: string;
  facts: DeliveryFacts;
  bodySha256: string;
  receivedAt: string;
}

export type DeliveryAnswer =
  | { status: 'accepted'; run_id: string; position: GlobalPosition }
  | { status: 'canceled'; run_ids: readonly string[]; position: GlobalPosition }
  | { status: 'ignored'; reason: string; position: GlobalPosition }
  | { status: 'duplicate' };

export interface DeliveryDeps {
  store: EventStore;
  /** Where active runs are looked up (agent_runs): the primary, so a cancel sees recent runs. */
  primary: pg.Pool;
  triggers: TriggerConfig;
  learningModeDefault: boolean;
  /** The project and user states a delivery decides on, remembered between deliveries. */
  states: RememberedStates;
}

/**
 * What the platform knows of the delivery's repository and sender, from the log: the reservations
 * and the project's and user's states (remembered, or else read in one round trip), with a guard
 * per stream read; the active runs (agent_runs, on the primary) only when the delivery could cancel.
 */
async function contextOf(deps: DeliveryDeps, facts: DeliveryFacts): Promise<{ context: DeliveryContext; guards: StreamAppend<DomainEvent>[] }> {
  const context: DeliveryContext = { repository: null, sender: null, activeRuns: [], learningModeDefault: deps.learningModeDefault };
  if (!facts.repository) return { context, guards: [] };
  const [projectStream, userStream] = await Promise.all([
    ownerOf(deps.store, 'repository', `github/${facts.repository.owner}/${facts.repository.name}`),
    facts.sender ? ownerOf(deps.store, 'github_login', facts.sender.login) : undefined,
  ]);
  if (!projectStream) return { context, guards: [] };
  const projectFold = { stream: projectStream, evolve: evolveProject, initial: initialProject };
  const [project, user] = userStream
    ? await deps.states.load<[Project, User]>([projectFold, { stream: userStream, evolve: evolveUser, initial: initialUser }])
    : [...(await deps.states.load<[Project]>([projectFold])), undefined];
  const guards = (user ? [project, user] : [project]).map(guardOf);
  if (project.state.status !== 'active') return { context, guards };
  const repository = project.state.repositories.find(
    (r) => r.owner.toLowerCase() === facts.repository!.owner.toLowerCase() && r.name.toLowerCase() === facts.repository!.name.toLowerCase(),
  );
  if (!repository) return { context, guards };
  context.repository = { projectId: project.state.projectId, repositoryId: repository.id, projectLearningMode: project.state.learningMode };
  if (user?.state.status === 'allowed') {
    const member = project.state.members[user.state.userId];
    context.sender = {
      userId: user.state.userId,
      platformRole: user.state.platformRole,
      projectRole: member?.role ?? null,
      userLearningMode: user.state.learningMode,
      memberLearningMode: member?.learningMode ?? null,
    };
  }
  const couldCancel = facts.action === 'closed' || facts.action === 'unlabeled';
  if (facts.subject && couldCancel) {
    const { rows } = await deps.primary.query<{ id: string }>(
      `SELECT id::text FROM agent_runs
        WHERE status IN ('pending', 'scheduled', 'running') AND project_id = $1
          AND run_payload->>'repository' = $2 AND (run_payload->'subject'->>'number')::int = $3`,
      [project.state.projectId, `github/${facts.repository.owner}/${facts.repository.name}`, facts.subject.number],
    );
    context.activeRuns = rows.map((r) => r.id);
  }
  return { context, guards };
}

// A guard fails only when its project or user changed since it was remembered; deciding again on
// the fresh state settles it, so a few attempts are plenty.
const MAX_ATTEMPTS = 5;

/**
 * A verified delivery in, its decision out, recorded in one append: the delivery's own stream
 * (which must not exist yet); for a start, the new run, named by its labelling (runIdOf), whose
 * stream must not exist yet either, so neither a redelivery nor a second delivery of the same
 * labelling starts two runs; and the guards of the project and user the decision was made on.
 */
export async function receiveDelivery(deps: DeliveryDeps, delivery: Delivery): Promise<DeliveryAnswer> {
  for (let attempt = 1; ; attempt++) {
    const { context, guards } = await contextOf(deps, delivery.facts);
    try {
      return await decideAndRecord(deps, delivery, context, guards);
    } catch (error) {
      const stale = error instanceof ConcurrencyError && guards.some((g) => g.stream === error.stream);
      if (!stale || attempt >= MAX_ATTEMPTS) throw error;
      deps.states.forget(error.stream);
    }
  }
}

async function decideAndRecord(deps: DeliveryDeps, delivery: Delivery, context: DeliveryContext, guards: StreamAppend<DomainEvent>[]): Promise<DeliveryAnswer> {
  const { store } = deps;
  const facts = delivery.facts;
  const meta = { correlationId: `delivery-${delivery.guid}`, actor: { type: 'human' as const, id: facts.sender?.login ?? 'github' } };
  const decision = decideTrigger(facts, context, deps.triggers);
  const recorded = (outcome: 'accepted' | 'canceled' | 'ignored', reason: string | null, runIds: readonly string[]): StreamAppend<DomainEvent> => ({
    stream: `delivery-${delivery.guid}`,
    expected: 'no_stream',
    events: [{
      type: 'DeliveryDecided',
      data: {
        guid: delivery.guid, event: delivery.event, action: facts.action,
        repository: facts.repository ? `${facts.repository.owner}/${facts.repository.name}` : null,
        number: facts.subject?.number ?? null, label: facts.label, sender: facts.sender?.login ?? null,
        bodySha256: delivery.bodySha256, decision: outcome, reason, runIds: [...runIds], receivedAt: delivery.receivedAt,
      },
    } as DomainEvent],
  });
  const duplicateDelivery = (error: unknown) => error instanceof ConcurrencyError && error.stream === `delivery-${delivery.guid}`;

  try {
    if (decision.kind === 'start') {
      const repository = `github/${facts.repository!.owner}/${facts.repository!.name}`;
      const runId = runIdOf({ repository, number: facts.subject!.number, label: decision.label, labeledAt: facts.labeledAt ?? delivery.receivedAt });
      try {
        const result = await store.append([
          ...guards,
          recorded('accepted', null, [runId]),
          {
            stream: `run-${runId}`,
            expected: 'no_stream',
            events: [{
              type: 'RunRequested',
              data: {
                runId, projectId: decision.projectId, agent: decision.agent, repository,
                subject: { kind: facts.subject!.kind, number: facts.subject!.number },
                learningMode: decision.learningMode, requestedAt: delivery.receivedAt,
              },
            } as DomainEvent],
          },
        ], meta);
        return { status: 'accepted', run_id: runId, position: result.position };
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || error.stream !== `run-${runId}`) throw error;
        const result = await store.append([...guards, recorded('ignored', 'duplicate_trigger', [])], meta);
        return { status: 'ignored', reason: 'duplicate_trigger', position: result.position };
      }
    }
    if (decision.kind === 'cancel') {
      const result = await store.append([
        ...guards,
        recorded('canceled', decision.reason, decision.runIds),
        ...decision.runIds.map((runId) => ({
          stream: `run-${runId}`,
          expected: 'any' as const,
          events: [{ type: 'RunCanceled', data: { runId, reason: decision.reason, finishedAt: delivery.receivedAt } } as DomainEvent],
        })),
      ], meta);
      return { status: 'canceled', run_ids: decision.runIds, position: result.position };
    }
    const result = await store.append([...guards, recorded('ignored', decision.reason, [])], meta);
    return { status: 'ignored', reason: decision.reason, position: result.position };
  } catch (error) {
    if (duplicateDelivery(error)) return { status: 'duplicate' };
    throw error;
  }
}
