import * as t from 'io-ts';
import { IsoTime, Uuid } from '../shared/codec.js';
import type { EventsOf } from '../shared/decider.js';

/**
 * Per-project run slots are leases with an expiry, each in its own stream (`slot-<project>-<n>`):
 * the holder renews its lease while its run is active, so a dead worker's slot comes back by itself
 * once the lease expires.
 */
export const SlotLeased = t.type({ projectId: Uuid, slot: t.number, runId: Uuid, leaseExpiresAt: IsoTime });
export const SlotLeaseRenewed = t.type({ projectId: Uuid, slot: t.number, runId: Uuid, leaseExpiresAt: IsoTime });
export const SlotReleased = t.type({ projectId: Uuid, slot: t.number, runId: Uuid, releasedAt: IsoTime });

export const slotEventCodecs = { SlotLeased, SlotLeaseRenewed, SlotReleased };
export type SlotEvent = EventsOf<typeof slotEventCodecs>;
