import { acceptsTypes, type Decider } from '../shared/decider.js';
import { subjectEventCodecs, type SubjectEvent } from './events.js';

/** An issue or pull request, as far as runs go: the runs it started, oldest first, and its trigger labels' removals. */
export interface Subject {
  runs: readonly { runId: string; label: string; labeledAt: string | null }[];
  /** Per label: the distinct times it was taken off (GitHub's, sorted), and removals that came without one. */
  labels: Readonly<Record<string, LabelHistory>>;
}

export interface LabelHistory {
  removedAt: readonly string[];
  removedWithoutTime: number;
}

export type SubjectCommand =
  | { type: 'RecordRun'; runId: string; label: string; agent: string; labeledAt?: string | null }
  | { type: 'RecordLabelRemoved'; label: string; at: string | null };

export const initialSubject: Subject = { runs: [], labels: {} };

const noHistory: LabelHistory = { removedAt: [], removedWithoutTime: 0 };
const labelHistory = (subject: Subject, label: string): LabelHistory => subject.labels[label] ?? noHistory;
/** When the label was last taken off, as GitHub gave it (null: never, or never with a time). */
export const lastRemovalOf = (subject: Subject, label: string): string | null => labelHistory(subject, label).removedAt.at(-1) ?? null;

/**
 * Which labelling of this label one at `labeledAt` is: how many removals came at or before it (each
 * time once). It is part of the run's name, so a label put back on in the same second as it was taken
 * off (GitHub's times are whole seconds) names a new run, while every delivery of one labelling,
 * through any hook and before or after copies of a removal, names the same one.
 */
export function labellingOf(subject: Subject, label: string, labeledAt: string | null): number {
  const history = labelHistory(subject, label);
  const timed = labeledAt === null ? history.removedAt.length : history.removedAt.filter((at) => at <= labeledAt).length;
  return timed + history.removedWithoutTime;
}

export function evolveSubject(subject: Subject, event: SubjectEvent): Subject {
  switch (event.type) {
    case 'SubjectRunRequested':
      return { ...subject, runs: [...subject.runs, { runId: event.data.runId, label: event.data.label, labeledAt: event.data.labeledAt ?? null }] };
    case 'SubjectLabelRemoved': {
      const before = labelHistory(subject, event.data.label);
      const at = event.data.at;
      const history: LabelHistory = at === null
        ? { ...before, removedWithoutTime: before.removedWithoutTime + 1 }
        : { ...before, removedAt: [...new Set([...before.removedAt, at])].sort() };
      return { ...subject, labels: { ...subject.labels, [event.data.label]: history } };
    }
  }
}

export function decideSubject(command: SubjectCommand, subject: Subject): SubjectEvent[] {
  switch (command.type) {
    case 'RecordRun':
      if (subject.runs.some((r) => r.runId === command.runId)) return [];
      return [{ type: 'SubjectRunRequested', data: { runId: command.runId, label: command.label, agent: command.agent, ...(command.labeledAt ? { labeledAt: command.labeledAt } : {}) } }];
    case 'RecordLabelRemoved':
      // A removal at a time recorded already is a copy (another hook), or one GitHub's whole seconds cannot tell from it.
      if (command.at !== null && labelHistory(subject, command.label).removedAt.includes(command.at)) return [];
      return [{ type: 'SubjectLabelRemoved', data: { label: command.label, at: command.at } }];
  }
}

export const subjectDecider: Decider<SubjectCommand, Subject, SubjectEvent> = {
  initial: initialSubject,
  evolve: evolveSubject,
  decide: decideSubject,
  accepts: acceptsTypes<SubjectEvent>(subjectEventCodecs),
};
