import { projection } from '../projection.js';

export const slots = projection({
  name: 'slots',
  tables: ['slots'],
  handles: ['SlotLeased', 'SlotLeaseRenewed', 'SlotReleased'],
  onFailure: 'dead-letter',
  async apply(events, { tx, table }) {
    for (const e of events) {
      if (e.type === 'SlotLeased') {
        await tx.query(
          `INSERT INTO ${table('slots')} (project_id, slot, run_id, lease_expires_at, updated_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (project_id, slot) DO UPDATE SET run_id = EXCLUDED.run_id, lease_expires_at = EXCLUDED.lease_expires_at, updated_at = EXCLUDED.updated_at`,
          [e.data.projectId, e.data.slot, e.data.runId, e.data.leaseExpiresAt, e.createdAt],
        );
      } else if (e.type === 'SlotLeaseRenewed') {
        await tx.query(
          `UPDATE ${table('slots')} SET lease_expires_at = $4, updated_at = $5 WHERE project_id = $1 AND slot = $2 AND run_id = $3`,
          [e.data.projectId, e.data.slot, e.data.runId, e.data.leaseExpiresAt, e.createdAt],
        );
      } else if (e.type === 'SlotReleased') {
        await tx.query(
          `UPDATE ${table('slots')} SET run_id = NULL, lease_expires_at = NULL, updated_at = $4
            WHERE project_id = $1 AND slot = $2 AND run_id = $3`,
          [e.data.projectId, e.data.slot, e.data.runId, e.createdAt],
        );
      }
    }
  },
});

export const learningFeedback = projection({
  name: 'learning_feedback',
  tables: ['learning_feedback'],
  handles: ['LearningFeedbackRecorded'],
  onFailure: 'dead-letter',
  async apply(events, { tx, table }) {
    for (const e of events) {
      if (e.type !== 'LearningFeedbackRecorded') continue;
      await tx.query(
        `INSERT INTO ${table('learning_feedback')} (id, run_id, project_id, kind, subject, explanation, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [e.data.feedbackId, e.data.runId, e.data.projectId, e.data.kind, e.data.subject, e.data.explanation, e.data.recordedAt],
      );
    }
  },
});
