import { foldStream, type EventStore, type StreamAppend } from '../adapters/postgres/event-store.js';
import type { DomainEvent } from '../domain/events.js';

export interface StateAt<S> {
  stream: string;
  state: S;
  /** The stream's version the state was folded to: the expected version of a guard (an append with no events). */
  version: number;
}

export interface StreamFold<S> {
  stream: string;
  evolve: (state: S, event: DomainEvent) => S;
  initial: S;
}

const MAX_REMEMBERED = 10_000;

/**
 * Stream states folded from the log and remembered with their version, for a command that decides
 * on them often (a webhook delivery decides on its project and sender). A remembered state may be
 * stale, so the command commits with each stream it read as a guard at the remembered version:
 * a ConcurrencyError on a guard means "forget it and decide again", never a wrong decision.
 */
export function rememberedStates(store: EventStore) {
  const known = new Map<string, StateAt<unknown>>();

  /** The states of these streams; the ones not remembered are read together in one round trip. */
  async function load<T extends unknown[]>(folds: { [K in keyof T]: StreamFold<T[K]> }): Promise<{ [K in keyof T]: StateAt<T[K]> }> {
    const all = folds as readonly StreamFold<unknown>[];
    const missing = all.filter((f) => !known.has(f.stream)).map((f) => f.stream);
    if (missing.length > 0) {
      const read = await store.readStreams(missing);
      if (known.size + missing.length > MAX_REMEMBERED) known.clear();
      for (const fold of all.filter((f) => missing.includes(f.stream))) {
        known.set(fold.stream, { stream: fold.stream, ...foldStream(read.get(fold.stream) ?? [], fold.evolve, fold.initial) });
      }
    }
    return all.map((f) => known.get(f.stream)!) as { [K in keyof T]: StateAt<T[K]> };
  }

  return { load, forget: (stream: string) => known.delete(stream) };
}

export type RememberedStates = ReturnType<typeof rememberedStates>;

/** The guard of a decision made on this state: an append to its stream with no events, at its version. */
export const guardOf = (at: StateAt<unknown>): StreamAppend<DomainEvent> => ({ stream: at.stream, expected: at.version, events: [] });
