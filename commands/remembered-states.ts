import { foldStream, type EventStore } from '../ports/event-store.js';
import type { Event, Fold } from '../domain/shared/decider.js';

/** A stream's state as folded at a version: what a decision was made on. */
export interface StateAt<S> {
  stream: string;
  state: S;
  /** The stream's version the state was folded to: the expected version of its guard. */
  version: number;
}

/** A stream to read and how to fold it. */
export interface StreamFold<S> {
  stream: string;
  // `any` events: each stream has its own event type, and the fold accepts (and folds) only its own.
  fold: Fold<S, any>;
}

const MAX_REMEMBERED = 10_000;

/**
 * Stream states folded from the log and remembered with their version, for a command that decides
 * on them often (a webhook delivery decides on its project and sender). A remembered state may be
 * stale, so the command handler commits with each stream it read as a guard at the remembered
 * version: a ConcurrencyError on a guard means "forget it and decide again", never a wrong decision.
 */
export function rememberedStates(store: Pick<EventStore, 'readStreams'>, max = MAX_REMEMBERED) {
  const known = new Map<string, StateAt<unknown>>();

  /** The states of these streams; the ones not remembered are read together in one round trip. */
  async function load<T extends unknown[]>(folds: { [K in keyof T]: StreamFold<T[K]> }): Promise<{ [K in keyof T]: StateAt<T[K]> }> {
    const all = folds as readonly StreamFold<unknown>[];
    const had = all.map((f) => known.get(f.stream));
    const missing = all.filter((_, i) => had[i] === undefined);
    if (missing.length === 0) return had as { [K in keyof T]: StateAt<T[K]> };
    const fresh = await readFolded(store, missing);
    if (known.size + missing.length > max) known.clear();
    for (const at of fresh) known.set(at.stream, at);
    // What was known when asked, or just read: not the memory itself, which a full memory just emptied.
    const read = new Map(fresh.map((at) => [at.stream, at]));
    return all.map((f, i) => had[i] ?? read.get(f.stream)!) as { [K in keyof T]: StateAt<T[K]> };
  }

  /** Takes a state read elsewhere (a reactor that read the stream's events for more than its fold). */
  function remember(at: StateAt<unknown>): void {
    if (known.size >= max) known.clear();
    known.set(at.stream, at);
  }

  /**
   * After a write to `stream`: a remembered state becomes the state the write made (`next`, folded
   * from the remembered one and the events written at its version), or is forgotten without one.
   */
  function written(stream: string, next: StateAt<unknown> | undefined): void {
    if (next && known.has(stream)) known.set(stream, next);
    else known.delete(stream);
  }

  return { load, remember, written, has: (stream: string) => known.has(stream), forget: (stream: string) => known.delete(stream) };
}

export type RememberedStates = ReturnType<typeof rememberedStates>;

/** These streams read now, in one round trip, and folded. */
export async function readFolded(store: Pick<EventStore, 'readStreams'>, folds: readonly StreamFold<unknown>[]): Promise<StateAt<unknown>[]> {
  const read = await store.readStreams(folds.map((f) => f.stream));
  return folds.map((f) => ({ stream: f.stream, ...foldStream<unknown, Event>(read.get(f.stream) ?? [], f.fold) }));
}
