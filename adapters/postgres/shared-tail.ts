import type { EventStore, Queryable, RawEvent } from '../../ports/event-store.js';
import type { GlobalPosition } from '../../ports/position.js';

/**
 * The followers of the log in one process (projections, reactors) ask for the same events at the
 * same moment: each NOTIFY wakes them all at the head. This keeps the newest stretch of the log read,
 * lets a read wait for one already in flight from at or before its position, and lets the callers
 * of one turn of the event loop share a new query, so a wake costs one query instead of one per
 * follower. Serving from memory is exact: a read returns only events of transactions older than
 * every running one, so once (after, last] has been read nothing can appear inside it. An empty
 * answer (a follower sleeps on it) always comes from a query that started after the call.
 * Reads on a given connection (a rebuild's snapshot) go straight to the store.
 */
export function sharedTail<S extends Pick<EventStore, 'readAllRaw'>>(store: S, capacity = 10_000): S {
  /** What is known: every event in (anchor, last of `events`] is in `events`, in log order. */
  let anchor: GlobalPosition | undefined;
  let events: RawEvent[] = [];
  const inflight = new Set<{ from: GlobalPosition; done: Promise<unknown> }>();
  const end = () => events.at(-1)?.position ?? anchor!;

  function cached(after: GlobalPosition, limit: number): RawEvent[] | undefined {
    if (!anchor || after.compare(anchor) < 0 || after.compare(end()) >= 0) return undefined;
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (events[mid]!.position.compare(after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return events.slice(lo, lo + limit);
  }

  function learn(after: GlobalPosition, read: RawEvent[]): void {
    if (read.length === 0) return;
    if (anchor && after.compare(anchor) >= 0 && after.compare(end()) <= 0) {
      const known = end();
      for (const event of read) if (event.position.compare(known) > 0) events.push(event);
    } else if (!anchor || read.at(-1)!.position.compare(end()) > 0) {
      // A stretch that does not join the known one and is newer: the followers are there now.
      anchor = after;
      events = [...read];
    }
    if (events.length > capacity) {
      const drop = events.length - capacity;
      anchor = events[drop - 1]!.position;
      events = events.slice(drop);
    }
  }

  /** Reads not started yet, by position: callers within one turn of the event loop share one query. */
  const pending = new Map<string, { limit: number; rows: Promise<RawEvent[]> }>();

  function fresh(after: GlobalPosition, limit: number): Promise<RawEvent[]> {
    const key = after.toString();
    const joined = pending.get(key);
    if (joined) {
      joined.limit = Math.max(joined.limit, limit);
      return joined.rows.then((rows) => rows.slice(0, limit));
    }
    const entry = {
      limit,
      // Started on the next turn, after every caller woken by the same notification has joined, so
      // even an empty answer is as new as each caller needs.
      rows: new Promise<void>((r) => setImmediate(r)).then(() => {
        pending.delete(key);
        const read = store.readAllRaw(after, entry.limit);
        const flight = { from: after, done: read.then((rows) => learn(after, rows), () => {}) };
        inflight.add(flight);
        return read.finally(() => inflight.delete(flight));
      }),
    };
    pending.set(key, entry);
    return entry.rows.then((rows) => rows.slice(0, limit));
  }

  async function readAllRaw(after: GlobalPosition, limit: number, db?: Queryable): Promise<RawEvent[]> {
    if (db) return store.readAllRaw(after, limit, db);
    const hit = cached(after, limit);
    if (hit) return hit;
    const covering = [...inflight].find((r) => r.from.compare(after) <= 0);
    if (covering) {
      await covering.done;
      const shared = cached(after, limit);
      if (shared) return shared;
    }
    return fresh(after, limit);
  }

  return { ...store, readAllRaw };
}
