import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type pg from 'pg';
import { slotChanges, slots } from '../projections/read-models/runs-support.js';
import type { ProjectedEvent } from '../projections/projection.js';
import { useTestDatabase } from './support/cluster.js';

let pool: pg.Pool;
useTestDatabase((db) => {
  pool = db.pools.primary;
});

const project = randomUUID();
const runs = Array.from({ length: 3 }, () => randomUUID());
const at = (n: number) => new Date(Date.UTC(2026, 10, 29, 10, 0, n)).toISOString();

/** A slot event as the projection gets it: slot 1 or 2 of one project, one of three runs. */
const slotEvent = (type: 'SlotLeased' | 'SlotLeaseRenewed' | 'SlotReleased', slot: number, run: number, n: number) =>
  ({
    type,
    data: type === 'SlotReleased'
      ? { projectId: project, slot, runId: runs[run]!, releasedAt: at(n) }
      : { projectId: project, slot, runId: runs[run]!, leaseExpiresAt: at(n + 60) },
    createdAt: at(n),
  }) as unknown as ProjectedEvent;

describe('the slots read model', () => {
  it('plans a batch as rows for leased slots, conditions for the rest, one by one only for several changes without a lease', () => {
    const cases: { given: ProjectedEvent[]; rows: number; renewals: number; releases: number; oneByOne: number }[] = [
      { given: [slotEvent('SlotLeased', 1, 0, 1), slotEvent('SlotLeased', 2, 1, 2)], rows: 2, renewals: 0, releases: 0, oneByOne: 0 },
      { given: [slotEvent('SlotLeased', 1, 0, 1), slotEvent('SlotReleased', 1, 0, 2), slotEvent('SlotLeased', 1, 1, 3)], rows: 1, renewals: 0, releases: 0, oneByOne: 0 },
      { given: [slotEvent('SlotLeaseRenewed', 1, 0, 1), slotEvent('SlotReleased', 2, 1, 2)], rows: 0, renewals: 1, releases: 1, oneByOne: 0 },
      { given: [slotEvent('SlotLeaseRenewed', 1, 0, 1), slotEvent('SlotReleased', 1, 0, 2)], rows: 0, renewals: 0, releases: 0, oneByOne: 2 },
    ];
    for (const { given, ...then } of cases) {
      const plan = slotChanges(given as never);
      assert.deepEqual({ rows: plan.rows.length, renewals: plan.renewals.length, releases: plan.releases.length, oneByOne: plan.oneByOne.length }, then);
    }
    const [released] = slotChanges([slotEvent('SlotLeased', 1, 0, 1), slotEvent('SlotReleased', 1, 0, 2)] as never).rows;
    assert.deepEqual(released, { project_id: project, slot: 1, run_id: null, lease_expires_at: null, updated_at: at(2) });
    const [kept] = slotChanges([slotEvent('SlotLeased', 1, 0, 1), slotEvent('SlotReleased', 1, 1, 2)] as never).rows;
    assert.equal(kept!.run_id, runs[0], 'a release by another run leaves the lease');
  });

  it('a batch leaves the table as its events applied one at a time would, from any table', async () => {
    const event = fc.tuple(fc.constantFrom('SlotLeased' as const, 'SlotLeaseRenewed' as const, 'SlotReleased' as const), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 2 }));
    await fc.assert(
      fc.asyncProperty(fc.array(event, { maxLength: 4 }), fc.array(event, { minLength: 1, maxLength: 10 }), async (before, batch) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query('CREATE TEMP TABLE slots_batched (LIKE slots INCLUDING ALL) ON COMMIT DROP');
          await client.query('CREATE TEMP TABLE slots_each (LIKE slots INCLUDING ALL) ON COMMIT DROP');
          const apply = (table: string, events: ProjectedEvent[]) => slots.apply(events, { tx: client, table: () => table });
          const earlier = before.map(([type, slot, run], n) => slotEvent(type, slot, run, n));
          const events = batch.map(([type, slot, run], n) => slotEvent(type, slot, run, 100 + n));
          for (const table of ['slots_batched', 'slots_each']) for (const e of earlier) await apply(table, [e]);
          await apply('slots_batched', events);
          for (const e of events) await apply('slots_each', [e]);
          const rows = async (table: string) => (await client.query(`SELECT project_id, slot, run_id, lease_expires_at, updated_at FROM ${table} ORDER BY slot`)).rows;
          assert.deepEqual(await rows('slots_batched'), await rows('slots_each'));
        } finally {
          await client.query('ROLLBACK');
          client.release();
        }
      }),
      { numRuns: 60 },
    );
  });
});
