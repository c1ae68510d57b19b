import * as t from 'io-ts';
import { IsoTime, NonEmptyString, Uuid } from '../shared/codec.js';

/**
 * An explanation the agent produced in learning mode. Generated text is recorded as an event so a
 * rebuild never calls the model again.
 */
export const LearningFeedbackRecorded = t.type({
  feedbackId: Uuid,
  runId: Uuid,
  projectId: Uuid,
  kind: t.keyof({ decision: null, pr_comment: null, summary: null }),
  subject: t.union([NonEmptyString, t.null]), // e.g. a file path or PR number
  explanation: t.string,
  recordedAt: IsoTime,
});

export const learningEventCodecs = { LearningFeedbackRecorded };
