import { ConcurrencyError, type EventMeta, type EventStore, type GlobalPosition } from '../ports/event-store.js';
import type { DomainEvent } from '../domain/events.js';
import { decideProject, membershipOf, projectDecider, repositoryByGithubId, type Project } from '../domain/projects/project.js';
import { decideRun, initialRun, isActive, runDecider, type Run } from '../domain/runs/run.js';
import { decideSubject, initialSubject, lastRemovalOf, labellingOf, subjectDecider, type Subject } from '../domain/runs/subject.js';
import { repositoryKey, streamOf, type SubjectRef } from '../domain/shared/streams.js';
import { grantOf, userDecider, type User } from '../domain/users/user.js';
import { runIdOf } from '../domain/webhooks/run-identity.js';
import { decideTrigger, type Decision, type DeliveryContext, type DeliveryFacts, type TriggerConfig } from '../domain/webhooks/trigger-policy.js';
import { handleCommand, type Load, type Write } from './handle-command.js';
import { endingWrites } from './runs.js';
import type { RememberedStates } from './remembered-states.js';
import { ownerOf } from './reservations.js';

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
  store: Pick<EventStore, 'append' | 'readStreams' | 'readStream'>;
  triggers: TriggerConfig;
  learningModeDefault: boolean;
  /** The project and user states a delivery decides on, remembered between deliveries. */
  states: RememberedStates;
}

const subjectOf = (facts: DeliveryFacts): SubjectRef | undefined =>
  facts.repository && facts.subject ? { provider: 'github', repositoryId: facts.repository.id, kind: facts.subject.kind, number: facts.subject.number } : undefined;

interface Known {
  context: DeliveryContext;
  project?: { stream: string; state: Project };
  /** The active runs' states, by id, when the delivery could cancel them. */
  runs: Map<string, { stream: string; state: Run }>;
  /** The issue's or PR's runs and label removals, when the delivery labels, unlabels or closes it. */
  subject?: { stream: string; state: Subject };
}

/**
 * What the platform knows of the delivery's repository and sender, from their streams: the
 * repository and the sender are found by GitHub's numeric ids (reservations), the project and user
 * states are remembered between deliveries; the subject's stream is read when the delivery labels,
 * unlabels or closes it, and its runs when it could cancel them. Every stream loaded here is guarded
 * by the decision's append.
 */
async function knownOf(deps: DeliveryDeps, load: Load, facts: DeliveryFacts): Promise<Known> {
  const known: Known = { context: { repository: null, sender: null, activeRuns: [], learningModeDefault: deps.learningModeDefault }, runs: new Map() };
  if (!facts.repository) return known;
  const [projectStream, userStream] = await Promise.all([
    ownerOf(deps.store, 'repository', repositoryKey('github', facts.repository.id)),
    facts.sender ? ownerOf(deps.store, 'github_user', String(facts.sender.id)) : undefined,
  ]);
  if (!projectStream) return known;
  const projectFold = { stream: projectStream, fold: projectDecider };
  const [project, user] = userStream
    ? await load<[Project, User]>([projectFold, { stream: userStream, fold: userDecider }], { remembered: true })
    : [...(await load<[Project]>([projectFold], { remembered: true })), undefined];
  known.project = project;
  const repository = repositoryByGithubId(project.state, facts.repository.id);
  if (project.state.status !== 'active' || !repository) return known;
  known.context.repository = { projectId: project.state.projectId, repositoryId: repository.id, projectLearningMode: project.state.learningMode };
  if (user?.state.status === 'allowed') {
    const member = membershipOf(project.state, user.state.userId, grantOf(user.state));
    known.context.sender = {
      userId: user.state.userId,
      platformRole: user.state.platformRole,
      projectRole: member?.role ?? null,
      userLearningMode: user.state.learningMode,
      memberLearningMode: member?.learningMode ?? null,
    };
  }
  const subject = subjectOf(facts);
  const triggerLabelled = facts.action === 'labeled' && facts.label !== null && Object.hasOwn(deps.triggers, facts.label);
  if (subject && (facts.action === 'closed' || facts.action === 'unlabeled' || triggerLabelled)) {
    const [started] = await load<[Subject]>([{ stream: streamOf.subject(subject), fold: subjectDecider }]);
    known.subject = started;
    if (facts.label) known.context.labelRemovedAt = lastRemovalOf(started.state, facts.label);
    if (facts.action === 'labeled') return known;
    const runs = await load<Run[]>(started.state.runs.map(({ runId: id }) => ({ stream: streamOf.run(id), fold: runDecider })));
    const recorded = new Map(started.state.runs.map((r) => [r.runId, r]));
    for (const run of runs) {
      if (!isActive(run.state) || run.state.status === 'none') continue;
      known.runs.set(run.state.runId, run);
      const { label, labeledAt } = recorded.get(run.state.runId)!;
      known.context.activeRuns = [...known.context.activeRuns, { runId: run.state.runId, label, labeledAt }];
    }
  }
  return known;
}

/** The writes of a decision, beside the delivery's own record. */
async function writesOf(deps: Pick<DeliveryDeps, 'triggers'>, decision: Decision, delivery: Delivery, known: Known, load: Load): Promise<{ writes: Write[]; runIds: string[] }> {
  const { facts } = delivery;
  if (decision.kind === 'start') {
    const repository = `github/${facts.repository!.owner}/${facts.repository!.name}`;
    const subject = known.subject ?? { stream: streamOf.subject(subjectOf(facts)!), state: initialSubject };
    const runId = runIdOf({
      repository: repositoryKey('github', facts.repository!.id), number: facts.subject!.number, label: decision.label, labeledAt: facts.labeledAt ?? delivery.receivedAt,
      labelling: labellingOf(subject.state, decision.label, facts.labeledAt ?? null),
    });
    const requested = decideRun({
      type: 'RequestRun', runId, projectId: decision.projectId, agent: decision.agent, repository, repositoryId: decision.repositoryId,
      ...(facts.bodySha256 ? { issueBodySha256: facts.bodySha256 } : {}),
      subject: { kind: facts.subject!.kind, number: facts.subject!.number }, learningMode: decision.learningMode, now: delivery.receivedAt,
    }, initialRun);
    return {
      runIds: [runId],
      writes: [
        // The run's stream must not exist yet: a second delivery of one labelling starts no second run.
        { stream: streamOf.run(runId), expected: 'no_stream', events: requested },
        // At the version read: a removal recorded meanwhile makes this decision again.
        { stream: subject.stream, events: decideSubject({ type: 'RecordRun', runId, label: decision.label, agent: decision.agent, labeledAt: facts.labeledAt ?? null }, subject.state) },
      ],
    };
  }
  if (decision.kind === 'cancel') {
    const canceledBy = facts.sender ? { githubUserId: facts.sender.id, login: facts.sender.login } : null;
    // Each run is canceled at the version read and releases its slot in the same append.
    const writes: Write[] = [];
    for (const runId of decision.runIds) {
      writes.push(...(await endingWrites(load, known.runs.get(runId)!, { type: 'CancelRun', reason: decision.reason, by: canceledBy }, delivery.receivedAt)));
    }
    return { runIds: [...decision.runIds], writes: [...writes, ...removalOf(deps, facts, known)] };
  }
  return { runIds: [], writes: removalOf(deps, facts, known) };
}

/** A trigger label taken off is recorded on its subject, whether it canceled anything or not: a labelling that arrives after it is judged by it. */
function removalOf(deps: Pick<DeliveryDeps, 'triggers'>, facts: DeliveryFacts, known: Known): Write[] {
  if (facts.action !== 'unlabeled' || !facts.label || !Object.hasOwn(deps.triggers, facts.label) || !known.subject) return [];
  const events = decideSubject({ type: 'RecordLabelRemoved', label: facts.label, at: facts.labeledAt ?? null }, known.subject.state);
  return events.length > 0 ? [{ stream: known.subject.stream, events }] : [];
}

/** A connected repository that GitHub now names differently keeps its id; the project learns the new name. */
function renameOf(known: Known, facts: DeliveryFacts): Write[] {
  if (!known.project || !facts.repository) return [];
  const events = decideProject({ type: 'RenameRepository', githubRepositoryId: facts.repository.id, owner: facts.repository.owner, name: facts.repository.name }, known.project.state);
  return events.length > 0 ? [{ stream: known.project.stream, events }] : [];
}

function decided(delivery: Delivery, outcome: 'accepted' | 'canceled' | 'ignored', reason: string | null, runIds: readonly string[]): Write {
  const { facts } = delivery;
  const event: DomainEvent = {
    type: 'DeliveryDecided',
    data: {
      guid: delivery.guid, event: delivery.event, action: facts.action,
      repository: facts.repository ? `${facts.repository.owner}/${facts.repository.name}` : null, repositoryId: facts.repository?.id ?? null,
      number: facts.subject?.number ?? null, label: facts.label, sender: facts.sender?.login ?? null, senderId: facts.sender?.id ?? null,
      bodySha256: delivery.bodySha256, decision: outcome, reason, runIds: [...runIds], receivedAt: delivery.receivedAt,
    },
  };
  // The delivery's stream must not exist yet: that is how a redelivery is refused.
  return { stream: streamOf.delivery(delivery.guid), expected: 'no_stream', events: [event] };
}

/**
 * A verified delivery in, its decision out, recorded in one append through the command handler: the
 * delivery's own stream; for a start, the new run (named by its labelling) and its subject stream;
 * for a cancel, each active run at the version read; and the guards of every stream decided on.
 */
export async function receiveDelivery(deps: DeliveryDeps, delivery: Delivery): Promise<DeliveryAnswer> {
  const facts = delivery.facts;
  const meta: EventMeta = { correlationId: streamOf.delivery(delivery.guid), actor: { type: 'human', id: facts.sender ? `github:${facts.sender.id}` : 'github' } };
  const isDuplicate = (error: unknown) => error instanceof ConcurrencyError && error.stream === streamOf.delivery(delivery.guid);
  let startedRun: string | undefined;
  try {
    const { result, append } = await handleCommand(deps, meta, async (load) => {
      const known = await knownOf(deps, load, facts);
      const decision = decideTrigger(facts, known.context, deps.triggers);
      const { writes, runIds } = await writesOf(deps, decision, delivery, known, load);
      startedRun = decision.kind === 'start' ? runIds[0] : undefined;
      const outcome = decision.kind === 'start' ? 'accepted' : decision.kind === 'cancel' ? 'canceled' : 'ignored';
      const reason = decision.kind === 'ignore' ? decision.reason : decision.kind === 'cancel' ? decision.reason : null;
      return { writes: [decided(delivery, outcome, reason, runIds), ...writes, ...renameOf(known, facts)], result: { decision, runIds } };
    });
    const position = append!.position;
    if (result.decision.kind === 'start') return { status: 'accepted', run_id: result.runIds[0]!, position };
    if (result.decision.kind === 'cancel') return { status: 'canceled', run_ids: result.runIds, position };
    return { status: 'ignored', reason: result.decision.reason, position };
  } catch (error) {
    if (isDuplicate(error)) return { status: 'duplicate' };
    if (!(error instanceof ConcurrencyError) || !startedRun || error.stream !== streamOf.run(startedRun)) throw error;
  }
  // The labelling started its run already (the same labelling through another hook, under another GUID).
  try {
    const result = await deps.store.append([decided(delivery, 'ignored', 'duplicate_trigger', [])].map((w) => ({ ...w, expected: 'no_stream' as const })), meta);
    return { status: 'ignored', reason: 'duplicate_trigger', position: result.position };
  } catch (error) {
    if (isDuplicate(error)) return { status: 'duplicate' };
    throw error;
  }
}
