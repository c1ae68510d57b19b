import pg from 'pg';

/**
 * A connection of its own, outside every pool, for a session that holds a lease (an advisory lock)
 * for as long as it lives: leases never take the request pool's connections, and a lease goes with
 * its process (the session ends with it), so another process can take over.
 */
export async function leaseConnection(pool: pg.Pool, applicationName: string): Promise<pg.Client> {
  const { connectionString, connectionTimeoutMillis } = pool.options;
  const client = new pg.Client({ connectionString, connectionTimeoutMillis, application_name: applicationName });
  client.on('error', () => {}); // a lost lease is noticed by its holder's next query
  await client.connect();
  return client;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export interface LeaseOptions {
  pool: pg.Pool;
  /** The lease's name: one holder per name across processes. */
  key: string;
  applicationName: string;
  signal: AbortSignal;
  /** How often a process without the lease asks again, and waits after a failure. */
  retryMs: number;
  onError: (error: unknown) => void;
}

/**
 * Runs `work` while this process holds the lease `key` (a session advisory lock on a connection of
 * its own), until `signal` aborts: waits for the lease, asking again on the same connection; after
 * a failure, ends the session (releasing the lease) and starts over.
 */
export async function whileLeased(options: LeaseOptions, work: (lease: pg.Client, lost: () => Error | undefined) => Promise<void>): Promise<void> {
  const { signal } = options;
  while (!signal.aborted) {
    let lease: pg.Client | undefined;
    try {
      lease = await leaseConnection(options.pool, options.applicationName);
      // Listened for from the start: a session lost before the work began (between taking the lock
      // and the work's first look) must not leave its holder going on as if it held the lease.
      let lostWith: Error | undefined;
      lease.on('error', (error) => (lostWith ??= error));
      const held = async () => (await lease!.query<{ held: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held', [options.key])).rows[0]?.held;
      while (!signal.aborted && !(await held())) await sleep(options.retryMs, signal);
      if (signal.aborted) break;
      await work(lease, () => lostWith);
    } catch (error) {
      if (signal.aborted) break;
      options.onError(error);
      await sleep(options.retryMs, signal);
    } finally {
      await lease?.end().catch(() => {});
    }
  }
}
