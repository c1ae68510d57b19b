import { DomainError } from '../shared/errors.js';
import { acceptsTypes, type Decider } from '../shared/decider.js';
import { runEventCodecs, type GithubActor, type RunEvent } from './events.js';

/** What decisions about a run need, nothing more. */
export type Run =
  | { status: 'none' }
  | { status: 'pending' | 'scheduled' | 'running'; runId: string; projectId: string; slot: number | null }
  | { status: 'succeeded' | 'failed' | 'canceled'; runId: string; projectId: string };

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
      subject: { kind: 'issue' | 'pull_request'; number: number };
      learningMode: boolean;
      now: string;
    }
  | { type: 'CancelRun'; reason: string; by: GithubActor | null; now: string };

export const initialRun: Run = { status: 'none' };

export function evolveRun(run: Run, event: RunEvent): Run {
  if (event.type === 'RunRequested') return run.status === 'none' ? { status: 'pending', runId: event.data.runId, projectId: event.data.projectId, slot: null } : run;
  // Terminal states are final, and nothing happens to a run before it was requested.
  if (run.status !== 'pending' && run.status !== 'scheduled' && run.status !== 'running') return run;
  switch (event.type) {
    case 'RunScheduled':
      return { ...run, status: 'scheduled', slot: event.data.slot };
    case 'JobStarted':
      return { ...run, status: 'running' };
    case 'RunSucceeded':
      return { status: 'succeeded', runId: run.runId, projectId: run.projectId };
    case 'RunFailed':
      return { status: 'failed', runId: run.runId, projectId: run.projectId };
    case 'RunCanceled':
      return { status: 'canceled', runId: run.runId, projectId: run.projectId };
  }
}

export function decideRun(command: RunCommand, run: Run): RunEvent[] {
  switch (command.type) {
    case 'RequestRun': {
      if (run.status !== 'none') throw new DomainError('conflict', `run ${command.runId} exists already`);
      const { type: _type, now, ...data } = command;
      return [{ type: 'RunRequested', data: { ...data, requestedAt: now } }];
    }
    case 'CancelRun':
      if (run.status === 'none') throw new DomainError('not_found', 'run not found');
      if (isTerminal(run)) return []; // cancelling a finished run is a no-op
      return [{ type: 'RunCanceled', data: { runId: run.runId, reason: command.reason, finishedAt: command.now, canceledBy: command.by } }];
  }
}

export const runDecider: Decider<RunCommand, Run, RunEvent> = {
  initial: initialRun,
  evolve: evolveRun,
  decide: decideRun,
  accepts: acceptsTypes<RunEvent>(runEventCodecs),
};
