import { DomainError } from '../shared/errors.js';
import { acceptsTypes, type Decider } from '../shared/decider.js';
import { slotEventCodecs, type SlotEvent } from './events.js';

/** One of a project's run slots: free, or held by a run until its lease expires. */
export type Slot = { holder: null } | { holder: string; leaseExpiresAt: string };

export const initialSlot: Slot = { holder: null };

export type SlotCommand =
  | { type: 'LeaseSlot'; projectId: string; slot: number; runId: string; leaseExpiresAt: string; now: string }
  | { type: 'RenewLease'; projectId: string; slot: number; runId: string; leaseExpiresAt: string; now: string }
  | { type: 'ReleaseSlot'; projectId: string; slot: number; runId: string; now: string };

/** Free, or its holder's lease has run out (its worker died without releasing it). */
export const isFree = (slot: Slot, now: string): boolean => slot.holder === null || Date.parse(slot.leaseExpiresAt) <= Date.parse(now);

/**
 * The scheduler's choice for one project: its pending runs, oldest first, take its free slots in
 * slot order (slots[0] is slot 1); the runs left over wait. The same for one run or for a burst.
 */
export function assignSlots(pending: readonly string[], slots: readonly Slot[], now: string): { runId: string; slot: number }[] {
  const free = slots.flatMap((slot, i) => (isFree(slot, now) ? [i + 1] : []));
  return pending.slice(0, free.length).map((runId, k) => ({ runId, slot: free[k]! }));
}

export function evolveSlot(slot: Slot, event: SlotEvent): Slot {
  switch (event.type) {
    case 'SlotLeased':
    case 'SlotLeaseRenewed':
      return { holder: event.data.runId, leaseExpiresAt: event.data.leaseExpiresAt };
    case 'SlotReleased':
      return slot.holder === event.data.runId ? { holder: null } : slot;
  }
}

export function decideSlot(command: SlotCommand, slot: Slot): SlotEvent[] {
  const { projectId, slot: n, runId } = command;
  switch (command.type) {
    case 'LeaseSlot':
      if (slot.holder === runId && !isFree(slot, command.now)) return [];
      if (!isFree(slot, command.now)) throw new DomainError('conflict', `slot ${n} is held by another run`);
      return [{ type: 'SlotLeased', data: { projectId, slot: n, runId, leaseExpiresAt: command.leaseExpiresAt } }];
    case 'RenewLease':
      // Its holder renews it, even past its expiry while nobody took it (a worker back after an
      // outage longer than the lease, whose run's Job still runs: found by a review); once another
      // run took it, it is lost. The append at the version read guards against a take meanwhile.
      if (slot.holder !== runId) throw new DomainError('failed_precondition', `run ${runId} does not hold slot ${n}`);
      return [{ type: 'SlotLeaseRenewed', data: { projectId, slot: n, runId, leaseExpiresAt: command.leaseExpiresAt } }];
    case 'ReleaseSlot':
      return slot.holder === runId ? [{ type: 'SlotReleased', data: { projectId, slot: n, runId, releasedAt: command.now } }] : [];
  }
}

export const slotDecider: Decider<SlotCommand, Slot, SlotEvent> = {
  initial: initialSlot,
  evolve: evolveSlot,
  decide: decideSlot,
  accepts: acceptsTypes<SlotEvent>(slotEventCodecs),
};
