// How readers of the log wait for news: the Waker is implemented over LISTEN/NOTIFY in
// adapters/postgres/subscription.ts; the waiting policy is shared by every reader.

/**
 * Wakes readers of the event log when a NOTIFY arrives on the log's channel. One LISTEN connection
 * serves every subscription of a process. Notifications are only a hint: readers poll as well.
 */
export interface Waker {
  /** Resolves after `ms` (false), or sooner when the log has news (true). */
  sleep(ms: number, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}

/** A waker that only polls: what a reader falls back to when notifications are lost. */
export const pollingOnly: Waker = {
  sleep: (ms, signal) => sleepFor(ms, signal, new Set()),
  close: async () => {},
};

export function sleepFor(ms: number, signal: AbortSignal | undefined, sleepers: Set<(notified: boolean) => void>): Promise<boolean> {
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

