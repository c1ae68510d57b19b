import pgListen, { type Options as ListenOptions, type Subscriber } from 'pg-listen';
import type pg from 'pg';

// pg-listen is CommonJS with `exports.default`.
const createSubscriber = (pgListen as unknown as { default: (c: pg.ClientConfig, o?: ListenOptions) => Subscriber }).default;
import { eventLogChannel, type EventStore, type RawEvent } from './event-store.js';
import { idleWaits, sleepFor, type PollingBackoff, type Waker } from '../../ports/waker.js';
export { defaultBackoff, idleWaits, pollingOnly, type PollingBackoff, type Waker } from '../../ports/waker.js';
import type { GlobalPosition } from '../../ports/position.js';

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
