import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent } from '../../domain/runs/events.js';
import { decideRun, evolveRun, initialRun, runDecider, type RunCommand, type RunStatus } from '../../domain/runs/run.js';
import { DomainError } from '../../domain/shared/errors.js';
import { foldStream } from '../../domain/shared/decider.js';

const R = '00000000-0000-4000-8000-0000000000a1';
const P = '00000000-0000-4000-8000-0000000000b1';
const now = '2026-11-28T10:00:00.000Z';
const ada = { githubUserId: 7, login: 'ada' };

const requested: RunEvent = { type: 'RunRequested', data: { runId: R, projectId: P, agent: 'dev', repository: 'github/octo/hello', subject: { kind: 'issue', number: 3 }, learningMode: false, requestedAt: now } };
const scheduled: RunEvent = { type: 'RunScheduled', data: { runId: R, slot: 1, leaseExpiresAt: now, scheduledAt: now } };
const started: RunEvent = { type: 'JobStarted', data: { runId: R, namespace: 'run-a1', job: 'agent', startedAt: now } };
const succeeded: RunEvent = { type: 'RunSucceeded', data: { runId: R, finishedAt: now } };
const failed: RunEvent = { type: 'RunFailed', data: { runId: R, reason: 'deadline', finishedAt: now } };
const canceledBy = (by: typeof ada | null): RunEvent => ({ type: 'RunCanceled', data: { runId: R, reason: 'trigger_label_removed', finishedAt: now, canceledBy: by } });

const request: RunCommand = { type: 'RequestRun', runId: R, projectId: P, agent: 'dev', repository: 'github/octo/hello', subject: { kind: 'issue', number: 3 }, learningMode: false, now };
const cancel: RunCommand = { type: 'CancelRun', reason: 'trigger_label_removed', by: ada, now };
const schedule: RunCommand = { type: 'ScheduleRun', slot: 1, leaseExpiresAt: now, now };
const start: RunCommand = { type: 'StartJob', namespace: 'run-a1', job: 'agent', now };
const succeed: RunCommand = { type: 'SucceedRun', now };
const fail: RunCommand = { type: 'FailRun', reason: 'deadline', now };
const fold = (events: RunEvent[]) => events.reduce(evolveRun, initialRun);

// given (past events) / when (command) / then (new events, or the error code)
const decisions: [string, RunEvent[], RunCommand, RunEvent[] | DomainError['code']][] = [
  ['requests a new run', [], request, [requested]],
  ['a run is requested once', [requested], request, 'conflict'],
  ['cancels a pending run, recording who asked', [requested], cancel, [canceledBy(ada)]],
  ['cancels a scheduled run', [requested, scheduled], cancel, [canceledBy(ada)]],
  ['cancels a running run', [requested, scheduled, started], cancel, [canceledBy(ada)]],
  ['a cancel of a succeeded run is a no-op', [requested, scheduled, started, succeeded], cancel, []],
  ['a cancel of a failed run is a no-op', [requested, failed], cancel, []],
  ['a cancel of a canceled run is a no-op', [requested, canceledBy(null)], cancel, []],
  ['a cancel of no run is not found', [], cancel, 'not_found'],
  ['schedules a pending run on its slot', [requested], schedule, [scheduled]],
  ['scheduling it again on the same slot is a no-op (a replayed reactor)', [requested, scheduled], schedule, []],
  ['a running run is not scheduled again', [requested, scheduled, started], schedule, 'failed_precondition'],
  ['prepares the namespace of a scheduled run', [requested, scheduled], { type: 'PrepareNamespace', namespace: 'run-a1', objects: ['Namespace/run-a1'], now }, [{ type: 'RunNamespacePrepared', data: { runId: R, namespace: 'run-a1', objects: ['Namespace/run-a1'], preparedAt: now } }]],
  ['preparing it again is a no-op', [requested, scheduled, { type: 'RunNamespacePrepared', data: { runId: R, namespace: 'run-a1', objects: [], preparedAt: now } }], { type: 'PrepareNamespace', namespace: 'run-a1', objects: [], now }, []],
  ['a pending run has no namespace to prepare', [requested], { type: 'PrepareNamespace', namespace: 'run-a1', objects: [], now }, 'failed_precondition'],
  ['starts the Job of a scheduled run', [requested, scheduled], start, [started]],
  ['a pending run has no slot to start on', [requested], start, 'failed_precondition'],
  ['starting it again is a no-op', [requested, scheduled, started], start, []],
  ['a running run succeeds', [requested, scheduled, started], succeed, [succeeded]],
  ['a run that never started does not succeed', [requested, scheduled], succeed, 'failed_precondition'],
  ['a run fails from any active state: pending', [requested], fail, [failed]],
  ['a run fails from any active state: running', [requested, scheduled, started], fail, [failed]],
  ['a failed run keeps what its pod reported (a checkpoint)', [requested, scheduled, started], { ...fail, result: { branch: 'codex/issue-7', commit: 'c0ffee', pullRequest: 100, checkpoint: true } },
    [{ type: 'RunFailed', data: { runId: R, reason: 'deadline', finishedAt: now, result: { branch: 'codex/issue-7', commit: 'c0ffee', pullRequest: 100, checkpoint: true } } }]],
  ['an outcome after a cancel is a no-op', [requested, scheduled, started, canceledBy(ada)], succeed, []],
  ['a failure after success is a no-op', [requested, scheduled, started, succeeded], fail, []],
  ['no run, no outcome', [], succeed, 'not_found'],
];

// given (events) / then (status): terminal states are final, whatever comes after them
const lifecycles: [string, RunEvent[], RunStatus][] = [
  ['nothing yet', [], 'none'],
  ['requested', [requested], 'pending'],
  ['scheduled', [requested, scheduled], 'scheduled'],
  ['running', [requested, scheduled, started], 'running'],
  ['a JobStarted before scheduling changes nothing', [requested, started], 'pending'],
  ['succeeded', [requested, scheduled, started, succeeded], 'succeeded'],
  ['a JobStarted after the outcome changes nothing', [requested, scheduled, succeeded, started], 'succeeded'],
  ['a cancel after a failure changes nothing', [requested, failed, canceledBy(ada)], 'failed'],
  ['an outcome before the request changes nothing', [succeeded], 'none'],
];

describe('the run decider', () => {
  for (const [name, given, when, then] of decisions) {
    it(name, () => {
      if (typeof then === 'string') assert.throws(() => decideRun(when, fold(given)), (e: unknown) => e instanceof DomainError && e.code === then);
      else assert.deepEqual(decideRun(when, fold(given)), then);
    });
  }
  for (const [name, given, status] of lifecycles) it(`lifecycle: ${name}`, () => assert.equal(fold(given).status, status));

  it('folds only its own events from a stream, with the version reached', () => {
    const stored = [requested, { type: 'SubjectRunRequested', data: {} }, scheduled, started].map((e, i) => ({ ...e, streamPosition: i + 1 }));
    assert.deepEqual(foldStream(stored, runDecider), { state: { status: 'running', runId: R, projectId: P, slot: 1 }, version: 4 });
  });
});

