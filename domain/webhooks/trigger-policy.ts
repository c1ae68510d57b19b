import type { ProjectRole } from '../projects/events.js';
import type { PlatformRole } from '../users/events.js';
import { can, learningModeFor } from '../access/permissions.js';

/** A label that starts a run: which agent, on which kind of subject, in which mode. */
export interface TriggerLabel {
  agent: string;
  on: 'issue' | 'pull_request';
  mode: 'run' | 'revise';
}

/** Label → agent map: configuration, so more stages need no code. */
export type TriggerConfig = Readonly<Record<string, TriggerLabel>>;

export const defaultTriggers: TriggerConfig = {
  'run:dev': { agent: 'dev', on: 'issue', mode: 'run' },
  'run:dev:revise': { agent: 'dev', on: 'pull_request', mode: 'revise' },
};

/** Reads a label → agent map (CODEXK8S_TRIGGER_LABELS), refusing anything malformed. */
export function parseTriggers(json: string | undefined): TriggerConfig {
  if (json === undefined) return defaultTriggers;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new RangeError('CODEXK8S_TRIGGER_LABELS is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RangeError('CODEXK8S_TRIGGER_LABELS must map labels to {agent, on, mode}');
  const out: Record<string, TriggerLabel> = {};
  for (const [label, t] of Object.entries(value as Record<string, Partial<TriggerLabel>>)) {
    if (!label.startsWith('run:') || typeof t?.agent !== 'string' || !/^[a-z][a-z0-9-]{0,30}$/.test(t.agent) || (t.on !== 'issue' && t.on !== 'pull_request') || (t.mode !== 'run' && t.mode !== 'revise')) {
      throw new RangeError(`CODEXK8S_TRIGGER_LABELS: ${JSON.stringify(label).slice(0, 40)} needs a run:* label and {agent, on: issue|pull_request, mode: run|revise}`);
    }
    out[label] = { agent: t.agent, on: t.on, mode: t.mode };
  }
  return out;
}

/** What the policy needs to know of a delivery: safe context only. */
export interface DeliveryFacts {
  event: string;
  action: string | null;
  /** GitHub's numeric id (what a repository is matched by) and its current owner and name. */
  repository: { id: number; owner: string; name: string } | null;
  /**
   * For a pull request, `fromFork`: its head branch lives in another repository (by numeric id), or
   * in one that is gone. A revise pushes to the head branch with the connected repository's token,
   * which cannot reach a fork.
   */
  subject: { kind: 'issue' | 'pull_request'; number: number; labels: readonly string[]; fromFork?: boolean } | null;
  /** The label added or removed, for labeled/unlabeled. */
  label: string | null;
  /** GitHub's numeric user id (what a sender is matched by), login for display, and account type. */
  sender: { id: number; login: string; type: string | null } | null;
  /** When the label was applied, if the payload says (GitHub's issue updated_at): part of the run key. */
  labeledAt?: string | null;
  /** The SHA-256 of the or PR's body at this delivery: the text a run started now may use. */
  bodySha256?: string | null;
}

/** What the platform knows of the repository and the sender, read before deciding. */
export interface DeliveryContext {
  repository: { projectId: string; repositoryId: string; projectLearningMode: boolean | null } | null;
  sender: { userId: string; platformRole: PlatformRole; projectRole: ProjectRole | null; userLearningMode: boolean | null; memberLearningMode: boolean | null } | null;
  /** Active (pending, scheduled or running) runs on this issue or PR, with the label that started each and when. */
  activeRuns: readonly { runId: string; label: string; labeledAt?: string | null }[];
  /** When the delivery's label was last taken off this issue or PR, as GitHub gave it (from the subject's stream). */
  labelRemovedAt?: string | null;
  learningModeDefault: boolean;
}

export type IgnoreReason =
  | 'not_a_trigger'
  | 'repository_not_connected'
  | 'sender_not_allowed'
  | 'sender_not_a_user'
  | 'conflicting_trigger_labels'
  | 'wrong_subject_kind'
  | 'pull_request_from_fork'
  | 'nothing_to_cancel'
  | 'label_removed_since';

export type Decision =
  | { kind: 'start'; agent: string; mode: 'run' | 'revise'; label: string; learningMode: boolean; projectId: string; repositoryId: string; senderId: string }
  | { kind: 'cancel'; runIds: readonly string[]; reason: 'trigger_label_removed' | 'issue_closed' | 'pull_request_closed' }
  | { kind: 'ignore'; reason: IgnoreReason };

const ignore = (reason: IgnoreReason): Decision => ({ kind: 'ignore', reason });

/**
 * The trigger policy: pure, from the delivery's facts and what the platform knows, to one decision
 * with a machine-readable reason. Every delivery gets one.
 */
export function decideTrigger(facts: DeliveryFacts, context: DeliveryContext, triggers: TriggerConfig = defaultTriggers): Decision {
  const isTriggerLabel = (l: string | null) => l !== null && Object.hasOwn(triggers, l);

  // Cancellations: a trigger label taken off (the runs it started), or the issue/PR closed (all of its runs).
  const onSubject = facts.event === 'issues' || facts.event === 'pull_request';
  const closing = onSubject && facts.action === 'closed';
  const unlabeled = onSubject && facts.action === 'unlabeled' && isTriggerLabel(facts.label);
  if (closing || unlabeled) {
    if (!context.repository) return ignore('repository_not_connected');
    // A removal cancels the runs labelled before it, not one labelled again since (deliveries come in any order).
    const labelledAfter = (r: { labeledAt?: string | null }) => !!facts.labeledAt && !!r.labeledAt && r.labeledAt > facts.labeledAt;
    const runs = unlabeled ? context.activeRuns.filter((r) => r.label === facts.label && !labelledAfter(r)) : context.activeRuns;
    if (runs.length === 0) return ignore('nothing_to_cancel');
    return {
      kind: 'cancel',
      runIds: runs.map((r) => r.runId),
      reason: unlabeled ? 'trigger_label_removed' : facts.event === 'issues' ? 'issue_closed' : 'pull_request_closed',
    };
  }

  const labeled = (facts.event === 'issues' || facts.event === 'pull_request') && facts.action === 'labeled';
  if (!labeled || !isTriggerLabel(facts.label) || !facts.subject) return ignore('not_a_trigger');
  const trigger = triggers[facts.label!]!;
  if (trigger.on !== facts.subject.kind) return ignore('wrong_subject_kind');
  if (trigger.mode === 'revise' && facts.subject.fromFork) return ignore('pull_request_from_fork');
  const triggerLabelsOnSubject = new Set([...facts.subject.labels, facts.label!].filter((l) => isTriggerLabel(l) && l.startsWith('run:')));
  if (triggerLabelsOnSubject.size > 1) return ignore('conflicting_trigger_labels');
  if (!facts.sender || facts.sender.type !== 'User') return ignore('sender_not_a_user');
  if (!context.repository) return ignore('repository_not_connected');
  if (!context.sender || !can(context.sender, 'runs.start')) return ignore('sender_not_allowed');
  // A labelling older than the label's latest removal arrived late: the label is off. One in the same
  // second is a new labelling (GitHub's times are whole seconds).
  if (facts.labeledAt && context.labelRemovedAt && facts.labeledAt < context.labelRemovedAt) return ignore('label_removed_since');

  return {
    kind: 'start',
    agent: trigger.agent,
    mode: trigger.mode,
    label: facts.label!,
    projectId: context.repository.projectId,
    repositoryId: context.repository.repositoryId,
    senderId: context.sender.userId,
    learningMode: learningModeFor({
      member: context.sender.memberLearningMode,
      user: context.sender.userLearningMode,
      project: context.repository.projectLearningMode,
      platformDefault: context.learningModeDefault,
    }),
  };
}
