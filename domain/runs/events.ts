import * as t from 'io-ts';
import { IsoTime, NonEmptyString, Uuid } from '../shared/codec.js';
import type { EventsOf } from '../shared/decider.js';

/** Who did something on GitHub: their numeric id (logins change and get reused) and login for display. */
export const GithubActor = t.type({ githubUserId: t.number, login: NonEmptyString });
export type GithubActor = t.TypeOf<typeof GithubActor>;

// The run lifecycle of DESIGN.md "Runs". Every payload holds safe context only.
export const RunRequested = t.intersection([
  t.type({
    runId: Uuid,
    projectId: Uuid,
    agent: NonEmptyString,
    repository: NonEmptyString, // provider/owner/name, for display
    subject: t.type({ kind: t.keyof({ issue: null, pull_request: null }), number: t.number }),
    learningMode: t.boolean,
    requestedAt: IsoTime,
  }),
  // The connected repository (the project's id for it), whose token the run's checkout and publish use.
  t.partial({ repositoryId: Uuid, issueBodySha256: t.string }),
]);
export const RunScheduled = t.type({ runId: Uuid, slot: t.number, leaseExpiresAt: IsoTime, scheduledAt: IsoTime });
/** The run's namespace and everything but its Job exist (the launch's first step). */
export const RunNamespacePrepared = t.type({ runId: Uuid, namespace: NonEmptyString, objects: t.array(NonEmptyString), preparedAt: IsoTime });
export const JobStarted = t.type({ runId: Uuid, namespace: NonEmptyString, job: NonEmptyString, startedAt: IsoTime });
/** What the run's pod reported (its termination message): the pull request it opened or updated. */
export const RunResult = t.type({ branch: NonEmptyString, commit: NonEmptyString, pullRequest: t.union([t.number, t.null]), checkpoint: t.boolean });
export type RunResult = t.TypeOf<typeof RunResult>;
export const RunSucceeded = t.intersection([t.type({ runId: Uuid, finishedAt: IsoTime }), t.partial({ result: RunResult })]);
/** A failed run's pod may still have reported (a checkpoint pushed after the agent failed or ran past its deadline). */
export const RunFailed = t.intersection([t.type({ runId: Uuid, reason: NonEmptyString, finishedAt: IsoTime }), t.partial({ result: RunResult })]);
export const RunCanceled = t.intersection([
  t.type({ runId: Uuid, reason: NonEmptyString, finishedAt: IsoTime }),
  // Who asked for the cancel (absent in events recorded before senders were kept).
  t.partial({ canceledBy: t.union([GithubActor, t.null]) }),
]);

export const runEventCodecs = { RunRequested, RunScheduled, RunNamespacePrepared, JobStarted, RunSucceeded, RunFailed, RunCanceled };
export type RunEvent = EventsOf<typeof runEventCodecs>;

/**
 * The runs an issue or pull request started, in its subject stream: written in the same append as
 * the run's RunRequested, so a cancel that reads (and guards) this stream sees every run started
 * before it, however far the read models lag.
 */
export const SubjectRunRequested = t.intersection([
  t.type({ runId: Uuid, label: NonEmptyString, agent: NonEmptyString }),
  // When GitHub says the label was put on (the subject's updated_at, whole seconds); older runs have none.
  t.partial({ labeledAt: t.string }),
]);
/**
 * A trigger label taken off the subject, at the time GitHub gives (null if none): a labelling older
 * than it is stale (deliveries come in any order), and one after it is a new labelling.
 */
export const SubjectLabelRemoved = t.type({ label: NonEmptyString, at: t.union([t.string, t.null]) });

export const subjectEventCodecs = { SubjectRunRequested, SubjectLabelRemoved };
export type SubjectEvent = EventsOf<typeof subjectEventCodecs>;
