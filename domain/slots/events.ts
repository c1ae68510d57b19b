import * as t from 'io-ts';
import { IsoTime, Uuid } from '../shared/codec.js';

/** Per-project run slots are leases with an expiry, so a dead worker's slot comes back. */
export const SlotLeased = t.type({ projectId: Uuid, slot: t.number, runId: Uuid, leaseExpiresAt: IsoTime });
export const SlotReleased = t.type({ projectId: Uuid, slot: t.number, runId: Uuid, releasedAt: IsoTime });

export const slotEventCodecs = { SlotLeased, SlotReleased };
