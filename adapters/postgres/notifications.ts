import type pg from 'pg';

export const eventLogChannel = 'codexk8s_events';
const NOTIFY_INTERVAL_MS = 5;

/**
 * Wakes subscribers in this and other processes after appends commit: at most one NOTIFY in flight
 * and at most one per NOTIFY_INTERVAL_MS, and one more after it if appends landed meanwhile. Each
 * NOTIFY is a round trip and a transaction; under load one per few milliseconds wakes them just as well.
 */
export function appendNotifier(pool: pg.Pool, enabled: boolean): () => void {
  let inFlight = false;
  let timer: NodeJS.Timeout | undefined;
  let again = false;
  let last = 0;
  return function notifyAppended(): void {
    if (!enabled) return;
    if (inFlight || timer) {
      again = true;
      return;
    }
    const wait = last + NOTIFY_INTERVAL_MS - performance.now();
    if (wait > 0) {
      timer = setTimeout(() => {
        timer = undefined;
        notifyAppended();
      }, wait);
      timer.unref();
      return;
    }
    inFlight = true;
    last = performance.now();
    pool
      .query(`SELECT pg_notify('${eventLogChannel}', '1')`)
      .catch(() => {}) // a lost wake-up only delays subscribers: they poll too
      .finally(() => {
        inFlight = false;
        if (again) {
          again = false;
          notifyAppended();
        }
      });
  };
}
