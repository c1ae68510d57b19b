import { projection } from '../projection.js';

type SlotEvent = { type: 'SlotLeased' | 'SlotLeaseRenewed' | 'SlotReleased'; data: { projectId: string; slot: number; runId: string; leaseExpiresAt?: string }; createdAt: unknown };
type SlotRow = { project_id: string; slot: number; run_id: string | null; lease_expires_at: string | null; updated_at: unknown };
type SlotCondition = { project_id: string; slot: number; run_id: string; lease_expires_at?: string; updated_at: unknown };

/**
 * A batch of slot events as three set-based statements' rows (a burst of runs was one statement per
 * event): a slot leased in the batch is known from that lease on, so its row is written as the batch
 * leaves it; a slot the batch only renews or releases once changes only if the row names that run;
 * a slot with several such changes and no lease (rare) keeps its events, applied one by one.
 */
export function slotChanges(events: readonly SlotEvent[]) {
  const bySlot = new Map<string, SlotEvent[]>();
  for (const e of events) {
    const key = `${e.data.projectId}/${e.data.slot}`;
    const slotEvents = bySlot.get(key);
    if (slotEvents) slotEvents.push(e);
    else bySlot.set(key, [e]);
  }
  const rows: SlotRow[] = [];
  const renewals: SlotCondition[] = [];
  const releases: SlotCondition[] = [];
  const oneByOne: SlotEvent[] = [];
  for (const slotEvents of bySlot.values()) {
    const leased = slotEvents.findLastIndex((e) => e.type === 'SlotLeased');
    if (leased >= 0) {
      const lease = slotEvents[leased]!;
      const row: SlotRow = { project_id: lease.data.projectId, slot: lease.data.slot, run_id: lease.data.runId, lease_expires_at: lease.data.leaseExpiresAt ?? null, updated_at: lease.createdAt };
      for (const e of slotEvents.slice(leased + 1)) {
        if (e.data.runId !== row.run_id) continue;
        if (e.type === 'SlotLeaseRenewed') Object.assign(row, { lease_expires_at: e.data.leaseExpiresAt ?? null, updated_at: e.createdAt });
        else Object.assign(row, { run_id: null, lease_expires_at: null, updated_at: e.createdAt });
      }
      rows.push(row);
    } else if (slotEvents.length === 1) {
      const e = slotEvents[0]!;
      const condition: SlotCondition = { project_id: e.data.projectId, slot: e.data.slot, run_id: e.data.runId, updated_at: e.createdAt };
      if (e.type === 'SlotLeaseRenewed') renewals.push({ ...condition, lease_expires_at: e.data.leaseExpiresAt! });
      else releases.push(condition);
    } else {
      oneByOne.push(...slotEvents);
    }
  }
  return { rows, renewals, releases, oneByOne };
}

const slotSet = (columns: string) => `jsonb_to_recordset($1) AS x(project_id uuid, slot int, run_id uuid, ${columns}updated_at timestamptz)`;

export const slots = projection({
  name: 'slots',
  tables: ['slots'],
  handles: ['SlotLeased', 'SlotLeaseRenewed', 'SlotReleased'],
  onFailure: 'dead-letter',
  async apply(events, { tx, table }) {
    const { rows, renewals, releases, oneByOne } = slotChanges(events.filter((e): e is typeof e & SlotEvent => e.type === 'SlotLeased' || e.type === 'SlotLeaseRenewed' || e.type === 'SlotReleased'));
    const renew = `UPDATE ${table('slots')} s SET lease_expires_at = x.lease_expires_at, updated_at = x.updated_at
        FROM ${slotSet('lease_expires_at timestamptz, ')} WHERE s.project_id = x.project_id AND s.slot = x.slot AND s.run_id = x.run_id`;
    const release = `UPDATE ${table('slots')} s SET run_id = NULL, lease_expires_at = NULL, updated_at = x.updated_at
        FROM ${slotSet('')} WHERE s.project_id = x.project_id AND s.slot = x.slot AND s.run_id = x.run_id`;
    if (rows.length > 0) {
      await tx.query(
        `INSERT INTO ${table('slots')} (project_id, slot, run_id, lease_expires_at, updated_at)
         SELECT project_id, slot, run_id, lease_expires_at, updated_at FROM ${slotSet('lease_expires_at timestamptz, ')}
         ON CONFLICT (project_id, slot) DO UPDATE SET run_id = EXCLUDED.run_id, lease_expires_at = EXCLUDED.lease_expires_at, updated_at = EXCLUDED.updated_at`,
        [JSON.stringify(rows)],
      );
    }
    if (renewals.length > 0) await tx.query(renew, [JSON.stringify(renewals)]);
    if (releases.length > 0) await tx.query(release, [JSON.stringify(releases)]);
    for (const e of oneByOne) {
      const condition = [{ project_id: e.data.projectId, slot: e.data.slot, run_id: e.data.runId, lease_expires_at: e.data.leaseExpiresAt, updated_at: e.createdAt }];
      await tx.query(e.type === 'SlotLeaseRenewed' ? renew : release, [JSON.stringify(condition)]);
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
