import type pg from 'pg';
import type { EventStore, EventMeta, StreamAppend, AppendResult } from '../../ports/event-store.js';
import type { DomainEvent } from '../../domain/events.js';
import { eventAppends, type AppendOptions } from './event-appends.js';
import { eventReads } from './event-reads.js';
import { appendNotifier } from './notifications.js';

// The port's names, for the adapters and tests that build a store here.
export * from '../../ports/event-store.js';
export { eventLogChannel } from './notifications.js';

export interface EventStoreOptions extends AppendOptions {
  /** Wakes subscribers in this and other processes after a commit (notifications.ts). */
  notify?: boolean;
}

/** The event store over PostgreSQL: appends (event-appends.ts), reads (event-reads.ts), wake-ups (notifications.ts). */
export function createEventStore(pool: pg.Pool, options: EventStoreOptions = {}) {
  const appends = eventAppends(pool, options);
  const reads = eventReads(pool);
  const notifyAppended = appendNotifier(pool, options.notify ?? true);

  /**
   * See EventStore.append. With `tx`, the append joins the caller's transaction and must be its
   * first write, and the caller calls `notifyAppended` after COMMIT (`transaction` does).
   */
  async function append(streams: StreamAppend<DomainEvent>[], meta: EventMeta, tx?: pg.PoolClient): Promise<AppendResult> {
    const result = await appends.append(streams, meta, tx);
    if (!tx) notifyAppended();
    return result;
  }

  /** Runs `work` in a transaction on one connection; subscribers are woken after it commits. */
  async function transaction<T>(work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      notifyAppended();
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  const store = { ...reads, append, transaction, notifyAppended, pool };
  return store satisfies EventStore;
}

export type PostgresEventStore = ReturnType<typeof createEventStore>;
