import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ConcurrencyError, type EventStore, type StreamAppend } from '../adapters/postgres/event-store.js';
import type { GlobalPosition } from '../adapters/postgres/position.js';
import type { DomainEvent } from '../domain/events.js';
import { evolveProject, initialProject } from '../domain/projects/project.js';
import { reservationStream } from '../domain/shared/reservations.js';
import { evolveUser, initialUser } from '../domain/users/user.js';
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
}

/**
 * What the platform knows of the delivery's repository and sender, from the log: the reservations
 * (remembered), then the project's and the user's streams in one read; the active runs (agent_runs,
 * on the primary) only when the delivery could cancel some.
 */
async function contextOf(deps: DeliveryDeps, facts: DeliveryFacts): Promise<DeliveryContext> {
  const context: DeliveryContext = { repository: null, sender: null, activeRuns: [], learningModeDefault: deps.learningModeDefault };
  if (!facts.repository) return context;
  const [projectStream, userStream] = await Promise.all([
    ownerOf(deps.store, 'repository', `github/${facts.repository.owner}/${facts.repository.name}`),
    facts.sender ? ownerOf(deps.store, 'github_login', facts.sender.login) : undefined,
  ]);
  if (!projectStream) return context;
  const streams = await deps.store.readStreams(userStream ? [projectStream, userStream] : [projectStream]);
  const project = (streams.get(projectStream) ?? []).reduce((s, e) => evolveProject(s, e as DomainEvent), initialProject);
  if (project.status !== 'active') return context;
  const repository = project.repositories.find(
    (r) => r.owner.toLowerCase() === facts.repository!.owner.toLowerCase() && r.name.toLowerCase() === facts.repository!.name.toLowerCase(),
  );
  if (!repository) return context;
  context.repository = { projectId: project.projectId, repositoryId: repository.id, projectLearningMode: project.learningMode };
  if (userStream) {
    const user = (streams.get(userStream) ?? []).reduce((s, e) => evolveUser(s, e as DomainEvent), initialUser);
    if (user.status === 'allowed') {
      const member = project.members[user.userId];
      context.sender = {
        userId: user.userId,
        platformRole: user.platformRole,
        projectRole: member?.role ?? null,
        userLearningMode: user.learningMode,
        memberLearningMode: member?.learningMode ?? null,
      };
    }
  }
  const couldCancel = facts.action === 'closed' || facts.action === 'unlabeled';
  if (facts.subject && couldCancel) {
    const { rows } = await deps.primary.query<{ id: string }>(
      `SELECT id::text FROM agent_runs
        WHERE status IN ('pending', 'scheduled', 'running') AND project_id = $1
          AND run_payload->>'repository' = $2 AND (run_payload->'subject'->>'number')::int = $3`,
      [project.projectId, `github/${facts.repository.owner}/${facts.repository.name}`, facts.subject.number],
    );
    context.activeRuns = rows.map((r) => r.id);
  }
  return context;
}

/**
 * A verified delivery in, its decision out, recorded in one append: the delivery's own stream
 * (which must not exist yet), and for a start the new run plus a reservation of the labelling
 * itself, so neither a redelivery nor a second delivery of the same labelling starts two runs.
 */
export async function receiveDelivery(deps: DeliveryDeps, delivery: Delivery): Promise<DeliveryAnswer> {
  const { store } = deps;
  const facts = delivery.facts;
  const meta = { correlationId: `delivery-${delivery.guid}`, actor: { type: 'human' as const, id: facts.sender?.login ?? 'github' } };
  const decision = decideTrigger(facts, await contextOf(deps, facts), deps.triggers);
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
      const runId = randomUUID();
      const repository = `github/${facts.repository!.owner}/${facts.repository!.name}`;
      // The labelling itself, once: repository, subject, label and the label event's time.
      const labelling = `${repository}#${facts.subject!.number}:${decision.label}@${delivery.facts.labeledAt ?? delivery.receivedAt}`;
      try {
        const result = await store.append([
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
          { stream: reservationStream('run_trigger', labelling), expected: 'no_stream', events: [{ type: 'NameReserved', data: { kind: 'run_trigger', owner: `run-${runId}` } } as DomainEvent] },
        ], meta);
        return { status: 'accepted', run_id: runId, position: result.position };
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || !error.stream.startsWith('run_trigger-')) throw error;
        const result = await store.append([recorded('ignored', 'duplicate_trigger', [])], meta);
        return { status: 'ignored', reason: 'duplicate_trigger', position: result.position };
      }
    }
    if (decision.kind === 'cancel') {
      const result = await store.append([
        recorded('canceled', decision.reason, decision.runIds),
        ...decision.runIds.map((runId) => ({
          stream: `run-${runId}`,
          expected: 'any' as const,
          events: [{ type: 'RunCanceled', data: { runId, reason: decision.reason, finishedAt: delivery.receivedAt } } as DomainEvent],
        })),
      ], meta);
      return { status: 'canceled', run_ids: decision.runIds, position: result.position };
    }
    const result = await store.append([recorded('ignored', decision.reason, [])], meta);
    return { status: 'ignored', reason: decision.reason, position: result.position };
  } catch (error) {
    if (duplicateDelivery(error)) return { status: 'duplicate' };
    throw error;
  }
}
