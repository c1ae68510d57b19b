import type { EventStore } from '../ports/event-store.js';
import { streamOf, type ReservationKind } from '../domain/shared/streams.js';

// A reservation is never released or moved, so a found owner can be remembered for good.
// Per store, since each store is one database.
const rememberedBy = new WeakMap<object, Map<string, string>>();
const MAX_REMEMBERED = 10_000;

/** The owner stream of a reserved name (`user-<id>`, `project-<id>`, …), found without a read model. */
export async function ownerOf(store: Pick<EventStore, 'readStream'>, kind: ReservationKind, name: string): Promise<string | undefined> {
  const stream = streamOf.reservation(kind, name);
  let known = rememberedBy.get(store);
  if (!known) rememberedBy.set(store, (known = new Map()));
  const remembered = known.get(stream);
  if (remembered) return remembered;
  const [first] = await store.readStream(stream, { limit: 1 });
  const owner = first?.type === 'NameReserved' ? first.data.owner : undefined;
  if (owner) {
    if (known.size >= MAX_REMEMBERED) known.clear();
    known.set(stream, owner);
  }
  return owner;
}
