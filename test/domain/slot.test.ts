import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SlotEvent } from '../../domain/slots/events.js';
import { assignSlots, decideSlot, evolveSlot, initialSlot, type Slot, type SlotCommand } from '../../domain/slots/slot.js';
import { DomainError } from '../../domain/shared/errors.js';

const P = '00000000-0000-4000-8000-0000000000b1';
const A = '00000000-0000-4000-8000-0000000000a1';
const B = '00000000-0000-4000-8000-0000000000a2';
const t = (minutes: number) => new Date(Date.UTC(2026, 10, 28, 10, minutes)).toISOString();

const leased = (runId: string, until: number): SlotEvent => ({ type: 'SlotLeased', data: { projectId: P, slot: 1, runId, leaseExpiresAt: t(until) } });
const lease = (runId: string, now: number, until: number): SlotCommand => ({ type: 'LeaseSlot', projectId: P, slot: 1, runId, leaseExpiresAt: t(until), now: t(now) });
const renew = (runId: string, now: number, until: number): SlotCommand => ({ type: 'RenewLease', projectId: P, slot: 1, runId, leaseExpiresAt: t(until), now: t(now) });
const release = (runId: string, now: number): SlotCommand => ({ type: 'ReleaseSlot', projectId: P, slot: 1, runId, now: t(now) });
const fold = (events: SlotEvent[]) => events.reduce(evolveSlot, initialSlot);

// given (past events) / when (command) / then (new events, or the error code)
const table: [string, SlotEvent[], SlotCommand, SlotEvent[] | DomainError['code']][] = [
  ['a free slot is leased', [], lease(A, 0, 5), [leased(A, 5)]],
  ['a held slot is not leased to another run', [leased(A, 5)], lease(B, 1, 6), 'conflict'],
  ['leasing it again by its holder is a no-op', [leased(A, 5)], lease(A, 1, 6), []],
  ['a lease that ran out frees the slot for another run (a dead worker\'s slot comes back)', [leased(A, 5)], lease(B, 5, 10), [leased(B, 10)]],
  ['its holder renews a standing lease', [leased(A, 5)], renew(A, 4, 9), [{ type: 'SlotLeaseRenewed', data: { projectId: P, slot: 1, runId: A, leaseExpiresAt: t(9) } }]],
  // Found by a review: a worker back after an outage longer than the lease could not keep the slot
  // of a run whose Job still ran, so another run took it too. Nobody took it: its holder renews it.
  ['a lease that ran out and nobody took is renewed by its holder', [leased(A, 5)], renew(A, 6, 11), [{ type: 'SlotLeaseRenewed', data: { projectId: P, slot: 1, runId: A, leaseExpiresAt: t(11) } }]],
  ['a lease that ran out and another run took is not renewed', [leased(A, 5), leased(B, 12)], renew(A, 7, 11), 'failed_precondition'],
  ['another run does not renew it', [leased(A, 5)], renew(B, 1, 6), 'failed_precondition'],
  ['its holder releases it', [leased(A, 5)], release(A, 2), [{ type: 'SlotReleased', data: { projectId: P, slot: 1, runId: A, releasedAt: t(2) } }]],
  ['a run that does not hold it releases nothing', [leased(A, 5)], release(B, 2), []],
  ['released, it is free again', [leased(A, 5), { type: 'SlotReleased', data: { projectId: P, slot: 1, runId: A, releasedAt: t(2) } }], lease(B, 3, 8), [leased(B, 8)]],
];

describe('the slot decider', () => {
  for (const [name, given, when, then] of table) {
    it(name, () => {
      if (typeof then === 'string') assert.throws(() => decideSlot(when, fold(given)), (e: unknown) => e instanceof DomainError && e.code === then);
      else assert.deepEqual(decideSlot(when, fold(given)), then);
    });
  }
});

// given the project's slots (and the time) / when these runs are pending, oldest first / then the assignments
const held = (until: number): Slot => ({ holder: 'run-x', leaseExpiresAt: t(until) });
const assignments: [string, Slot[], string[], { runId: string; slot: number }[]][] = [
  ['one run takes the first free slot', [held(9), initialSlot, initialSlot], [A], [{ runId: A, slot: 2 }]],
  ['a burst takes the free slots in order, oldest run first', [initialSlot, held(9), initialSlot], [A, B, 'run-c'], [{ runId: A, slot: 1 }, { runId: B, slot: 3 }]],
  ['a saturated project assigns nothing: the runs wait', [held(9), held(9)], [A, B], []],
  ['a lease that ran out counts as free', [held(0), held(9)], [A], [{ runId: A, slot: 1 }]],
  ['no pending run, nothing to assign', [initialSlot], [], []],
];

describe('assigning slots', () => {
  for (const [name, slots, pending, then] of assignments) it(name, () => assert.deepEqual(assignSlots(pending, slots, t(1)), then));
});
