import type { EventStore } from '../adapters/postgres/event-store.js';
import { reservationStream, type ReservationKind } from '../domain/shared/reservations.js';

/** The owner stream of a reserved name (`user-<id>`, `project-<id>`, …), found without a read model. */
export async function ownerOf(store: EventStore, kind: ReservationKind, name: string): Promise<string | undefined> {
  const [first] = await store.readStream(reservationStream(kind, name), { limit: 1 });
  return first?.type === 'NameReserved' ? first.data.owner : undefined;
}
