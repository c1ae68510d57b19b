import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideTrigger, defaultTriggers, parseTriggers, type Decision, type DeliveryContext, type DeliveryFacts } from '../../domain/webhooks/trigger-policy.js';

const labeled = (label: string, labels: string[] = [label], kind: 'issue' | 'pull_request' = 'issue'): DeliveryFacts => ({
  event: kind === 'issue' ? 'issues' : 'pull_request',
  action: 'labeled',
  repository: { id: 42, owner: 'octo', name: 'hello' },
  subject: { kind, number: 7, labels },
  label,
  sender: { id: 7, login: 'ada', type: 'User' },
});

const member = (projectRole: 'read' | 'read_write' | 'admin' | null, platformRole: 'owner' | 'admin' | null = null) => ({
  userId: 'u1', platformRole, projectRole, userLearningMode: null, memberLearningMode: null,
});

const known: DeliveryContext = {
  repository: { projectId: 'p1', repositoryId: 'r1', projectLearningMode: null },
  sender: member('read_write'),
  activeRuns: [],
  learningModeDefault: false,
};

const dev = (runId: string) => ({ runId, label: 'run:dev' });
const revise = (runId: string) => ({ runId, label: 'run:dev:revise' });

const start = (over: Partial<Extract<Decision, { kind: 'start' }>> = {}): Decision => ({
  kind: 'start', agent: 'dev', mode: 'run', label: 'run:dev', learningMode: false, projectId: 'p1', repositoryId: 'r1', senderId: 'u1', ...over,
});

// given (context) / when (delivery) / then (decision)
const table: [string, DeliveryContext, DeliveryFacts, Decision][] = [
  ['run:dev on an issue by a read_write member starts a dev run', known, labeled('run:dev'), start()],
  ['run:dev by a project admin starts', { ...known, sender: member('admin') }, labeled('run:dev'), start()],
  ['run:dev by a platform owner who is no member starts', { ...known, sender: member(null, 'owner') }, labeled('run:dev'), start()],
  ['run:dev:revise on a PR starts a revise run', known, labeled('run:dev:revise', ['run:dev:revise'], 'pull_request'), start({ mode: 'revise', label: 'run:dev:revise' })],
  ['run:dev:revise on a PR from a fork starts nothing (its branch is out of the token\'s reach)', known, { ...labeled('run:dev:revise', ['run:dev:revise'], 'pull_request'), subject: { kind: 'pull_request', number: 7, labels: ['run:dev:revise'], fromFork: true } }, { kind: 'ignore', reason: 'pull_request_from_fork' }],
  ['another label is not a trigger', known, labeled('bug'), { kind: 'ignore', reason: 'not_a_trigger' }],
  ['run:dev on a PR is the wrong kind of subject', known, labeled('run:dev', ['run:dev'], 'pull_request'), { kind: 'ignore', reason: 'wrong_subject_kind' }],
  ['an issue opened is not a trigger', known, { ...labeled('run:dev'), action: 'opened', label: null }, { kind: 'ignore', reason: 'not_a_trigger' }],
  ['two run:* labels conflict', known, labeled('run:dev', ['run:dev', 'run:dev:revise']), { kind: 'ignore', reason: 'conflicting_trigger_labels' }],
  ['a bot sender is ignored', known, { ...labeled('run:dev'), sender: { id: 8, login: 'ci[bot]', type: 'Bot' } }, { kind: 'ignore', reason: 'sender_not_a_user' }],
  ['a sender without a type is not a User', known, { ...labeled('run:dev'), sender: { id: 7, login: 'ada', type: null } }, { kind: 'ignore', reason: 'sender_not_a_user' }],
  ['a repository no project owns', { ...known, repository: null }, labeled('run:dev'), { kind: 'ignore', reason: 'repository_not_connected' }],
  ['a sender the platform does not know', { ...known, sender: null }, labeled('run:dev'), { kind: 'ignore', reason: 'sender_not_allowed' }],
  ['a read-only member', { ...known, sender: member('read') }, labeled('run:dev'), { kind: 'ignore', reason: 'sender_not_allowed' }],
  ['a known user who is no member of the project', { ...known, sender: member(null) }, labeled('run:dev'), { kind: 'ignore', reason: 'sender_not_allowed' }],
  ['removing run:dev cancels the active runs it started', { ...known, activeRuns: [dev('run-a'), dev('run-b'), revise('run-c')] }, { ...labeled('run:dev', []), action: 'unlabeled' }, { kind: 'cancel', runIds: ['run-a', 'run-b'], reason: 'trigger_label_removed' }],
  ['removing run:dev:revise from a PR cancels its revise run', { ...known, activeRuns: [revise('run-c')] }, { ...labeled('run:dev:revise', [], 'pull_request'), action: 'unlabeled' }, { kind: 'cancel', runIds: ['run-c'], reason: 'trigger_label_removed' }],
  ['removing run:dev when only a revise run is active cancels nothing', { ...known, activeRuns: [revise('run-c')] }, { ...labeled('run:dev', []), action: 'unlabeled' }, { kind: 'ignore', reason: 'nothing_to_cancel' }],
  ['removing run:dev with nothing active', known, { ...labeled('run:dev', []), action: 'unlabeled' }, { kind: 'ignore', reason: 'nothing_to_cancel' }],
  ['removing another label is not a trigger', { ...known, activeRuns: [dev('run-a')] }, { ...labeled('bug', []), action: 'unlabeled' }, { kind: 'ignore', reason: 'not_a_trigger' }],
  ['closing the issue cancels its runs', { ...known, activeRuns: [dev('run-a')] }, { ...labeled('run:dev'), action: 'closed', label: null }, { kind: 'cancel', runIds: ['run-a'], reason: 'issue_closed' }],
  ['closing the PR cancels its runs', { ...known, activeRuns: [dev('run-a')] }, { ...labeled('run:dev:revise', [], 'pull_request'), action: 'closed', label: null }, { kind: 'cancel', runIds: ['run-a'], reason: 'pull_request_closed' }],
  // Deliveries come in any order, and GitHub's times are whole seconds (found by a review).
  ['run:dev labelled before its latest removal arrived late: it starts nothing', { ...known, labelRemovedAt: '2026-11-29T10:00:05Z' }, { ...labeled('run:dev'), labeledAt: '2026-11-29T10:00:04Z' }, { kind: 'ignore', reason: 'label_removed_since' }],
  ['run:dev labelled in the second of its removal is a new labelling: it starts', { ...known, labelRemovedAt: '2026-11-29T10:00:05Z' }, { ...labeled('run:dev'), labeledAt: '2026-11-29T10:00:05Z' }, start()],
  ['run:dev labelled after its removal starts', { ...known, labelRemovedAt: '2026-11-29T10:00:05Z' }, { ...labeled('run:dev'), labeledAt: '2026-11-29T10:00:06Z' }, start()],
  ['removing run:dev cancels the runs labelled up to the removal, not one labelled since', { ...known, activeRuns: [{ runId: 'run-a', label: 'run:dev', labeledAt: '2026-11-29T10:00:01Z' }, { runId: 'run-b', label: 'run:dev', labeledAt: '2026-11-29T10:00:05Z' }, { runId: 'run-c', label: 'run:dev', labeledAt: '2026-11-29T10:00:09Z' }, { runId: 'run-d', label: 'run:dev', labeledAt: null }] }, { ...labeled('run:dev', []), action: 'unlabeled', labeledAt: '2026-11-29T10:00:05Z' }, { kind: 'cancel', runIds: ['run-a', 'run-b', 'run-d'], reason: 'trigger_label_removed' }],
  ['closing in an unconnected repository', { ...known, repository: null }, { ...labeled('run:dev'), action: 'closed', label: null }, { kind: 'ignore', reason: 'repository_not_connected' }],
];

describe('the trigger policy', () => {
  for (const [name, given, when, then] of table) {
    it(name, () => assert.deepEqual(decideTrigger(when, given), then));
  }

  it('takes its label → agent map from configuration', () => {
    const triggers = { 'run:qa': { agent: 'qa', on: 'issue', mode: 'run' } } as const;
    assert.deepEqual(decideTrigger(labeled('run:qa'), known, triggers), start({ agent: 'qa', label: 'run:qa' }));
    assert.deepEqual(decideTrigger(labeled('run:dev'), known, triggers), { kind: 'ignore', reason: 'not_a_trigger' });
  });
});

describe('learning mode of a started run', () => {
  const withModes = (member: boolean | null, user: boolean | null, project: boolean | null, platformDefault: boolean): DeliveryContext => ({
    ...known,
    repository: { ...known.repository!, projectLearningMode: project },
    sender: { ...member_(), memberLearningMode: member, userLearningMode: user },
    learningModeDefault: platformDefault,
  });
  const member_ = () => member('read_write');
  const cases: [string, DeliveryContext, boolean][] = [
    ['the platform default when nothing overrides it (on)', withModes(null, null, null, true), true],
    ['the platform default when nothing overrides it (off)', withModes(null, null, null, false), false],
    ["the project's setting over the default", withModes(null, null, true, false), true],
    ["the user's own setting over the project's", withModes(null, false, true, true), false],
    ["the member's override over everything", withModes(true, false, false, false), true],
  ];
  for (const [name, given, expected] of cases) {
    it(name, () => {
      const decision = decideTrigger(labeled('run:dev'), given);
      assert.equal(decision.kind, 'start');
      assert.equal((decision as Extract<Decision, { kind: 'start' }>).learningMode, expected);
    });
  }
});

describe('CODEXK8S_TRIGGER_LABELS', () => {
  it('defaults to run:dev and run:dev:revise', () => assert.deepEqual(parseTriggers(undefined), defaultTriggers));
  it('reads a label map', () =>
    assert.deepEqual(parseTriggers('{"run:qa":{"agent":"qa","on":"pull_request","mode":"run"}}'), { 'run:qa': { agent: 'qa', on: 'pull_request', mode: 'run' } }));
  for (const bad of ['not json', '[]', '{"qa":{"agent":"qa","on":"issue","mode":"run"}}', '{"run:qa":{"agent":"QA!","on":"issue","mode":"run"}}', '{"run:qa":{"agent":"qa","on":"commit","mode":"run"}}']) {
    it(`refuses ${bad}`, () => assert.throws(() => parseTriggers(bad), /CODEXK8S_TRIGGER_LABELS/));
  }
});
