import * as t from 'io-ts';
import { IsoTime, NonEmptyString, Uuid } from '../shared/codec.js';

// The run lifecycle of DESIGN.md "Runs". Every payload holds safe context only.
export const RunRequested = t.type({
  runId: Uuid,
  projectId: Uuid,
  agent: NonEmptyString,
  repository: NonEmptyString, // provider/owner/name
  subject: t.type({ kind: t.keyof({ issue: null, pull_request: null }), number: t.number }),
  learningMode: t.boolean,
  requestedAt: IsoTime,
});
export const RunScheduled = t.type({ runId: Uuid, slot: t.number, leaseExpiresAt: IsoTime, scheduledAt: IsoTime });
export const JobStarted = t.type({ runId: Uuid, namespace: NonEmptyString, job: NonEmptyString, startedAt: IsoTime });
export const RunSucceeded = t.type({ runId: Uuid, finishedAt: IsoTime });
export const RunFailed = t.type({ runId: Uuid, reason: NonEmptyString, finishedAt: IsoTime });
export const RunCanceled = t.type({ runId: Uuid, reason: NonEmptyString, finishedAt: IsoTime });

export const runEventCodecs = { RunRequested, RunScheduled, JobStarted, RunSucceeded, RunFailed, RunCanceled };
