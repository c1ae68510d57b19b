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
  /** Resolves after `ms` (false), or sooner when the log has news (true). */
  sleep(ms: number, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}

export async function createWaker(databaseUrl: string): Promise<Waker> {
  const subscriber = createSubscriber(
    { connectionString: databaseUrl, application_name: 'codex-k8s-listen' },
    // Keep reconnecting for as long as the process lives; polling covers the time without LISTEN.
    { retryInterval: (attempt: number) => Math.min(500 * attempt, 5000), retryTimeout: Number.MAX_SAFE_INTEGER, paranoidChecking: 10_000 },
  );
  const sleepers = new Set<(notified: boolean) => void>();
  subscriber.notifications.on(eventLogChannel, () => {
    for (const wake of [...sleepers]) wake(true);
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

function sleepFor(ms: number, signal: AbortSignal | undefined, sleepers: Set<(notified: boolean) => void>): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (notified: boolean) => {
      clearTimeout(timer);
      sleepers.delete(done);
      signal?.removeEventListener('abort', aborted);
      resolve(notified);
    };
    const aborted = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    sleepers.add(done);
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

export interface PollingBackoff {
  /** Wait after an empty read, doubled on each further empty read up to `maxMs`. */
  minMs: number;
  maxMs: number;
}

export const defaultBackoff: PollingBackoff = { minMs: 20, maxMs: 500 };

/**
 * How a reader waits when the log had nothing new: adaptively longer while idle, woken by a
 * notification. After one, it keeps looking quickly for a few seconds even if the first read
 * finds nothing: the read horizon is cluster-wide, so a transaction elsewhere can keep a committed
 * event out of sight for a moment after its NOTIFY arrived.
 */
export function idleWaits(waker: Waker, backoff: PollingBackoff = defaultBackoff) {
  let idle = backoff.minMs;
  let chase = 0;
  let chaseUntil = 0;
  return {
    /** The last read returned events. */
    found(): void {
      idle = backoff.minMs;
      chaseUntil = 0;
      chase = 0;
    },
    /** The last read returned nothing: wait before the next. */
    async wait(signal: AbortSignal): Promise<void> {
      if (Date.now() < chaseUntil) {
        chase = Math.min(chase === 0 ? 5 : chase * 2, 100);
        if (await waker.sleep(Math.min(chase, idle), signal)) chaseUntil = Date.now() + 5000;
        return;
      }
      if (await waker.sleep(idle, signal)) {
        chaseUntil = Date.now() + 5000;
        chase = 0;
      } else {
        idle = Math.min(idle * 2, backoff.maxMs);
      }
    },
  };
}

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
  const waits = idleWaits(options.waker, options.backoff);
  const done = (async () => {
    while (!options.signal.aborted) {
      const events = await store.readAllRaw(position, options.batchSize ?? 1000);
      if (events.length > 0) {
        await options.onBatch(events);
        position = events[events.length - 1]!.position;
        waits.found();
        continue;
      }
      await waits.wait(options.signal);
    }
  })();
  return { done, position: () => position };
}
