import { DomainError } from '../shared/errors.js';
import { acceptsTypes, type Decider } from '../shared/decider.js';
import { runEventCodecs, type GithubActor, type RunEvent, type RunResult } from './events.js';

/** What decisions about a run need, nothing more. */
export type Run =
  | { status: 'none' }
  | { status: 'pending'; runId: string; projectId: string; slot: null }
  | { status: 'scheduled' | 'running'; runId: string; projectId: string; slot: number; prepared?: boolean }
  | { status: 'succeeded' | 'failed' | 'canceled'; runId: string; projectId: string; slot: number | null };

export type RunStatus = Run['status'];

export const isTerminal = (run: Run): boolean => run.status === 'succeeded' || run.status === 'failed' || run.status === 'canceled';
export const isActive = (run: Run): boolean => run.status === 'pending' || run.status === 'scheduled' || run.status === 'running';

export type RunCommand =
  | {
      type: 'RequestRun';
      runId: string;
      projectId: string;
      agent: string;
      repository: string;
      repositoryId?: string;
      issueBodySha256?: string;
      subject: { kind: 'issue' | 'pull_request'; number: number };
      learningMode: boolean;
      now: string;
    }
  | { type: 'ScheduleRun'; slot: number; leaseExpiresAt: string; now: string }
  | { type: 'PrepareNamespace'; namespace: string; objects: string[]; now: string }
  | { type: 'StartJob'; namespace: string; job: string; now: string }
  | { type: 'SucceedRun'; result?: RunResult; now: string }
  | { type: 'FailRun'; reason: string; result?: RunResult; now: string }
  | { type: 'CancelRun'; reason: string; by: GithubActor | null; now: string };

export const initialRun: Run = { status: 'none' };

export function evolveRun(run: Run, event: RunEvent): Run {
  if (event.type === 'RunRequested') return run.status === 'none' ? { status: 'pending', runId: event.data.runId, projectId: event.data.projectId, slot: null } : run;
  // Terminal states are final, and nothing happens to a run before it was requested.
  if (run.status !== 'pending' && run.status !== 'scheduled' && run.status !== 'running') return run;
  switch (event.type) {
    case 'RunScheduled':
      return { ...run, status: 'scheduled', slot: event.data.slot };
    case 'RunNamespacePrepared':
      return run.status === 'scheduled' ? { ...run, prepared: true } : run;
    case 'JobStarted':
      return run.status === 'pending' ? run : { ...run, status: 'running' };
    case 'RunSucceeded':
      return { status: 'succeeded', runId: run.runId, projectId: run.projectId, slot: run.slot };
    case 'RunFailed':
      return { status: 'failed', runId: run.runId, projectId: run.projectId, slot: run.slot };
    case 'RunCanceled':
      return { status: 'canceled', runId: run.runId, projectId: run.projectId, slot: run.slot };
  }
}

const notFound = () => new DomainError('not_found', 'run not found');

/**
 * The run lifecycle: pending → scheduled (a slot leased; then its namespace prepared) → running (its Job created) →
 * succeeded | failed | canceled. A run may fail or be canceled from any active state. Terminal
 * states are final: a command on a finished run is a no-op (reactors replay; cancels race outcomes).
 * A transition out of order is a failed precondition.
 */
export function decideRun(command: RunCommand, run: Run): RunEvent[] {
  if (command.type === 'RequestRun') {
    if (run.status !== 'none') throw new DomainError('conflict', `run ${command.runId} exists already`);
    const { type: _type, now, ...data } = command;
    return [{ type: 'RunRequested', data: { ...data, requestedAt: now } }];
  }
  if (run.status === 'none') throw notFound();
  if (isTerminal(run)) return [];
  switch (command.type) {
    case 'ScheduleRun':
      if (run.status !== 'pending') return run.status === 'scheduled' && run.slot === command.slot ? [] : outOfOrder(run, 'scheduled');
      return [{ type: 'RunScheduled', data: { runId: run.runId, slot: command.slot, leaseExpiresAt: command.leaseExpiresAt, scheduledAt: command.now } }];
    case 'PrepareNamespace':
      if (run.status === 'running' || (run.status === 'scheduled' && run.prepared)) return [];
      if (run.status !== 'scheduled') return outOfOrder(run, 'running');
      return [{ type: 'RunNamespacePrepared', data: { runId: run.runId, namespace: command.namespace, objects: command.objects, preparedAt: command.now } }];
    case 'StartJob':
      if (run.status === 'running') return [];
      if (run.status !== 'scheduled') return outOfOrder(run, 'running');
      return [{ type: 'JobStarted', data: { runId: run.runId, namespace: command.namespace, job: command.job, startedAt: command.now } }];
    case 'SucceedRun':
      if (run.status !== 'running') return outOfOrder(run, 'succeeded');
      return [{ type: 'RunSucceeded', data: { runId: run.runId, finishedAt: command.now, ...(command.result ? { result: command.result } : {}) } }];
    case 'FailRun':
      return [{ type: 'RunFailed', data: { runId: run.runId, reason: command.reason, finishedAt: command.now, ...(command.result ? { result: command.result } : {}) } }];
    case 'CancelRun':
      return [{ type: 'RunCanceled', data: { runId: run.runId, reason: command.reason, finishedAt: command.now, canceledBy: command.by } }];
  }
}

function outOfOrder(run: Run, to: RunStatus): never {
  throw new DomainError('failed_precondition', `a ${run.status} run cannot become ${to}`);
}

export const runDecider: Decider<RunCommand, Run, RunEvent> = {
  initial: initialRun,
  evolve: evolveRun,
  decide: decideRun,
  accepts: acceptsTypes<RunEvent>(runEventCodecs),
};
