import { acceptsTypes, type Decider } from '../shared/decider.js';
import { subjectEventCodecs, type SubjectEvent } from './events.js';

/** An issue or pull request, as far as runs go: the runs it started, oldest first. */
export interface Subject {
  runs: readonly { runId: string; label: string }[];
}

export type SubjectCommand = { type: 'RecordRun'; runId: string; label: string; agent: string };

export const initialSubject: Subject = { runs: [] };

export function evolveSubject(subject: Subject, event: SubjectEvent): Subject {
  switch (event.type) {
    case 'SubjectRunRequested':
      return { runs: [...subject.runs, { runId: event.data.runId, label: event.data.label }] };
  }
}

export function decideSubject(command: SubjectCommand, subject: Subject): SubjectEvent[] {
  if (subject.runs.some((r) => r.runId === command.runId)) return [];
  return [{ type: 'SubjectRunRequested', data: { runId: command.runId, label: command.label, agent: command.agent } }];
}

export const subjectDecider: Decider<SubjectCommand, Subject, SubjectEvent> = {
  initial: initialSubject,
  evolve: evolveSubject,
  decide: decideSubject,
  accepts: acceptsTypes<SubjectEvent>(subjectEventCodecs),
};
