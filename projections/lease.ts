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
