import pgListen, { type Options as ListenOptions, type Subscriber } from 'pg-listen';
import type pg from 'pg';

// pg-listen is CommonJS with `exports.default`.
const createSubscriber = (pgListen as unknown as { default: (c: pg.ClientConfig, o?: ListenOptions) => Subscriber }).default;
import { eventLogChannel, type EventStore, type RawEvent } from './event-store.js';
import { GlobalPosition } from './position.js';

/**
 * Wakes readers of the event log when a NOTIFY arrives on the log's channel. One LISTEN connection
 * serves every subscription of a process. Notifications are only a hint: readers poll as well.
 */
export interface Waker {
  /** Resolves after `ms`, or sooner when the log has news. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export async function createWaker(databaseUrl: string): Promise<Waker> {
  const subscriber = createSubscriber(
    { connectionString: databaseUrl, application_name: 'codex-k8s-listen' },
    // Keep reconnecting for as long as the process lives; polling covers the time without LISTEN.
    { retryInterval: (attempt: number) => Math.min(500 * attempt, 5000), retryTimeout: Number.MAX_SAFE_INTEGER, paranoidChecking: 10_000 },
  );
  const sleepers = new Set<() => void>();
  subscriber.notifications.on(eventLogChannel, () => {
    for (const wake of [...sleepers]) wake();
  });
  subscriber.events.on('error', () => {}); // pg-listen reconnects; polling covers the gap
  await subscriber.connect();
  await subscriber.listenTo(eventLogChannel);
  return {
    sleep: (ms, signal) => sleepFor(ms, signal, sleepers),
    close: () => subscriber.close(),
  };
}

/** A waker that only polls: what a reader falls back to when notifications are lost. */
export const pollingOnly: Waker = {
  sleep: (ms, signal) => sleepFor(ms, signal, new Set()),
  close: async () => {},
};

function sleepFor(ms: number, signal: AbortSignal | undefined, sleepers: Set<() => void>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      sleepers.delete(done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    sleepers.add(done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface PollingBackoff {
  /** Wait after an empty read, doubled on each further empty read up to `maxMs`. */
  minMs: number;
  maxMs: number;
}

export const defaultBackoff: PollingBackoff = { minMs: 20, maxMs: 500 };

export interface Subscription {
  /** Resolves once the loop has stopped (after `abort`), rejects with the handler's error. */
  done: Promise<void>;
  position(): GlobalPosition;
}

/**
 * Follows the log from `from`, handing each batch to `onBatch` in commit order. It sleeps adaptively
 * when idle and wakes at once on a notification. A failing handler ends the subscription with its error.
 */
export function subscribe(
  store: Pick<EventStore, 'readAllRaw'>,
  options: {
    from: GlobalPosition;
    waker: Waker;
    signal: AbortSignal;
    onBatch: (events: RawEvent[]) => Promise<void>;
    batchSize?: number;
    backoff?: PollingBackoff;
  },
): Subscription {
  let position = options.from;
  const backoff = options.backoff ?? defaultBackoff;
  const done = (async () => {
    let idle = backoff.minMs;
    while (!options.signal.aborted) {
      const events = await store.readAllRaw(position, options.batchSize ?? 1000);
      if (events.length > 0) {
        await options.onBatch(events);
        position = events[events.length - 1]!.position;
        idle = backoff.minMs;
        continue;
      }
      await options.waker.sleep(idle, options.signal);
      idle = Math.min(idle * 2, backoff.maxMs);
    }
  })();
  return { done, position: () => position };
}
