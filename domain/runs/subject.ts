import { acceptsTypes, type Decider } from '../shared/decider.js';
import { subjectEventCodecs, type SubjectEvent } from './events.js';

/** An issue or pull request, as far as runs go: the runs it started, oldest first, and its trigger labels' removals. */
export interface Subject {
  runs: readonly { runId: string; label: string; labeledAt: string | null }[];
  /** Per label: how often it was taken off, the latest removal's time, and whether a run was recorded since. */
  labels: Readonly<Record<string, LabelHistory>>;
}

export interface LabelHistory {
  removals: number;
  lastRemovedAt: string | null;
  runSinceRemoval: boolean;
}

export type SubjectCommand =
  | { type: 'RecordRun'; runId: string; label: string; agent: string; labeledAt?: string | null }
  | { type: 'RecordLabelRemoved'; label: string; at: string | null };

export const initialSubject: Subject = { runs: [], labels: {} };

const noHistory: LabelHistory = { removals: 0, lastRemovedAt: null, runSinceRemoval: false };
export const labelHistory = (subject: Subject, label: string): LabelHistory => subject.labels[label] ?? noHistory;

/**
 * Which labelling of this label a new one is: 0 before any removal, then one more for each removal.
 * It is part of the run's name, so a label put back on in the same second as it was taken off (GitHub's
 * times are whole seconds) names a new run, while two deliveries of one labelling name the same one.
 */
export const labellingOf = (subject: Subject, label: string): number => labelHistory(subject, label).removals;

export function evolveSubject(subject: Subject, event: SubjectEvent): Subject {
  switch (event.type) {
    case 'SubjectRunRequested': {
      const label = event.data.label;
      return {
        runs: [...subject.runs, { runId: event.data.runId, label, labeledAt: event.data.labeledAt ?? null }],
        labels: { ...subject.labels, [label]: { ...labelHistory(subject, label), runSinceRemoval: true } },
      };
    }
    case 'SubjectLabelRemoved': {
      const before = labelHistory(subject, event.data.label);
      const at = event.data.at;
      const lastRemovedAt = before.lastRemovedAt === null || (at !== null && at > before.lastRemovedAt) ? at ?? before.lastRemovedAt : before.lastRemovedAt;
      return { ...subject, labels: { ...subject.labels, [event.data.label]: { removals: before.removals + 1, lastRemovedAt, runSinceRemoval: false } } };
    }
  }
}

export function decideSubject(command: SubjectCommand, subject: Subject): SubjectEvent[] {
  switch (command.type) {
    case 'RecordRun':
      if (subject.runs.some((r) => r.runId === command.runId)) return [];
      return [{ type: 'SubjectRunRequested', data: { runId: command.runId, label: command.label, agent: command.agent, ...(command.labeledAt ? { labeledAt: command.labeledAt } : {}) } }];
    case 'RecordLabelRemoved': {
      // The same removal again (through another hook): nothing was labelled since, at the same time.
      const history = labelHistory(subject, command.label);
      if (history.removals > 0 && !history.runSinceRemoval && history.lastRemovedAt === command.at) return [];
      return [{ type: 'SubjectLabelRemoved', data: { label: command.label, at: command.at } }];
    }
  }
}

export const subjectDecider: Decider<SubjectCommand, Subject, SubjectEvent> = {
  initial: initialSubject,
  evolve: evolveSubject,
  decide: decideSubject,
  accepts: acceptsTypes<SubjectEvent>(subjectEventCodecs),
};
