import type * as t from 'io-ts';

/** An event as deciders see it: its type and its payload. */
export interface Event {
  type: string;
  data: unknown;
}

/** The events a set of codecs describes, as a union discriminated by `type`. */
export type EventsOf<R extends Record<string, t.Mixed>> = { [K in keyof R & string]: { type: K; data: t.TypeOf<R[K]> } }[keyof R & string];

/** How a stream's events become the state a decision needs. */
export interface Fold<S, E extends Event> {
  initial: S;
  evolve(state: S, event: E): S;
  /** Whether an event of the log is one of this fold's (a stream holds only its own kind's events). */
  accepts(event: Event): event is E;
}

/** A decider: the rulebook of one kind of stream, pure (time and ids come in on the command). */
export interface Decider<C, S, E extends Event> extends Fold<S, E> {
  decide(command: C, state: S): E[];
}

/** The type guard of the events named by a set of codecs. */
export const acceptsTypes = <E extends Event>(codecs: Record<string, unknown>) => (event: Event): event is E => Object.hasOwn(codecs, event.type);

/** A stream's events folded into state, with the version they reach (0 for no events). */
export function foldStream<S, E extends Event>(events: readonly (Event & { streamPosition: number })[], fold: Fold<S, E>): { state: S; version: number } {
  let state = fold.initial;
  for (const e of events) if (fold.accepts(e)) state = fold.evolve(state, e);
  return { state, version: events.at(-1)?.streamPosition ?? 0 };
}

/** Several commands decided one after another, each on the state the previous ones' events made. */
export function decideAll<C, S, E extends Event>(decider: Decider<C, S, E>, commands: readonly C[], state: S): E[] {
  const events: E[] = [];
  for (const command of commands) {
    const decided = decider.decide(command, state);
    for (const e of decided) state = decider.evolve(state, e);
    events.push(...decided);
  }
  return events;
}
