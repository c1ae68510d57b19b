import { ConcurrencyError, type AppendResult, type EventMeta, type EventStore, type ExpectedVersion, type StreamAppend } from '../ports/event-store.js';
import type { DomainEvent } from '../domain/events.js';
import { readFolded, type RememberedStates, type StateAt, type StreamFold } from './remembered-states.js';

/** Events for a stream. A stream the decision read needs no expected version: it is the version read. */
export interface Write {
  stream: string;
  events: DomainEvent[];
  expected?: ExpectedVersion;
}

export interface Outcome<R> {
  writes: Write[];
  /** What the caller answers, told whether the append happened. */
  result: R;
}

/**
 * Loads stream states for a decision: fresh from the log, or remembered (hot streams such as a
 * webhook's project and sender). Every stream loaded is guarded by the append, unless the caller
 * says its state does not matter to the decision unless written (`guard: false`: a busy slot the
 * scheduler passed over).
 */
export type Load = <T extends unknown[]>(folds: { [K in keyof T]: StreamFold<T[K]> }, options?: { remembered?: boolean; guard?: boolean }) => Promise<{ [K in keyof T]: StateAt<T[K]> }>;

export interface HandlerDeps {
  store: Pick<EventStore, 'append' | 'readStreams'>;
  /** Remembered states, for loads that ask for them. */
  states?: RememberedStates;
}

// A guard fails only when a stream changed between the read and the append; deciding again on the
// fresh state settles it, so a few attempts are plenty.
const MAX_ATTEMPTS = 5;

/**
 * The one command handler: load the streams a decision needs, decide, append the decision with
 * every stream read as a guard (or at its version, when written), and on a conflict in a stream it
 * read, decide again on fresh state. A conflict on a stream it did not read (one that had to be new)
 * is the caller's to interpret. A remembered state is checked only by an append's guard: a decision
 * on one that writes nothing is made again on fresh state, so no answer rests on a stale memory.
 */
export async function handleCommand<R>(
  deps: HandlerDeps,
  meta: EventMeta,
  decide: (load: Load) => Promise<Outcome<R>>,
): Promise<{ result: R; append: AppendResult | undefined }> {
  let fresh = false;
  for (let attempt = 1; ; attempt++) {
    const read = new Map<string, StateAt<unknown>>();
    const seen = new Map<string, StateAt<unknown>>();
    const folds = new Map<string, StreamFold<unknown>['fold']>();
    let remembered = false;
    const load: Load = async (list, options) => {
      const wanted = list as StreamFold<unknown>[];
      const fromMemory = options?.remembered === true && deps.states !== undefined && !fresh;
      // Only a state served from memory needs checking; one the memory did not have is read now.
      remembered ||= fromMemory && wanted.some((f) => deps.states!.has(f.stream));
      const states = fromMemory ? await deps.states!.load(wanted) : await readFolded(deps.store, wanted);
      if (options?.remembered && fresh) for (const at of states) deps.states?.remember(at);
      for (const [i, at] of states.entries()) {
        seen.set(at.stream, at);
        folds.set(at.stream, wanted[i]!.fold);
        if (options?.guard !== false) read.set(at.stream, at);
      }
      return states as never;
    };
    const outcome = await decide(load);
    const writes = outcome.writes.filter((w) => w.events.length > 0);
    if (writes.length === 0) {
      if (!remembered) return { result: outcome.result, append: undefined };
      fresh = true;
      attempt--; // not a conflict: this pass does not count against the attempts
      continue;
    }
    const appends: StreamAppend[] = writes.map((w) => {
      const at = seen.get(w.stream);
      const expected = w.expected ?? at?.version;
      if (expected === undefined) throw new Error(`${w.stream} is written without an expected version and was not read`);
      return { stream: w.stream, expected, events: w.events };
    });
    for (const at of read.values()) {
      if (!writes.some((w) => w.stream === at.stream)) appends.push({ stream: at.stream, expected: at.version, events: [] });
    }
    try {
      const append = await deps.store.append(appends, meta);
      // A remembered state moves on with the write: the next decision on it needs no read.
      for (const w of writes) deps.states?.written(w.stream, after(w, seen.get(w.stream), folds.get(w.stream), append));
      return { result: outcome.result, append };
    } catch (error) {
      const stale = error instanceof ConcurrencyError && seen.has(error.stream);
      if (!stale || attempt >= MAX_ATTEMPTS) throw error;
      deps.states?.forget(error.stream);
    }
  }
}

/** The state a write made of the state it was decided on, at the version the append reports. */
function after(write: Write, at: StateAt<unknown> | undefined, fold: StreamFold<unknown>['fold'] | undefined, append: AppendResult): StateAt<unknown> | undefined {
  const version = append.streams.find((s) => s.stream === write.stream)?.version;
  if (!at || !fold || version === undefined || version !== at.version + write.events.length) return undefined;
  let state = at.state;
  for (const event of write.events) if (fold.accepts(event)) state = fold.evolve(state, event);
  return { stream: write.stream, state, version };
}
