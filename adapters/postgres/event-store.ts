import type pg from 'pg';
import type { EventStore, EventMeta, StreamAppend, AppendResult } from '../../ports/event-store.js';
import type { DomainEvent } from '../../domain/events.js';
import { eventAppends, type AppendOptions } from './event-appends.js';
import { eventReads } from './event-reads.js';

// The port's names, for the adapters and tests that build a store here.
export * from '../../ports/event-store.js';
export { eventLogChannel } from './notifications.js';

export type EventStoreOptions = AppendOptions;

/** The event store over PostgreSQL: appends, which wake subscribers as they commit (event-appends.ts), and reads (event-reads.ts). */
export function createEventStore(pool: pg.Pool, options: EventStoreOptions = {}) {
  const appends = eventAppends(pool, options);
  const reads = eventReads(pool);

  /** See EventStore.append. With `tx`, the append joins the caller's transaction and must be its first write. */
  const append = (streams: StreamAppend<DomainEvent>[], meta: EventMeta, tx?: pg.PoolClient): Promise<AppendResult> => appends.append(streams, meta, tx);

  /** Runs `work` in a transaction on one connection; an append in it wakes subscribers when it commits. */
  async function transaction<T>(work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  const store = { ...reads, append, transaction, pool };
  return store satisfies EventStore;
}

export type PostgresEventStore = ReturnType<typeof createEventStore>;
